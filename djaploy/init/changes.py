"""Everything init would change, as data: shown as diffs first, applied only when the user agrees."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from djaploy.errors import ConfigError
from djaploy.init.facts import ProjectFacts
from djaploy.init.gunicorn import AddLine, RunCommand, gunicorn_change, new_requirements
from djaploy.init.infra_files import Answers, render_config, render_inventory
from djaploy.init.settings_block import with_djaploy_settings


@dataclass(frozen=True)
class FileChange:
    """A file's text before (None: a new file) and after."""

    path: Path
    before: str | None
    after: str

    def diff(self, root: Path) -> str:
        name = self.path.relative_to(root).as_posix() if self.path.is_relative_to(root) else str(self.path)
        lines = difflib.unified_diff((self.before or "").splitlines(keepends=True), self.after.splitlines(keepends=True),
                                     "/dev/null" if self.before is None else f"a/{name}", f"b/{name}")
        return "".join(lines)


@dataclass
class InitPlan:
    """The files to write, the manager's command to run, and the infra files kept as they are."""

    files: list[FileChange] = field(default_factory=list)
    command: RunCommand | None = None
    kept: list[Path] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.files and self.command is None


def _new_file(path: Path, text: str, plan: InitPlan) -> None:
    """Never overwrite: an existing file is kept and listed."""
    if path.exists():
        plan.kept.append(path)
    else:
        plan.files.append(FileChange(path, None, text))


def _dependency_changes(facts: ProjectFacts, django_version: tuple[int, ...], plan: InitPlan) -> None:
    if facts.dependencies is None:
        plan.files.append(FileChange(facts.project_dir / "requirements.txt", None, new_requirements(django_version)))
        return
    change = gunicorn_change(facts.dependencies, facts.git_root)
    if isinstance(change, AddLine):
        before = change.path.read_text()
        plan.files.append(FileChange(change.path, before, (before.rstrip("\n") + "\n" if before.strip() else "")
                                     + change.line + "\n"))
    elif isinstance(change, RunCommand):
        plan.command = change


def plan_init(facts: ProjectFacts, answers: Answers, django_version: tuple[int, ...]) -> InitPlan:
    """What init changes in this project: missing infra files, missing settings, gunicorn if undeclared."""
    plan = InitPlan()
    _new_file(facts.infra_dir / "config.py", render_config(facts, answers), plan)
    _new_file(facts.infra_dir / "inventory" / f"{answers.env}.py", render_inventory(answers), plan)
    settings = facts.settings_path.read_text()
    updated = with_djaploy_settings(settings)
    if updated != settings:
        plan.files.append(FileChange(facts.settings_path, settings, updated))
    _dependency_changes(facts, django_version, plan)
    return plan


def _tool(name: str) -> str:
    """The manager's binary: on PATH, or beside this Python (a virtualenv's bin/)."""
    if name == "uv":
        from djaploy.dependencies import find_uv

        return find_uv()
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        raise ConfigError(f"{name} is not installed here; install it, or add gunicorn to the dependencies yourself")
    return found


def apply(plan: InitPlan) -> None:
    """Write the files (folders as needed), then run the manager's command; its failure is an error."""
    for change in plan.files:
        change.path.parent.mkdir(parents=True, exist_ok=True)
        change.path.write_text(change.after)
    if plan.command:
        argv = [_tool(plan.command.argv[0]), *plan.command.argv[1:]]
        result = subprocess.run(argv, cwd=plan.command.folder, capture_output=True, text=True)
        if result.returncode != 0:
            raise ConfigError(f"{' '.join(plan.command.argv)} failed in {plan.command.folder}:\n"
                              f"{(result.stderr or result.stdout).strip()[-2000:]}")
