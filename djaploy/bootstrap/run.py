"""The order bootstrap works in, per host: log in as ssh_user if that already works (root is then
never used); else log in as root, create the user, and log in again as the user. Only after
that login and `sudo -n` are proven does anything lock root or passwords out, so a mistake can
never leave a host nobody can reach."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from djaploy.bootstrap import steps
from djaploy.config import Target
from djaploy.engine import Engine
from djaploy.errors import ConfigError, ConnectError, DjaployError
from djaploy.output import Reporter
from djaploy.redact import Redactor
from djaploy.session import RunResult, open_session, raise_if_failed


@dataclass(frozen=True)
class RootLogin:
    """How to log in as root the first time: a key, or a password (from a prompt or a variable,
    never argv or the inventory). `ask_password` prompts when the key is refused (a TTY only)."""

    user: str = "root"
    key: str | None = None
    password: str | None = field(default=None, repr=False)
    ask_password: Callable[[str], str] | None = field(default=None, repr=False, compare=False)


def bootstrap(config_dir: Path, env: str, root: RootLogin, *, out: TextIO, verbosity: int = 1,
              log: TextIO | None = None) -> RunResult:
    """Bootstrap every host of `env`, one after the other (a first login may prompt)."""
    session = open_session(config_dir, env, out, verbosity, log, needs_secrets=False)
    for target in session.targets:
        if target.ssh_user == "root":
            raise ConfigError("bootstrap creates ssh_user and then closes root logins: set ssh_user= to another "
                              "user (like 'deploy') in the inventory", file=target.source_file, field="ssh_user")
    reporter = session.reporter
    result = RunResult("bootstrap", env, dry_run=False)
    started = time.monotonic()
    for target in session.targets:
        try:
            result.messages[target.name] = bootstrap_host(target, root, reporter, session.targets)
        except (DjaployError, KeyboardInterrupt) as error:
            result.errors[target.name] = error
            result.serving[target.name] = "what it served before (bootstrap deploys nothing)"
        result.changed[target.name] = len(reporter.changed_steps(target.name))
        if isinstance(result.errors.get(target.name), KeyboardInterrupt):
            break
    result.seconds = time.monotonic() - started
    raise_if_failed(result, len(session.targets), reporter)
    return result


def bootstrap_host(target: Target, root: RootLogin, reporter: Reporter, fleet: Sequence[Target] = ()) -> str:
    public_key = deployer_public_key(target)
    user = target.ssh_user
    try:
        engine = _connected(target, reporter)
        how = f"{user} logs in with the key: root was not used"
    except ConnectError:
        reporter.line(f"[{target.name}] {user} cannot log in yet: creating it as {root.user}")
        _create_user_as_root(target, root, public_key, reporter)
        try:
            engine = _connected(target, reporter)
        except ConnectError as error:
            raise DjaployError(f"[{target.name}] {user} was created but cannot log in with {target.ssh_key}, so "
                               f"root login and passwords were left as they were:\n{error}") from None
        how = f"created {user}; root login and passwords are now off"
    try:
        plan = engine.plan_for(target)
        proof = plan.query("sudo -n id -u", sudo=False)
        if proof.stdout.strip() != "0":
            raise DjaployError(f"[{target.name}] {user} logs in but has no passwordless sudo "
                               f"({(proof.stderr or proof.stdout).strip()}); nothing was locked. Give it "
                               f"'{steps.sudoers_line(user).strip()}' in /etc/sudoers.d/, or remove the user and rerun")
        steps.harden(plan, target, fleet)
    finally:
        engine.disconnect()
    return how


def _connected(target: Target, reporter: Reporter, password: str | None = None) -> Engine:
    engine = Engine([target], reporter, passwords={target.name: password} if password else None)
    engine.connect()
    return engine


def _create_user_as_root(target: Target, root: RootLogin, public_key: str, reporter: Reporter) -> None:
    root_target = replace(target, ssh_user=root.user, ssh_key=root.key or target.ssh_key)
    password = root.password
    if password:
        reporter.redact = Redactor([password])
    try:
        engine = _connected(root_target, reporter, password)
    except ConnectError as error:
        if "Authentication" not in str(error):
            raise
        if password is None and root.ask_password is not None:
            password = root.ask_password(f"password for {root.user}@{target.ssh_host}: ")
            reporter.redact = Redactor([password])
            return _create_user_as_root(target, replace(root, password=password, ask_password=None), public_key, reporter)
        refused = "the password" if password else f"the key {root_target.ssh_key}"
        raise DjaployError(f"[{target.name}] {root.user}@{target.ssh_host} refused {refused}: nothing was changed. "
                           "Give the root login with --root-key PATH or --root-password-env VAR") from None
    try:
        steps.create_login_user(engine.plan_for(root_target), target.ssh_user, public_key)
    finally:
        engine.disconnect()


def deployer_public_key(target: Target) -> str:
    """The public half of the host's ssh_key: KEY.pub beside it, or derived with ssh-keygen -y."""
    if not target.ssh_key:
        raise ConfigError("bootstrap authorizes the deployer's key for ssh_user: set ssh_key= to your private key",
                          file=target.source_file, field="ssh_key")
    public = Path(f"{target.ssh_key}.pub")
    if public.is_file():
        return public.read_text().strip()
    derived = subprocess.run(["ssh-keygen", "-y", "-f", target.ssh_key], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, check=False)
    if derived.returncode != 0 or not derived.stdout.strip():
        raise ConfigError(f"cannot read the public key of {target.ssh_key} (no {public.name} beside it, and "
                          f"ssh-keygen -y said: {derived.stderr.strip()})", file=target.source_file, field="ssh_key")
    return derived.stdout.strip()
