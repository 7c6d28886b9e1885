"""requirements.txt files: the files one includes (they key the venv too) and the names a list installs."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from djaploy.errors import ArtifactError

from .spec import SourceTree

_INCLUDE_RE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)(?:\s+|=)(\S+)", re.MULTILINE)


def included_files(path: str, text: str, tree: SourceTree, seen: frozenset[str] = frozenset()) -> str:
    """The text of files a requirements file includes (-r/-c), so editing them changes the venv key."""
    parts = []
    for name in _INCLUDE_RE.findall(text):
        if "://" in name:
            continue
        included = (PurePosixPath(path).parent / name).as_posix()
        if included in seen:
            continue
        content = tree.read(included)
        if content is None:
            raise ArtifactError(f"{path} includes {name}, which is not part of this release; commit it")
        parts.append(f"\n# {included}\n{content}{included_files(included, content, tree, seen | {included})}")
    return "".join(parts)


def requirement_names(text: str) -> set[str]:
    """Normalized names of the packages a requirements text installs (options and paths skipped)."""
    names = set()
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            names.add(canonicalize_name(Requirement(line).name))
        except InvalidRequirement:
            continue
    return names
