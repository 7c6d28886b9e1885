"""Names of interpreters on the host: where each provider puts one, and the keys venvs carry.

Every interpreter djaploy installs lives in its own folder ``/opt/djaploy/python/<provider>-<version>``
(the full version: a patch upgrade is a new folder, so a live release's venv keeps its interpreter),
never on the system PATH. A pure leaf: unit tested.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

PYTHON_ROOT = "/opt/djaploy/python"
#: uv's own store (UV_PYTHON_INSTALL_DIR); `uv-<version>` links into it
UV_STORE = posixpath.join(PYTHON_ROOT, ".uv")
#: packed source builds on the host (the build host's copy, and uploads being installed)
BUILDS_DIR = posixpath.join(PYTHON_ROOT, ".builds")
#: written last into a source interpreter's folder: a half-finished install is redone
COMPLETE_MARKER = ".djaploy-complete"
PROVIDERS = ("system", "uv", "source")
PROVIDER_CHOICES = ("auto", *PROVIDERS)
#: a CPython release: 3.13.5, 3.14.0rc1
FULL_VERSION_RE = re.compile(r"3\.\d+\.\d+(?:(?:a|b|rc)\d+)?")
_VERSION_IN_URL_RE = re.compile(r"(?<![\d.])(3\.\d+\.\d+(?:(?:a|b|rc)\d+)?)(?![\d.]*\d)")


@dataclass(frozen=True)
class Interpreter:
    """One interpreter on one host: who provided it, its full version, its executable."""

    provider: str
    version: str
    python: str

    @property
    def key(self) -> str:
        """What venv folders are named with: 3.13.5-source (a patch upgrade is a new venv)."""
        return f"{self.version}-{self.provider}"

    @property
    def minor(self) -> str:
        return minor_of(self.version)


def minor_of(version: str) -> str:
    """'3.13.5' -> '3.13'."""
    return ".".join(version.split(".")[:2])


def install_dir(provider: str, version: str) -> str:
    """The interpreter's own folder (uv: a link into uv's store)."""
    return posixpath.join(PYTHON_ROOT, f"{provider}-{version}")


def executable(provider: str, version: str) -> str:
    """The interpreter's binary; the system provider's is the OS package's."""
    name = f"python{minor_of(version)}"
    if provider == "system":
        return f"/usr/bin/{name}"
    return posixpath.join(install_dir(provider, version), "bin", name)


def version_in_url(url: str) -> str | None:
    """The CPython release a tarball URL names (Python-3.13.5.tar.xz, python3.13_3.13.5.orig.tar.xz)."""
    found = _VERSION_IN_URL_RE.findall(posixpath.basename(url))
    return found[-1] if found else None


def build_name(version: str, os_release: str, machine: str, digest: str) -> str:
    """A packed source build: one per version, OS release, architecture and (sha256, flags) digest."""
    return f"cpython-{version}-{os_release}-{machine}-{digest}"
