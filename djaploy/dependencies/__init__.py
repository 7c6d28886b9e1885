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

One module per concern: `spec` (the data), `detect` (which manager), `pin` (the list a release
ships), the parsers `requirements_txt`, `pipenv`, `poetry` (+ `markers`, `lines`) and `uv`.
"""

from __future__ import annotations

from .detect import detect_dependencies
from .markers import python_marker
from .pin import pin_requirements
from .pipenv import pipenv_requirements
from .poetry import poetry_main_by_graph, poetry_requirements
from .requirements_txt import requirement_names
from .spec import LABELS, LOCK_COMMANDS, PINNED_NAME, DependencySpec, PinnedRequirements, SourceTree
from .uv import find_uv, uv_compile, uv_export

__all__ = [
    "LABELS",
    "LOCK_COMMANDS",
    "PINNED_NAME",
    "DependencySpec",
    "PinnedRequirements",
    "SourceTree",
    "detect_dependencies",
    "find_uv",
    "pin_requirements",
    "pipenv_requirements",
    "poetry_main_by_graph",
    "poetry_requirements",
    "python_marker",
    "requirement_names",
    "uv_compile",
    "uv_export",
]
