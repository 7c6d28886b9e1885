"""Pinned requirement lines as the lock parsers (Pipenv, Poetry) write them: one format, one place."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from djaploy.errors import ArtifactError

PYPI_INDEXES = {"https://pypi.org/simple", "https://pypi.python.org/simple", "https://pypi.org/pypi"}


def load_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ArtifactError(f"{source} is not valid TOML: {error}") from None


def index_options(urls: Iterable[str]) -> list[str]:
    """Extra package indexes the lock names. PyPI is the default; an index with credentials is
    left out (it would put them in the release): configure it on the server (pip.conf, uv.toml)."""
    options = set()
    for url in urls:
        clean = url.rstrip("/")
        if not clean or clean in PYPI_INDEXES or "${" in clean or "@" in urlsplit(clean).netloc:
            continue
        options.add(f"--extra-index-url {clean}")
    return sorted(options)


def requirement_line(name: str, pin: str, marker: str = "", extras: Iterable[str] = ()) -> str:
    extras_text = f"[{','.join(sorted(extras))}]" if extras else ""
    return f"{name}{extras_text}{pin}" + (f" ; {marker}" if marker else "")


def local_path(path: str) -> str:
    """A local package, installed (not editable: the venv outlives the release) from the release."""
    return path if path.startswith(("/", "./", "../")) else f"./{path}"
