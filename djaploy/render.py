"""Render Jinja2 templates: the project's own in ``infra/templates/``, then djaploy's in djaploy/templates/.

A module (built-in or the project's) renders its files with ``render(name, ctx.config_dir, **values)``.
A template in the project's ``infra/templates/`` wins over djaploy's of the same name, so a
project can ship its own units and sites, and change a built-in one without forking djaploy.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from djaploy.errors import ConfigError, display_path

if TYPE_CHECKING:  # jinja2 loads on the first render: a rollback or an activate renders nothing
    import jinja2

TEMPLATES_DIR = Path(__file__).parent / "templates"
#: the project's templates, inside its infra folder
PROJECT_TEMPLATES = "templates"


@lru_cache(maxsize=8)
def _environment(project_templates: str | None) -> jinja2.Environment:
    import jinja2

    search = [project_templates] if project_templates else []
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([*search, str(TEMPLATES_DIR)]),  # the first folder holding the name wins
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, never an empty string
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def project_templates(config_dir: Path | str) -> Path:
    """Where a project keeps its own templates: infra/templates/."""
    return Path(config_dir).absolute() / PROJECT_TEMPLATES


def render(template: str, /, config_dir: Path | str | None = None, **values: Any) -> str:
    """Render `template` with `values`; `config_dir` (the infra folder, ``ctx.config_dir``) adds the
    project's templates, which win over djaploy's."""
    import jinja2

    folder = project_templates(config_dir) if config_dir is not None else None
    try:
        loaded = _environment(str(folder) if folder else None).get_template(template)
    except jinja2.TemplateNotFound:
        where = f"{display_path(folder)}/ or djaploy's templates" if folder else "djaploy's templates"
        raise ConfigError(f"template {template!r} not found in {where}") from None
    return loaded.render(**values)
