"""The rules of config's python_* fields (config.py declares the fields with them). A leaf.

Each check returns what is wrong with a value, or None; config.py turns that into a ConfigError
naming the field. What needs two fields at once (a source tarball of the configured version) is
checked per host in `djaploy.python.settings`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from djaploy.python.naming import PROVIDER_CHOICES, version_in_url

#: production grade: profile-guided optimisation and link-time optimisation (docs/python.md: the cost)
DEFAULT_BUILD_FLAGS = ("--enable-optimizations", "--with-lto")
SOURCE_KEYS = ("url", "sha256")
_URL_RE = re.compile(r"https?://[^\s'\"\\`$;|&<>]+")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
#: ./configure options (--with-lto, --with-lto=thin) and variables (CFLAGS=-O2 -march=x86-64-v2 is two words: not here)
_FLAG_RE = re.compile(r"--[a-z0-9][a-z0-9-]*(=[A-Za-z0-9._,:/+-]*)?|[A-Z][A-Z0-9_]*=[A-Za-z0-9._,:/+=-]*")


def check_provider(value: str) -> str | None:
    if value in PROVIDER_CHOICES:
        return None
    return f"{value!r} is not a Python provider; use one of {', '.join(map(repr, PROVIDER_CHOICES))}"


def check_url(value: str) -> str | None:
    """An http(s) URL without spaces or shell metacharacters (it is quoted anyway)."""
    return None if _URL_RE.fullmatch(value) else f"{value!r} is not an http:// or https:// URL"


def check_source(value: Mapping[str, str]) -> str | None:
    """{"url": ..., "sha256": ...}: a tarball URL naming its CPython version, and its sha256."""
    unknown = sorted(set(value) - set(SOURCE_KEYS))
    missing = [key for key in SOURCE_KEYS if key not in value]
    if unknown or missing:
        problem = f"unknown key {', '.join(map(repr, unknown))}" if unknown else f"missing {', '.join(map(repr, missing))}"
        return f"{problem}; give {{'url': 'https://.../Python-3.13.5.tar.xz', 'sha256': '<64 hex digits>'}}"
    if (problem := check_url(value["url"])) is not None:
        return f"url: {problem}"
    if version_in_url(value["url"]) is None:
        return f"url: {value['url']!r} does not name a CPython version (like Python-3.13.5.tar.xz)"
    if not _SHA256_RE.fullmatch(value["sha256"]):
        return f"sha256: {value['sha256']!r} is not a sha256 (64 lowercase hex digits)"
    return None


def check_build_flags(value: Sequence[str]) -> str | None:
    bad = next((flag for flag in value if not _FLAG_RE.fullmatch(flag)), None)
    if bad is None:
        return None
    return f"{bad!r} is not a ./configure option like '--with-lto' (or a VARIABLE=value without spaces)"
