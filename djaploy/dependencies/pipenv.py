"""Pipfile.lock -> pinned lines, parsed here (no Pipenv, no network): the "default" section only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from packaging.utils import canonicalize_name

from djaploy.errors import ArtifactError

from .lines import index_options, local_path, requirement_line


def pipenv_requirements(lock_text: str, *, source: str = "Pipfile.lock") -> list[str]:
    """Pipfile.lock's "default" section (never "develop") as pinned lines, markers kept."""
    try:
        lock = json.loads(lock_text)
        default: Mapping[str, Any] = lock["default"]
    except (ValueError, KeyError, TypeError):
        raise ArtifactError(f"{source} is not a Pipfile.lock (no \"default\" section); run `pipenv lock`") from None
    sources = lock.get("_meta", {}).get("sources", [])
    lines = index_options(item.get("url", "") for item in sources if isinstance(item, dict))
    for name in sorted(default, key=canonicalize_name):
        entry = default[name]
        if not isinstance(entry, dict):
            raise ArtifactError(f"{source}: entry {name!r} is not a table; run `pipenv lock` again")
        lines.append(_pipenv_line(name, entry, source))
    return lines


def _pipenv_line(name: str, entry: Mapping[str, Any], source: str) -> str:
    marker, extras = entry.get("markers", ""), entry.get("extras", ())
    if "version" in entry:
        return requirement_line(name, entry["version"], marker, extras)
    if "git" in entry:
        url = entry["git"] if entry["git"].startswith("git+") else f"git+{entry['git']}"
        ref = f"@{entry['ref']}" if entry.get("ref") else ""
        subdirectory = f"#subdirectory={entry['subdirectory']}" if entry.get("subdirectory") else ""
        return requirement_line(name, f" @ {url}{ref}{subdirectory}", marker, extras)
    if "file" in entry:
        return requirement_line(name, f" @ {entry['file']}", marker, extras)
    if "path" in entry:
        return local_path(entry["path"]) + (f" ; {marker}" if marker else "")
    raise ArtifactError(f"{source}: {name} has no version, git, file or path; run `pipenv lock` again")
