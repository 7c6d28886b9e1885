"""Source builds kept on the deploying machine: built by the first host, uploaded to every other.

The folder is ``$DJAPLOY_PYTHON_CACHE`` when set (CI keeps it across runs), else
``~/.cache/djaploy/python`` (``$XDG_CACHE_HOME`` honoured). Each build is ``<name>.tar.gz`` (the
installed tree) and ``<name>.packages`` (the OS packages of the libraries it links against),
both written through a rename, so a half-copied build is never used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_ENV = "DJAPLOY_PYTHON_CACHE"
_locks: dict[str, Any] = {}


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).expanduser()
    base = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "djaploy" / "python"


@dataclass(frozen=True)
class CachedBuild:
    name: str
    folder: Path

    @classmethod
    def named(cls, name: str, environ: Mapping[str, str] = os.environ) -> CachedBuild:
        return cls(name, cache_dir(environ))

    @property
    def archive(self) -> Path:
        return self.folder / f"{self.name}.tar.gz"

    @property
    def packages_file(self) -> Path:
        return self.folder / f"{self.name}.packages"

    def exists(self) -> bool:
        return self.archive.is_file() and self.packages_file.is_file()

    def packages(self) -> list[str]:
        return self.packages_file.read_text().split()

    def incoming(self) -> Path:
        """Where a fetched archive lands before it is kept (same folder: the rename is atomic)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f".{self.name}.tar.gz.{os.getpid()}.part"

    def keep(self, fetched: Path, packages: list[str]) -> None:
        """Keep a fetched build: the package list first, the archive (what `exists` needs too) last."""
        listing = self.folder / f".{self.name}.packages.{os.getpid()}.part"
        listing.write_text("".join(f"{name}\n" for name in packages))
        os.replace(listing, self.packages_file)
        os.replace(fetched, self.archive)


@contextmanager
def building(name: str) -> Iterator[None]:
    """One host of this run builds `name`; the others (greenlets) wait here, then find it cached."""
    from gevent.lock import Semaphore

    lock = _locks.setdefault(name, Semaphore())
    with lock:
        yield
