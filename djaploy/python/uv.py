"""The uv provider: `uv python install` (uv checks each download against its sha256) into djaploy's
own store under /opt, with no executable on any PATH; `uv-<version>` links to the installed tree."""

from __future__ import annotations

import posixpath

from djaploy import shell
from djaploy.python.choice import PRINT_VERSION
from djaploy.python.naming import UV_STORE
from djaploy.python.settings import PythonSettings


def uv_environment(settings: PythonSettings) -> str:
    """`env` words for every uv call: the store, and the mirror or downloads JSON from the config."""
    variables = {"UV_PYTHON_INSTALL_DIR": UV_STORE, "UV_PYTHON_INSTALL_MIRROR": settings.install_mirror,
                 "UV_PYTHON_DOWNLOADS_JSON_URL": settings.downloads_json_url}
    return "env " + shell.join(f"{name}={value}" for name, value in variables.items() if value)


def find_command(uv: str, settings: PythonSettings) -> str:
    """Prints `version=<full>` and `python=<path in uv's store>` when uv has one of python_version."""
    find = f"{uv_environment(settings)} {shell.q(uv)} python find --managed-python --no-project {shell.q(settings.version)}"
    return (f"cd / && p=$({find} 2>/dev/null) && [ -n \"$p\" ] && "
            f"echo \"version=$(\"$p\" -c {shell.q(PRINT_VERSION)})\" && echo \"python=$p\"; true")


def install_command(uv: str, settings: PythonSettings) -> str:
    """Install python_version with uv (nothing in ~/.local/bin: --no-bin), then print what find prints."""
    install = (f"cd / && {uv_environment(settings)} {shell.q(uv)} python install --no-bin "
               f"{shell.q(settings.version)}")
    return f"mkdir -p {shell.q(UV_STORE)} && {install} && {find_command(uv, settings)}"


def tree_of(python: str) -> str:
    """The installed tree of an interpreter in uv's store (.../cpython-3.13.5-linux-x86_64-gnu)."""
    return posixpath.dirname(posixpath.dirname(python))
