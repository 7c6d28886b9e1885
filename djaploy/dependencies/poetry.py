"""poetry.lock -> pinned lines, parsed here (no Poetry, no network): the main group only."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from djaploy.errors import ArtifactError

from .lines import index_options, load_toml, local_path, requirement_line
from .markers import all_of, any_of, constraint_marker, rewrite_marker

#: bounds the Poetry graph walk (a lock is a few hundred packages; this is never reached honestly)
MAX_WALK_STEPS = 200_000


def poetry_requirements(lock_text: str, pyproject_text: str, *, source: str = "poetry.lock") -> list[str]:
    """poetry.lock's main group as pinned lines, markers kept, dev and other groups left out.

    Locks from Poetry 2 (lock-version 2.1) record each package's groups and markers: those are
    used as they are. Older locks do not, so the main group is found by walking the dependency
    graph from pyproject.toml's main dependencies, following extras and combining markers.
    """
    lock = load_toml(lock_text, source)
    packages = lock.get("package", [])
    if not isinstance(packages, list):
        raise ArtifactError(f"{source} has no [[package]] list; run `poetry lock`")
    if packages and all("groups" in package for package in packages):
        chosen = _poetry_main_by_groups(packages)
    else:
        chosen = poetry_main_by_graph(packages, load_toml(pyproject_text, "pyproject.toml"), source)
    by_name = {canonicalize_name(package["name"]): package for package in packages}
    lines = index_options(p.get("source", {}).get("url", "") for p in packages
                          if p.get("source", {}).get("type") == "legacy" and canonicalize_name(p["name"]) in chosen)
    for name in sorted(chosen):
        lines.append(_poetry_line(by_name[name], chosen[name], source))
    return lines


def _poetry_main_by_groups(packages: list[dict[str, Any]]) -> dict[str, str]:
    chosen = {}
    for package in packages:
        if "main" not in package.get("groups", ()):
            continue
        markers = package.get("markers", "")
        if isinstance(markers, dict):
            markers = markers.get("main", "")
        chosen[canonicalize_name(package["name"])] = markers
    return chosen


def _poetry_line(package: Mapping[str, Any], marker: str, source: str) -> str:
    name, version, origin = package["name"], package["version"], package.get("source", {})
    kind = origin.get("type")
    if kind in (None, "legacy"):
        return requirement_line(name, f"=={version}", marker)
    if kind == "git":
        subdirectory = f"#subdirectory={origin['subdirectory']}" if origin.get("subdirectory") else ""
        reference = origin.get("resolved_reference") or origin.get("reference")
        return requirement_line(name, f" @ git+{origin['url']}@{reference}{subdirectory}", marker)
    if kind == "url":
        return requirement_line(name, f" @ {origin['url']}", marker)
    if kind in ("directory", "file"):
        return local_path(origin["url"]) + (f" ; {marker}" if marker else "")
    raise ArtifactError(f"{source}: {name} comes from a source of type {kind!r}, which djaploy cannot pin")


def _constraints(spec: Any) -> list[dict[str, Any]]:
    """A Poetry dependency (a version string, a table, or a list of tables) as tables."""
    if isinstance(spec, str):
        return [{"version": spec}]
    if isinstance(spec, dict):
        return [spec]
    if isinstance(spec, list):
        return [item if isinstance(item, dict) else {"version": str(item)} for item in spec]
    return [{}]


def poetry_main_by_graph(packages: list[dict[str, Any]], pyproject: Mapping[str, Any], source: str) -> dict[str, str]:
    """Walk from the project's main dependencies through the lock: package name -> marker ("" = always)."""
    index: dict[str, dict[str, Any]] = {}
    for package in packages:
        name = canonicalize_name(package["name"])
        if name in index:
            raise ArtifactError(f"{source} locks several versions of {package['name']}, which only Poetry 2 lock files "
                                "describe fully; re-lock with Poetry 2 (`poetry lock`) and commit poetry.lock")
        index[name] = package
    found: dict[str, set[str]] = {}
    seen: set[tuple[str, str, frozenset[str]]] = set()
    stack = list(_poetry_roots(pyproject))
    steps = 0
    while stack:
        name, marker, extras = stack.pop()
        steps += 1
        if steps > MAX_WALK_STEPS:
            raise ArtifactError(f"{source}: the dependency graph is too tangled to walk; re-lock with Poetry 2")
        if (name, marker, extras) in seen or (name, "", extras) in seen:
            continue
        seen.add((name, marker, extras))
        package = index.get(name)
        if package is None:
            raise ArtifactError(f"{source} does not lock {name}, which the project needs; run `poetry lock`")
        found.setdefault(name, set()).add(marker)
        enabled = _enabled_optionals(package, extras)
        for child, spec in package.get("dependencies", {}).items():
            for constraint in _constraints(spec):
                if constraint.get("optional") and canonicalize_name(child) not in enabled:
                    continue
                edge = constraint_marker(constraint, extras, source)
                if edge is not False:
                    stack.append((canonicalize_name(child), all_of(marker, edge), frozenset(constraint.get("extras", ()))))
    return {name: any_of(markers) for name, markers in found.items()}


def _poetry_roots(pyproject: Mapping[str, Any]) -> Iterable[tuple[str, str, frozenset[str]]]:
    for text in pyproject.get("project", {}).get("dependencies", []):
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            raise ArtifactError(f"pyproject.toml: [project] dependency {text!r}: {error}") from None
        marker = rewrite_marker(str(requirement.marker), frozenset()) if requirement.marker else ""
        if marker is not False:
            yield canonicalize_name(requirement.name), "" if marker is True else marker, frozenset(requirement.extras)
    poetry = pyproject.get("tool", {}).get("poetry", {})
    main = {**poetry.get("dependencies", {}), **poetry.get("group", {}).get("main", {}).get("dependencies", {})}
    for name, spec in main.items():
        if name.lower() == "python":
            continue
        for constraint in _constraints(spec):
            if constraint.get("optional"):
                continue  # only with a project extra, which a deploy does not install
            edge = constraint_marker(constraint, frozenset(), "pyproject.toml")
            if edge is not False:
                yield canonicalize_name(name), edge, frozenset(constraint.get("extras", ()))


def _enabled_optionals(package: Mapping[str, Any], extras: frozenset[str]) -> set[str]:
    """Names of a package's optional dependencies that the requested extras switch on."""
    enabled = set()
    for extra, requirements in package.get("extras", {}).items():
        if canonicalize_name(extra) in {canonicalize_name(e) for e in extras}:
            enabled |= {canonicalize_name(re.split(r"[\s(\[;<>=!~]", item.strip(), maxsplit=1)[0]) for item in requirements}
    return enabled
