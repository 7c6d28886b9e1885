"""Which dependency manager a project uses, and its pinned requirements list.

Everything here runs on the deploying machine. The server only ever sees one pinned
requirements file (``.djaploy-requirements.txt``, beside the project's dependency files in
the release) and installs it with uv or pip: no Poetry, Pipenv or project tooling there.

How each manager's list is produced, from the files at the shipped ref:

    pip      requirements.txt, shipped as it is
    poetry   poetry.lock, main group only (parsed here: no Poetry, no network)
    pipenv   Pipfile.lock, "default" section only (parsed here: no Pipenv, no network)
    uv       uv.lock through `uv export --frozen --offline` (no network), without dev groups
    pep621   pyproject.toml without a lock: resolved with `uv pip compile --universal`
             (needs the package index; the pinned result is what every host installs)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from djaploy.config import DEPENDENCY_MANAGERS
from djaploy.errors import ArtifactError, ConfigError

#: the pinned list inside a release, beside the project's dependency files
PINNED_NAME = ".djaploy-requirements.txt"

LABELS = {"pip": "pip (requirements.txt)", "poetry": "Poetry", "pipenv": "Pipenv", "uv": "uv",
          "pep621": "PEP 621 pyproject.toml without a lock"}
LOCK_COMMANDS = {"poetry": "poetry lock", "pipenv": "pipenv lock", "uv": "uv lock"}
PYPI_INDEXES = {"https://pypi.org/simple", "https://pypi.python.org/simple", "https://pypi.org/pypi"}
SUBPROCESS_TIMEOUT = 600
#: bounds the Poetry graph walk (a lock is a few hundred packages; this is never reached honestly)
MAX_WALK_STEPS = 200_000


@dataclass(frozen=True)
class DependencySpec:
    """How a project declares its dependencies: the manager and the files it reads."""

    manager: str  # one of config.DEPENDENCY_MANAGERS
    directory: str  # folder holding the files, relative to the git root, posix ("" = the root)
    files: tuple[str, ...]  # the files the pinned list is made from, relative to the git root

    @property
    def pinned_path(self) -> str:
        """Where the pinned list goes in the release: relative paths in it resolve as locally."""
        return (PurePosixPath(self.directory) / PINNED_NAME).as_posix() if self.directory else PINNED_NAME

    def describe(self) -> str:
        return f"{LABELS[self.manager]}: {', '.join(self.files)}"


@dataclass(frozen=True)
class PinnedRequirements:
    """The list the server installs, and what keys the venv (it also covers `-r` includes)."""

    text: str
    hash_input: str


class SourceTree(Protocol):
    """The project's files as shipped (working tree for --local, the commit otherwise)."""

    def read(self, path: str) -> str | None:
        """A file's text by path relative to the git root, or None when the release lacks it."""

    def directory(self) -> Path:
        """The tree on disk (for tools that read a folder, like uv)."""


# --- detection ----------------------------------------------------------------------------


def _pyproject(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def _indicators(folder: Path) -> dict[str, list[str]]:
    """Manager -> the files in `folder` that point at it."""
    pyproject = _pyproject(folder / "pyproject.toml")
    has = {name: (folder / name).is_file() for name in ("requirements.txt", "poetry.lock", "Pipfile", "Pipfile.lock", "uv.lock")}
    poetry_table = "poetry" in pyproject.get("tool", {})
    found: dict[str, list[str]] = {}
    if has["requirements.txt"]:
        found["pip"] = ["requirements.txt"]
    if has["poetry.lock"] or poetry_table:
        found["poetry"] = (["pyproject.toml [tool.poetry]"] if poetry_table else []) + (
            ["poetry.lock"] if has["poetry.lock"] else [])
    if has["Pipfile"] or has["Pipfile.lock"]:
        found["pipenv"] = [name for name in ("Pipfile", "Pipfile.lock") if has[name]]
    if has["uv.lock"]:
        found["uv"] = ["uv.lock"]
    if "project" in pyproject:
        found["pep621"] = ["pyproject.toml [project]"]
    return found


def _found_in(folder: Path) -> dict[str, list[str]]:
    """The managers a folder uses (several = ambiguous): a [project] table that Poetry or uv
    locks is theirs, not a lock-less PEP 621 project."""
    found = _indicators(folder)
    if "poetry" in found or "uv" in found:
        found.pop("pep621", None)
    return found


def _spec(manager: str, folder: Path, git_root: Path) -> DependencySpec:
    """The files `manager` needs in `folder`; a Poetry/Pipenv/uv project without its lock is an error."""
    relative = folder.relative_to(git_root).as_posix()
    directory = "" if relative == "." else relative
    needed = {"pip": ["requirements.txt"], "poetry": ["pyproject.toml", "poetry.lock"],
              "pipenv": ["Pipfile.lock"], "uv": ["pyproject.toml", "uv.lock"], "pep621": ["pyproject.toml"]}[manager]
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        lock = LOCK_COMMANDS.get(manager)
        how = f"run `{lock}` in {folder} and commit {missing[-1]}" if lock and missing[-1].endswith("lock") else \
            f"add {' and '.join(missing)} to {folder}"
        raise ConfigError(f"{LABELS[manager]} project without {' and '.join(missing)} in {folder}: {how}; "
                          "djaploy installs exactly what the lock file pins", field="dependency_manager")
    return DependencySpec(manager, directory, tuple((PurePosixPath(directory) / name).as_posix() for name in needed))


def detect_dependencies(project_dir: Path, git_root: Path, forced: str | None = None) -> DependencySpec:
    """Find how the project declares dependencies: beside manage.py first, then at the git root.

    Exactly one kind must be present in the first folder that has any, unless `forced`
    (config.py's dependency_manager) says which one to use.
    """
    folders = [project_dir.resolve()]
    if git_root.resolve() != folders[0]:
        folders.append(git_root.resolve())
    choose = 'choose one with dependency_manager="..." in config.py (' + ", ".join(DEPENDENCY_MANAGERS) + ")"
    if forced:
        if forced not in DEPENDENCY_MANAGERS:
            raise ConfigError(f"unknown dependency manager {forced!r}; {choose}", field="dependency_manager")
        for folder in folders:
            if forced in _indicators(folder):
                return _spec(forced, folder, git_root.resolve())
        raise ConfigError(f'dependency_manager="{forced}" but no {LABELS[forced]} files in '
                          f"{' or '.join(map(str, folders))}", field="dependency_manager")
    for folder in folders:
        found = _found_in(folder)
        if len(found) > 1:
            listing = "; ".join(f"{LABELS[name]} ({', '.join(files)})" for name, files in found.items())
            raise ConfigError(f"several dependency managers found in {folder}: {listing}; {choose}",
                              field="dependency_manager")
        if found:
            return _spec(next(iter(found)), folder, git_root.resolve())
    raise ConfigError(
        f"no dependency files found in {' or '.join(map(str, folders))}: djaploy looks for requirements.txt, "
        "pyproject.toml with poetry.lock (Poetry), Pipfile.lock (Pipenv), uv.lock (uv), or a pyproject.toml with "
        f"a [project] table; add one (listing Django and gunicorn) or {choose}",
        field="dependency_manager",
    )


# --- pinning ------------------------------------------------------------------------------


def pin_requirements(spec: DependencySpec, tree: SourceTree, python_version: str) -> PinnedRequirements:
    """The pinned requirements of `spec` in `tree`; errors name the file and what to run."""
    texts = {}
    for path in spec.files:
        text = tree.read(path)
        if text is None:
            raise ArtifactError(f"{path} is not part of this release; commit it (djaploy reads the "
                                f"{LABELS[spec.manager]} files at the ref it ships)")
        texts[path] = text
    header = f"# Pinned by djaploy from {', '.join(spec.files)} ({LABELS[spec.manager]}); installed as is.\n"
    if spec.manager == "pip":
        text = texts[spec.files[0]]
        return PinnedRequirements(text, text + _included_files(spec.files[0], text, tree))
    if spec.manager == "poetry":
        lines = poetry_requirements(texts[spec.files[1]], texts[spec.files[0]], source=spec.files[1])
    elif spec.manager == "pipenv":
        lines = pipenv_requirements(texts[spec.files[0]], source=spec.files[0])
    else:
        folder = tree.directory() / spec.directory
        if spec.manager == "uv":
            lines = uv_export(folder)
        else:
            lines = uv_compile(folder, python_version)
    text = header + "".join(f"{line}\n" for line in lines)
    return PinnedRequirements(text, text)


_INCLUDE_RE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)(?:\s+|=)(\S+)", re.MULTILINE)


def _included_files(path: str, text: str, tree: SourceTree, seen: frozenset[str] = frozenset()) -> str:
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
        parts.append(f"\n# {included}\n{content}{_included_files(included, content, tree, seen | {included})}")
    return "".join(parts)


def _load_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ArtifactError(f"{source} is not valid TOML: {error}") from None


def _index_options(urls: Iterable[str]) -> list[str]:
    """Extra package indexes the lock names. PyPI is the default; an index with credentials is
    left out (it would put them in the release): configure it on the server (pip.conf, uv.toml)."""
    options = set()
    for url in urls:
        clean = url.rstrip("/")
        if not clean or clean in PYPI_INDEXES or "${" in clean or "@" in urlsplit(clean).netloc:
            continue
        options.add(f"--extra-index-url {clean}")
    return sorted(options)


def _line(name: str, pin: str, marker: str = "", extras: Iterable[str] = ()) -> str:
    extras_text = f"[{','.join(sorted(extras))}]" if extras else ""
    return f"{name}{extras_text}{pin}" + (f" ; {marker}" if marker else "")


# Pipenv ---------------------------------------------------------------------------------


def pipenv_requirements(lock_text: str, *, source: str = "Pipfile.lock") -> list[str]:
    """Pipfile.lock's "default" section (never "develop") as pinned lines, markers kept."""
    try:
        lock = json.loads(lock_text)
        default: Mapping[str, Any] = lock["default"]
    except (ValueError, KeyError, TypeError):
        raise ArtifactError(f"{source} is not a Pipfile.lock (no \"default\" section); run `pipenv lock`") from None
    sources = lock.get("_meta", {}).get("sources", [])
    lines = _index_options(item.get("url", "") for item in sources if isinstance(item, dict))
    for name in sorted(default, key=canonicalize_name):
        entry = default[name]
        if not isinstance(entry, dict):
            raise ArtifactError(f"{source}: entry {name!r} is not a table; run `pipenv lock` again")
        lines.append(_pipenv_line(name, entry, source))
    return lines


def _pipenv_line(name: str, entry: Mapping[str, Any], source: str) -> str:
    marker, extras = entry.get("markers", ""), entry.get("extras", ())
    if "version" in entry:
        return _line(name, entry["version"], marker, extras)
    if "git" in entry:
        url = entry["git"] if entry["git"].startswith("git+") else f"git+{entry['git']}"
        ref = f"@{entry['ref']}" if entry.get("ref") else ""
        subdirectory = f"#subdirectory={entry['subdirectory']}" if entry.get("subdirectory") else ""
        return _line(name, f" @ {url}{ref}{subdirectory}", marker, extras)
    if "file" in entry:
        return _line(name, f" @ {entry['file']}", marker, extras)
    if "path" in entry:
        return _local_path(entry["path"]) + (f" ; {marker}" if marker else "")
    raise ArtifactError(f"{source}: {name} has no version, git, file or path; run `pipenv lock` again")


def _local_path(path: str) -> str:
    """A local package, installed (not editable: the venv outlives the release) from the release."""
    return path if path.startswith(("/", "./", "../")) else f"./{path}"


# Poetry ---------------------------------------------------------------------------------


def poetry_requirements(lock_text: str, pyproject_text: str, *, source: str = "poetry.lock") -> list[str]:
    """poetry.lock's main group as pinned lines, markers kept, dev and other groups left out.

    Locks from Poetry 2 (lock-version 2.1) record each package's groups and markers: those are
    used as they are. Older locks do not, so the main group is found by walking the dependency
    graph from pyproject.toml's main dependencies, following extras and combining markers.
    """
    lock = _load_toml(lock_text, source)
    packages = lock.get("package", [])
    if not isinstance(packages, list):
        raise ArtifactError(f"{source} has no [[package]] list; run `poetry lock`")
    if packages and all("groups" in package for package in packages):
        chosen = _poetry_main_by_groups(packages)
    else:
        chosen = poetry_main_by_graph(packages, _load_toml(pyproject_text, "pyproject.toml"), source)
    by_name = {canonicalize_name(package["name"]): package for package in packages}
    lines = _index_options(p.get("source", {}).get("url", "") for p in packages
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
        return _line(name, f"=={version}", marker)
    if kind == "git":
        subdirectory = f"#subdirectory={origin['subdirectory']}" if origin.get("subdirectory") else ""
        reference = origin.get("resolved_reference") or origin.get("reference")
        return _line(name, f" @ git+{origin['url']}@{reference}{subdirectory}", marker)
    if kind == "url":
        return _line(name, f" @ {origin['url']}", marker)
    if kind in ("directory", "file"):
        return _local_path(origin["url"]) + (f" ; {marker}" if marker else "")
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
                edge = _constraint_marker(constraint, extras, source)
                if edge is not False:
                    stack.append((canonicalize_name(child), _and(marker, edge), frozenset(constraint.get("extras", ()))))
    return {name: _or(markers) for name, markers in found.items()}


def _poetry_roots(pyproject: Mapping[str, Any]) -> Iterable[tuple[str, str, frozenset[str]]]:
    for text in pyproject.get("project", {}).get("dependencies", []):
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            raise ArtifactError(f"pyproject.toml: [project] dependency {text!r}: {error}") from None
        marker = _rewrite_marker(str(requirement.marker), frozenset()) if requirement.marker else ""
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
            edge = _constraint_marker(constraint, frozenset(), "pyproject.toml")
            if edge is not False:
                yield canonicalize_name(name), edge, frozenset(constraint.get("extras", ()))


def _enabled_optionals(package: Mapping[str, Any], extras: frozenset[str]) -> set[str]:
    """Names of a package's optional dependencies that the requested extras switch on."""
    enabled = set()
    for extra, requirements in package.get("extras", {}).items():
        if canonicalize_name(extra) in {canonicalize_name(e) for e in extras}:
            enabled |= {canonicalize_name(re.split(r"[\s(\[;<>=!~]", item.strip(), maxsplit=1)[0]) for item in requirements}
    return enabled


def _constraint_marker(constraint: Mapping[str, Any], extras: frozenset[str], source: str) -> str | bool:
    """The condition of one dependency edge: its markers, python and platform keys, extras resolved."""
    parts: list[str] = []
    if constraint.get("markers"):
        marker = _rewrite_marker(constraint["markers"], extras, source)
        if marker is False:
            return False
        if marker is not True:
            parts.append(marker)
    if constraint.get("python"):
        python = python_marker(constraint["python"], source)
        if python:
            parts.append(python)
    if constraint.get("platform"):
        parts.append(f'sys_platform == "{constraint["platform"]}"')
    return " and ".join(f"({part})" if " or " in part else part for part in parts)


def _and(left: str, right: str) -> str:
    if not left or not right:
        return left or right
    return f"({left}) and ({right})" if " or " in left + right else f"{left} and {right}"


def _or(markers: set[str]) -> str:
    if "" in markers:
        return ""
    ordered = sorted(markers)
    return ordered[0] if len(ordered) == 1 else " or ".join(f"({marker})" for marker in ordered)


def _rewrite_marker(text: str, extras: frozenset[str], source: str = "poetry.lock") -> str | bool:
    """Resolve `extra == "x"` clauses (true when x is requested) and keep every other clause."""
    try:
        parsed = Marker(text)._markers
    except InvalidMarker as error:
        raise ArtifactError(f"{source}: invalid marker {text!r}: {error}") from None
    wanted = {canonicalize_name(extra) for extra in extras}
    return _rewrite_nodes(parsed, wanted)


def _rewrite_nodes(nodes: list[Any], extras: set[str]) -> str | bool:
    groups: list[list[str | bool]] = [[]]
    for node in nodes:
        if node == "or":
            groups.append([])
        elif node != "and":
            groups[-1].append(_rewrite_node(node, extras))
    alternatives: list[str] = []
    for group in groups:
        if False in group:
            continue
        terms = [term for term in group if term is not True]
        if not terms:
            return True
        alternatives.append(" and ".join(f"({t})" if " or " in t else t for t in terms))  # type: ignore[misc]
    if not alternatives:
        return False
    return alternatives[0] if len(alternatives) == 1 else " or ".join(alternatives)


def _rewrite_node(node: Any, extras: set[str]) -> str | bool:
    if isinstance(node, list):
        return _rewrite_nodes(node, extras)
    left, op, right = node
    if "extra" in (left.value if type(left).__name__ == "Variable" else None,
                   right.value if type(right).__name__ == "Variable" else None):
        value = right.value if type(left).__name__ == "Variable" else left.value
        hit = canonicalize_name(value) in extras
        return hit if op.value == "==" else not hit
    return f"{left.serialize()} {op.serialize()} {right.serialize()}"


_CONSTRAINT_RE = re.compile(r"^(\^|~=|~|==|!=|>=|<=|>|<|=)?\s*([0-9][0-9a-zA-Z.*+!-]*)$")


def python_marker(constraint: str, source: str = "poetry.lock") -> str:
    """A Poetry python constraint ("^3.8", ">=3.6,<4", "3.9.*", "~3.7 || >=3.10") as a PEP 508 marker."""
    alternatives = []
    for alternative in constraint.split("||"):
        terms = []
        for part in re.split(r"\s*,\s*|\s+(?=[\^~<>=!])", alternative.strip()):
            if part in ("", "*"):
                continue
            match = _CONSTRAINT_RE.match(part)
            if not match:
                raise ArtifactError(f"{source}: cannot read the python constraint {constraint!r}")
            terms += _python_terms(match.group(1) or "==", match.group(2))
        if not terms:
            return ""
        alternatives.append(" and ".join(terms))
    return alternatives[0] if len(alternatives) == 1 else " or ".join(f"({a})" for a in alternatives)


def _python_terms(op: str, version: str) -> list[str]:
    def term(operator: str, value: str) -> str:
        return f'python_full_version {operator} "{value}"'

    numbers = [int(n) for n in version.split(".") if n.isdigit()]
    if op == "^":
        first = next((i for i, n in enumerate(numbers) if n), len(numbers) - 1)
        upper = numbers[: first + 1]
        upper[-1] += 1
        return [term(">=", version), term("<", ".".join(map(str, upper)))]
    if op == "~":
        upper = numbers[:2] if len(numbers) > 1 else numbers[:1]
        upper[-1] += 1
        return [term(">=", version), term("<", ".".join(map(str, upper)))]
    return [term("==" if op == "=" else op, version)]


# uv -----------------------------------------------------------------------------------------


def find_uv() -> str:
    """The uv binary on the deploying machine: the `uv` package djaploy depends on, or PATH."""
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found]

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if not found:
        raise ArtifactError("uv projects (and pyproject.toml projects without a lock) need uv on the machine you "
                            "deploy from: pip install uv")
    return found


def _run_uv(arguments: list[str], folder: Path, what: str) -> list[str]:
    command = [find_uv(), *arguments]
    try:
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ArtifactError(f"{what} took longer than {SUBPROCESS_TIMEOUT}s in {folder}") from None
    if result.returncode != 0:
        raise ArtifactError(f"{what} failed in {folder}:\n{result.stderr.strip()[-2000:]}")
    return [line for line in result.stdout.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def uv_export(folder: Path) -> list[str]:
    """uv.lock's pinned list without dev or other default groups, offline, from the lock as it is."""
    return _run_uv(
        ["export", "--frozen", "--offline", "--no-default-groups", "--no-emit-project", "--no-editable",
         "--no-hashes", "--no-header", "--no-annotate", "--format", "requirements.txt", "--project", str(folder)],
        folder,
        "uv export (uv.lock -> pinned requirements)",
    )


def uv_compile(folder: Path, python_version: str) -> list[str]:
    """Resolve a lock-less pyproject.toml's [project] dependencies once, for every platform.

    Resolving here (not on each server) means every host installs the same versions, and the
    venv is reused until the resolution changes.
    """
    return _run_uv(
        ["pip", "compile", "pyproject.toml", "--universal", "--python-version", python_version,
         "--no-header", "--no-annotate", "--quiet"],
        folder,
        "uv pip compile (pyproject.toml -> pinned requirements; reads the package index)",
    )


# reading a pinned list -----------------------------------------------------------------------


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
