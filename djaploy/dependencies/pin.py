"""The one pinned requirements list a release ships, whichever manager the project uses."""

from __future__ import annotations

from djaploy.errors import ArtifactError

from .pipenv import pipenv_requirements
from .poetry import poetry_requirements
from .requirements_txt import included_files
from .spec import LABELS, DependencySpec, PinnedRequirements, SourceTree
from .uv import uv_compile, uv_export


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
        return PinnedRequirements(text, text + included_files(spec.files[0], text, tree))
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
