"""Where the sandbox keeps things, taken from the environment so tests can isolate themselves."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import SandboxError

DEFAULT_NAME = "demo"
DEFAULT_CACHE_DIR = "/var/cache/djaploy-sandbox"
DEFAULT_RUNTIME_DIR = "/var/tmp/djaploy-sandbox"
#: The releases a sandbox host can run (`--os`), each named as users name it, with its Debian suite.
RELEASES = {"debian-12": "bookworm", "debian-13": "trixie"}
DEFAULT_OS = "debian-12"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
# Exactly the package set of the verified recipe: enough to boot and be managed over SSH,
# nothing that configureserver is supposed to install itself.
INCLUDE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "sudo",
    "python3",
    "iproute2",
    "ca-certificates",
    "curl",
)
PROXY_PORT = 8888
SUDO_USER = "deployer"

# Sandbox names end up in file names, netns names and machine names: keep them boring.
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def default_name() -> str:
    """DJAPLOY_SANDBOX_NAME lets a shell or CI job pick the sandbox once for every command."""
    return os.environ.get("DJAPLOY_SANDBOX_NAME") or DEFAULT_NAME


def validate_name(name: str) -> str:
    """Reject names that would not be safe as path parts and interface/netns name parts."""
    if not _NAME_RE.match(name):
        raise SandboxError(
            f"invalid sandbox name {name!r}: use 1-32 chars of a-z, 0-9, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def default_os() -> str:
    """DJAPLOY_SANDBOX_OS lets a shell or CI job pick the release of new hosts once for every command."""
    return validate_os(os.environ.get("DJAPLOY_SANDBOX_OS") or DEFAULT_OS)


def validate_os(release: str) -> str:
    """One of RELEASES, or a SandboxError that lists them."""
    if release not in RELEASES:
        raise SandboxError(f"unknown sandbox OS {release!r}: use one of {', '.join(RELEASES)}")
    return release


def suite(release: str) -> str:
    """The Debian suite debootstrap builds for a release: "debian-13" -> "trixie"."""
    return RELEASES[validate_os(release)]


def cache_dir() -> Path:
    """Shared between sandboxes: one debootstrap tarball and its extracted base per release."""
    return Path(os.environ.get("DJAPLOY_SANDBOX_CACHE") or DEFAULT_CACHE_DIR)


def runtime_dir() -> Path:
    """Parent of every sandbox's own runtime dir (state, keys, overlay layers, logs)."""
    return Path(os.environ.get("DJAPLOY_SANDBOX_DIR") or DEFAULT_RUNTIME_DIR)


def boot_timeout() -> float:
    """How long `up` waits for a VPS to answer over SSH with a settled systemd."""
    return float(os.environ.get("DJAPLOY_SANDBOX_BOOT_TIMEOUT") or 120)


def stop_timeout() -> float:
    """How long `down` lets a VPS shut down cleanly before it is killed."""
    return float(os.environ.get("DJAPLOY_SANDBOX_STOP_TIMEOUT") or 30)


def parse_mirror(text: str) -> str | None:
    """First `URIs:` of a deb822 sources file: the mirror this machine is allowed to use."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "URIs" and value.strip():
            return value.split()[0]
    return None


def mirror() -> str:
    """The host's Debian mirror, or deb.debian.org when the host has no deb822 sources file."""
    try:
        found = parse_mirror(DEBIAN_SOURCES.read_text())
    except OSError:
        found = None
    return found or FALLBACK_MIRROR
