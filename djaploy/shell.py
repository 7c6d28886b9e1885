"""Remote shell commands as data: pure functions that return quoted command strings.

Modules and strategies build commands here so unit tests can assert the exact text, and so
quoting is done once, with shlex, never with hand-built f-string scripts.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "$": "\\$", "`": "\\`"})


def q(value: object) -> str:
    """Quote one shell word."""
    return shlex.quote(str(value))


def join(words: Iterable[object]) -> str:
    return " ".join(q(word) for word in words)


def render_env_file(variables: Mapping[str, str]) -> str:
    """An environment file that both systemd's EnvironmentFile= and `sh -c '. file'` read the same.

    Values are double-quoted with \\ " $ ` escaped: the escapes both parsers understand.
    """
    lines = ["# Written by djaploy on every deploy. Holds secrets: keep it 0600."]
    for name in sorted(variables):
        value = variables[name]
        if not ENV_NAME_RE.match(name):
            raise ValueError(f"invalid environment variable name {name!r}")
        if "\n" in value or "\r" in value:
            raise ValueError(f"environment variable {name} contains a newline, which env files cannot hold")
        lines.append(f'{name}="{value.translate(_ENV_ESCAPES)}"')
    return "\n".join(lines) + "\n"


def with_env_file(env_file: str, command: str) -> str:
    """Run `command` with the app's environment loaded from its env file (no values on argv)."""
    return f"set -a && . {q(env_file)} && set +a && {command}"


def manage_py(env_file: str, project_dir: str, venv_dir: str, args: Iterable[str]) -> str:
    """Run manage.py from a release with the release's environment."""
    python = f"{venv_dir}/bin/python"
    return with_env_file(env_file, f"cd {q(project_dir)} && exec {q(python)} manage.py {join(args)}")


def ensure_venv(venv_dir: str, python: str, requirements: str, marker: str, *, uv: str | None = None,
                cwd: str | None = None) -> str:
    """Create the venv and install the pinned requirements, unless a finished one exists.

    The marker is written only after the install succeeded, so a half-installed venv is never
    trusted: it is removed and built again. With `uv` (a binary path) the install uses uv when
    that binary is there, and pip otherwise. `cwd` is where relative paths in the requirements
    resolve (and a folder the app user can read: uv reads its config from there).
    """
    v = q(venv_dir)
    marker_path = q(f"{venv_dir}/{marker}")
    pip = (f"{q(python)} -m venv {v} && "
           f"{v}/bin/pip install --disable-pip-version-check --no-input -q -r {q(requirements)} && echo 'installed with pip'")
    install = pip
    if uv:
        with_uv = (f"{q(python)} -m venv --without-pip {v} && "
                   f"{q(uv)} pip install --quiet --python {v}/bin/python -r {q(requirements)} && echo 'installed with uv'")
        install = f"if [ -x {q(uv)} ]; then {with_uv}; else {pip}; fi"
    enter = f"cd {q(cwd)} && " if cwd else ""
    return (
        f"if [ -f {marker_path} ]; then echo {q('venv reused: ' + venv_dir)}; else "
        f"rm -rf {v} && {enter}{{ {install}; }} && "
        f"touch {marker_path} && echo {q('venv created: ' + venv_dir)}; fi"
    )


def install_uv(tools_venv: str, uv: str, python: str) -> str:
    """Install uv into its own venv, once (a half-finished attempt is redone from scratch)."""
    t = q(tools_venv)
    return (
        f"if [ -x {q(uv)} ]; then echo 'uv present'; else rm -rf {t} && {q(python)} -m venv {t} && "
        f"{t}/bin/pip install --disable-pip-version-check --no-input -q uv && {q(uv)} --version; fi"
    )


def extract_tarball(tarball: str, destination: str) -> str:
    """Extract a release into a fresh folder (removing a leftover of a failed attempt)."""
    d = q(destination)
    return f"rm -rf {d} && mkdir -p {d} && tar -xzf {q(tarball)} -C {d} --no-same-owner"


def replace_dir(new: str, live: str) -> str:
    """in_place: put `new` where `live` is; the old code is removed only after the rename."""
    old = q(f"{live}.old")
    return f"rm -rf {old} && if [ -e {q(live)} ]; then mv {q(live)} {old}; fi && mv {q(new)} {q(live)} && rm -rf {old}"


@lru_cache(maxsize=1)
def _health_script() -> str:
    return (resources.files("djaploy") / "scripts" / "health_check.sh").read_text()


def health_check(host: str, path: str, *, scheme: str = "http", resolve: str | None = None, unix_socket: str | None = None,
                 attempts: int = 30, interval: float = 0.5, pid: str | None = None, label: str | None = None) -> str:
    """Require a final 2xx from `path` for `host`, following same-host redirects (see the script).

    The script is a fixed text and every value is one of its arguments, so a hostile value can
    never run as code. `pid` is a shell word on purpose (``"$(systemctl show ...)"``): the
    gunicorn that must stay alive while it is checked.
    """
    args = [host, path, "--scheme", scheme, "--attempts", attempts, "--interval", interval]
    for option, value in (("--resolve", resolve), ("--socket", unix_socket), ("--label", label)):
        if value is not None:
            args += [option, value]
    watch = f' --pid "{pid}"' if pid else ""
    return f"sh -c {q(_health_script())} health-check {join(args)}{watch}"


def http_check(host_header: str, path: str, *, attempts: int = 30, unix_socket: str | None = None) -> str:
    """Through the host's own web server on port 80 (or a running service's socket)."""
    resolve = None if unix_socket else "127.0.0.1"
    return health_check(host_header, path, resolve=resolve, unix_socket=unix_socket, attempts=attempts)


def https_check(domain: str, path: str, *, attempts: int = 30) -> str:
    """Over HTTPS from the host's own web server for `domain` (SNI and Host).

    curl's -k: the issuer may be one the host itself does not trust (a staging or test CA); this
    proves the web server serves TLS and the app behind it, not who signed the certificate.
    """
    return health_check(domain, path, scheme="https", resolve="127.0.0.1", attempts=attempts,
                        label=f"HTTPS check {path}")


def switch_symlink(link: str, target: str) -> str:
    """Point `link` at `target` atomically: a temporary link renamed over the old one.

    Never rm-then-ln: there is no moment when `link` is missing.
    """
    temporary = f"{link}.djaploy-tmp"
    return f"ln -sfn {q(target)} {q(temporary)} && mv -T {q(temporary)} {q(link)}"


def write_file_atomically(path: str, content: str) -> str:
    """Write small non-secret content (JSON state) through a temporary file and a rename."""
    temporary = f"{path}.tmp"
    return f"printf '%s\\n' {q(content)} > {q(temporary)} && mv -f {q(temporary)} {q(path)}"


def install_private(staged: str, path: str, owner: str, mode: str) -> str:
    """Copy an upload into place so that it is never readable by others: created under umask 077
    beside `path`, given its owner and mode, then renamed over it (atomic)."""
    temporary = f"{path}.djaploy-new"
    return (f"umask 077 && cp {q(staged)} {q(temporary)} && chown {q(owner + ':' + owner)} {q(temporary)} && "
            f"chmod {q(mode)} {q(temporary)} && mv -f {q(temporary)} {q(path)}")


def acquire_lock(lock_dir: str, info: str) -> str:
    """mkdir is atomic: exactly one deployer creates the lock. Prints 'acquired' or 'held' + holder."""
    info_file = q(f"{lock_dir}/info.json")
    return (
        f"mkdir -p {q(posixpath.dirname(lock_dir))} && "
        f"if mkdir {q(lock_dir)} 2>/dev/null; then printf '%s\\n' {q(info)} > {info_file} && echo acquired; "
        f"else echo held; cat {info_file} 2>/dev/null || echo '{{}}'; fi"
    )


def release_lock(lock_dir: str, audit_log: str, audit_line: str) -> str:
    """Append the audit line, then release the lock (one round trip at the end of an operation)."""
    return f"printf '%s\\n' {q(audit_line)} >> {q(audit_log)}; rm -rf {q(lock_dir)}"


def remove_unused_venvs(shared: str, code_dirs_glob: str) -> str:
    """Remove venvs in `shared` that no kept code folder links to (by resolved path)."""
    return (
        f"for v in {q(shared)}/venv-*; do [ -d \"$v\" ] || continue; used=0; "
        f"for l in {code_dirs_glob}; do [ -L \"$l\" ] && [ \"$(readlink -f \"$l\")\" = \"$(readlink -f \"$v\")\" ] && used=1; done; "
        f"if [ $used = 0 ]; then rm -rf \"$v\" && echo \"removed $v\"; fi; done; true"
    )


def systemctl(verb: str, *units: str, flags: Iterable[str] = ()) -> str:
    """One systemctl call with every unit quoted (unit names come from config: never trusted)."""
    return f"systemctl {join([verb, *flags, *units])}"


def wait_active(unit: str, seconds: float = 8) -> str:
    """Print "active" once `unit` is active again, else its last state after `seconds`: a start
    that failed is retried by the unit's own Restart=on-failure (RestartSec=2 in djaploy's units)."""
    state = systemctl("show", unit, flags=["-p", "ActiveState", "--value"])
    tries = max(1, round(seconds / 0.5))
    return (f"i=0; while :; do s=$({state}); [ \"$s\" = active ] && break; i=$((i+1)); "
            f"[ $i -ge {tries} ] && break; sleep 0.5; done; echo \"$s\"")


def journal_tail(unit: str, lines: int = 30) -> str:
    """The unit's last journal lines: why it failed, shown with the failure."""
    return f"journalctl {join(['-u', unit, '-n', str(lines), '--no-pager', '-o', 'cat'])} 2>&1; true"


def wait_nginx_reloaded(seconds: int = 10) -> str:
    """`systemctl reload nginx` returns before old workers are gone; wait until they are."""
    return (
        f"i=0; while pgrep -f 'nginx: worker process is shutting dow[n]' >/dev/null; do "
        f"i=$((i+1)); [ $i -ge {seconds * 10} ] && break; sleep 0.1; done; true"
    )
