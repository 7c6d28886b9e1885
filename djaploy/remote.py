"""manage.py and service logs on a host, through the system OpenSSH client.

`manage.py remote` must be interactive (`shell`, `createsuperuser` need a terminal on the
server), which pyinfra cannot give; `ssh -t` can. So these commands run OpenSSH with the
host's user, port, key and known_hosts file (unknown keys accepted on first use, a changed
key refused, like the engine). Commands are built here as data: the remote command string is
quoted with shlex, layer by layer, and never holds a secret: the release's environment file
is sourced on the server, as the app user.

Which code is live comes from the host's .djaploy/state.json (what was really deployed,
which may differ from the configured strategy until the next deploy):
in_place code/, zero_downtime current, bluegreen slots/<active>.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from djaploy import migrate, shell
from djaploy.config import DjaployConfig, Target
from djaploy.errors import ConnectError, DjaployError
from djaploy.inventory import load_targets_without_secrets
from djaploy.layout import LANES, AppPaths, AppService, project_subdir
from djaploy.state import InvalidState, parse_state, read_command, serving

#: what OpenSSH exits with when it fails itself (connection, authentication, host key)
SSH_FAILED = 255
READ_TIMEOUT = 60


# --- targets, without the secrets these commands never send --------------------------------


def pick_hosts(targets: Sequence[Target], env: str, name: str | None) -> list[Target]:
    """The host named `name`, or all hosts of the environment."""
    if name is None:
        return list(targets)
    chosen = [target for target in targets if target.name == name]
    if not chosen:
        names = ", ".join(target.name for target in targets)
        raise DjaployError(f"environment {env!r} has no host {name!r}; its hosts: {names}")
    return chosen


# --- commands as data -----------------------------------------------------------------------


def _ssh_option_value(value: str) -> str:
    """ssh -o splits its value on spaces unless it is double-quoted."""
    return f'"{value}"' if any(c.isspace() for c in value) else value


def ssh_argv(target: Target, remote_command: str, *, tty: bool = False) -> list[str]:
    """OpenSSH argv running `remote_command` on the host; interactive when `tty`.

    Without a terminal, BatchMode makes ssh fail instead of waiting for a password or a
    passphrase nobody can type.
    """
    argv = ["ssh", "-p", str(target.ssh_port), "-l", target.ssh_user,
            "-o", "StrictHostKeyChecking=accept-new", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]
    if target.ssh_key:
        argv += ["-i", target.ssh_key, "-o", "IdentitiesOnly=yes"]
    if target.ssh_known_hosts_file:
        argv += ["-o", f"UserKnownHostsFile={_ssh_option_value(target.ssh_known_hosts_file)}"]
    argv += ["-t"] if tty else ["-T", "-o", "BatchMode=yes"]
    return [*argv, "--", target.ssh_host, remote_command]


def privileged(target: Target, command: str) -> str:
    """`command` as root: directly for root, through passwordless sudo for another ssh user."""
    if target.ssh_user == "root":
        return command
    return f"sudo -n sh -c {shell.q(command)}"


def as_app_user(target: Target, command: str) -> str:
    """`command` as the app user (its files, its database), never with the deployer's rights."""
    if target.ssh_user == target.app_user:
        return command
    return f"sudo -n -H -u {shell.q(target.app_user)} -- sh -c {shell.q(command)}"


@dataclass(frozen=True)
class Live:
    """What serves on a host now: the service, its code folder, and the release in it."""

    strategy: str
    service: AppService
    release: str
    lanes: tuple[str, ...] = ()  # zero_downtime: both lanes' units (the next deploy serves from the other)

    @property
    def journal_units(self) -> tuple[str, ...]:
        """The units whose journal is the app's: a followed journal must not lose it at the next deploy."""
        return self.lanes or (self.service.service,)


def live_from_state(paths: AppPaths, state: Mapping[str, Any], host: str, env: str) -> Live:
    """Read the live service from state.json (pure; unit tested)."""
    now = serving(dict(state))
    if not now.strategy:
        raise DjaployError(f"[{host}] nothing is deployed yet; deploy first: manage.py deploy --env {env} --latest")
    if now.strategy == "bluegreen":
        if not now.slot:
            raise DjaployError(f"[{host}] no bluegreen slot is active yet; switch traffic to the staged one "
                               f"with manage.py activate --env {env}")
        return Live(now.strategy, paths.service_for(now.strategy, now.slot), str(now.release or "?"))
    if now.strategy not in ("in_place", "zero_downtime"):
        raise DjaployError(f"[{host}] state.json names an unknown strategy {now.strategy!r}; run a deploy to repair it")
    service = paths.service_for(now.strategy, now.slot)
    lanes = tuple(paths.service_for(now.strategy, lane).service for lane in LANES) if now.slot else ()
    return Live(now.strategy, service, str(now.release or "?"), lanes)


def manage_command(target: Target, live: Live, manage_py: str, args: Sequence[str]) -> str:
    """manage.py in the live release, as the app user, with the release's environment file."""
    service = live.service
    project_dir = project_subdir(service.code_link, manage_py)
    return as_app_user(target, migrate.manage_command(service.env_file, project_dir, service.venv_link, args))


def journal_command(target: Target, units: Sequence[str], *, lines: int, follow: bool) -> str:
    """The live service's journal: gunicorn's own lines and its access log."""
    words = ["journalctl", *(word for unit in units for word in ("-u", unit)), "--no-pager", "-n", str(lines)]
    if follow:
        words.append("-f")
    return privileged(target, shell.join(words))


# --- running ---------------------------------------------------------------------------------


def read_remote(target: Target, command: str) -> str:
    """Run a short non-interactive command; its stdout, or an error that says what failed."""
    try:
        result = subprocess.run(ssh_argv(target, command), check=False, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=READ_TIMEOUT)
    except FileNotFoundError:
        raise DjaployError("the ssh client is not installed; install OpenSSH (apt-get install openssh-client)") from None
    except subprocess.TimeoutExpired:
        raise ConnectError(f"[{target.name}] no answer from {target.ssh_host} within {READ_TIMEOUT}s") from None
    if result.returncode == SSH_FAILED:
        raise ConnectError(f"[{target.name}] cannot connect to {target.ssh_user}@{target.ssh_host}:{target.ssh_port}: "
                           f"{result.stderr.strip()}\nCheck the host is up and the ssh_host, ssh_port, ssh_user "
                           "and ssh_key fields of the inventory.")
    if result.returncode != 0:
        hint = ""
        if "password is required" in result.stderr:
            hint = f"\n{target.ssh_user} needs passwordless sudo on the host (or connect as root)."
        raise DjaployError(f"[{target.name}] `{command}` failed ({result.returncode}): {result.stderr.strip()}{hint}")
    return result.stdout


def read_live(target: Target, env: str) -> Live:
    """One round trip: the host's state.json, then what serves."""
    paths = AppPaths.for_target(target)
    try:
        state = parse_state(read_remote(target, privileged(target, read_command(paths))))
    except InvalidState:
        raise DjaployError(f"[{target.name}] {paths.state_file} is not valid JSON; run a deploy to repair it") from None
    return live_from_state(paths, state, target.name, env)


def attached_to_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def run_interactive(target: Target, command: str, *, tty: bool) -> int:
    """Run with this process's stdin/stdout/stderr; the remote command's exit code."""
    try:
        return subprocess.run(ssh_argv(target, command, tty=tty), check=False).returncode
    except FileNotFoundError:
        raise DjaployError("the ssh client is not installed; install OpenSSH (apt-get install openssh-client)") from None
    except KeyboardInterrupt:
        return 130


def stream_prefixed(commands: Mapping[str, list[str]], out: TextIO) -> int:
    """Run several ssh commands at once, each output line prefixed with its host; worst exit code."""
    lock = threading.Lock()
    processes = {host: subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, errors="replace")
                 for host, argv in commands.items()}

    def pump(host: str, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with lock:
                out.write(f"[{host}] {line}")
                out.flush()

    threads = [threading.Thread(target=pump, args=item, daemon=True) for item in processes.items()]
    for thread in threads:
        thread.start()
    try:
        codes = [process.wait() for process in processes.values()]
    except KeyboardInterrupt:
        for process in processes.values():
            process.terminate()
        return 130
    for thread in threads:
        thread.join(timeout=5)
    return max(codes, default=0)


# --- the two commands ------------------------------------------------------------------------


def local_manage_py(config_dir: Path, config: DjaployConfig) -> str:
    """manage.py relative to the git root: where it is in every release of this project."""
    from djaploy.project import find_git_root, find_manage_py

    return find_manage_py(config_dir, find_git_root(config_dir), config.manage_py_path)


def run_manage(config_dir: Path, env: str, args: Sequence[str], *, host: str | None = None,
               tty: bool | None = None, err: TextIO = sys.stderr) -> int:
    """`manage.py <args>` in the live release of one host; returns its exit code."""
    if not args:
        raise DjaployError("give the manage.py command to run after --, e.g. manage.py remote --env "
                           f"{env} -- migrate --check")
    config, targets = load_targets_without_secrets(config_dir, env)
    chosen = pick_hosts(targets, env, host)
    target = chosen[0]
    manage_py = local_manage_py(config_dir, config)
    live = read_live(target, env)
    others = f"; first of {len(chosen)} hosts, choose one with --host" if len(chosen) > 1 else ""
    err.write(f"[{target.name}] manage.py {shell.join(args)} in release {live.release} ({live.service.code_link}{others})\n")
    err.flush()
    interactive = attached_to_terminal() if tty is None else tty
    return run_interactive(target, manage_command(target, live, manage_py, args), tty=interactive)


def show_logs(config_dir: Path, env: str, *, host: str | None = None, lines: int = 100, follow: bool = False,
              out: TextIO = sys.stdout) -> int:
    """The live service's journal on one host, or on every host with each line prefixed."""
    if lines < 0:
        raise DjaployError(f"--lines must be 0 or more, got {lines}")
    _, targets = load_targets_without_secrets(config_dir, env)
    chosen = pick_hosts(targets, env, host)
    commands = {t.name: journal_command(t, read_live(t, env).journal_units, lines=lines, follow=follow) for t in chosen}
    if len(chosen) == 1:
        out.flush()
        return run_interactive(chosen[0], commands[chosen[0].name], tty=follow and attached_to_terminal())
    return stream_prefixed({t.name: ssh_argv(t, commands[t.name]) for t in chosen}, out)
