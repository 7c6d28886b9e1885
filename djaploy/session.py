"""A command's session: its validated inputs, its run on every host, and what happened per host.

`open_session` loads and checks everything before any connection (config, inventory, each
module's `check_target`); `run_on_hosts` connects and runs one function per host in parallel,
collecting a `RunResult`. Every command (actions, certs, restore) sits on these two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from djaploy.config import Target
from djaploy.context import HostContext, Plan
from djaploy.engine import Engine
from djaploy.output import Reporter
from djaploy.redact import Redactor
from djaploy.errors import DjaployError
from djaploy.inventory import load_targets, load_targets_without_secrets
from djaploy.modules.base import BaseModule, load_module_class, load_modules
from djaploy.modules.options import is_ip_address, module_options
from djaploy.state import read_state, serving_from_state
from djaploy.timings import timed_process

if TYPE_CHECKING:  # building a release is deploy's alone: other commands skip its imports
    from djaploy.artifact import Release


@dataclass
class RunResult:
    """The outcome of one command over all hosts of an environment."""

    command: str
    env: str
    dry_run: bool
    seconds: float = 0.0
    errors: dict[str, BaseException] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    release: Release | None = None
    urls: dict[str, list[str]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    serving: dict[str, str] = field(default_factory=dict)  # after a failure: what the host still serves
    strategies: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # about the whole run: version, tag, notifications

    @property
    def ok(self) -> bool:
        return not self.errors


class RunFailed(DjaployError):
    """One or more hosts failed; carries the partial result for the summary."""

    def __init__(self, result: RunResult, message: str) -> None:
        self.result = result
        super().__init__(message)


@dataclass
class Session:
    """Validated inputs of one command: config, hosts, modules, and the reporter."""

    config_dir: Path
    env: str
    targets: list[Target]
    modules: dict[str, list[BaseModule]]
    reporter: Reporter
    config: Any
    #: every value output and logs must hide: the hosts' secrets and what their modules' secret_values() gave
    hidden: list[str] = field(default_factory=list)


def open_session(config_dir: Path, env: str, out: TextIO, verbosity: int, log: TextIO | None = None,
                 *, needs_secrets: bool = True) -> Session:
    """Load and validate everything before any connection. Commands that send no secrets to the
    hosts (status, unlock) work without the deployer's secret variables."""
    with timed_process("load config"):
        config, targets = (load_targets if needs_secrets else load_targets_without_secrets)(config_dir, env)
        config_file = str(config_dir / "config.py")
        modules = {target.name: load_modules(target.modules, file=config_file) for target in targets}
        hidden = [value for target in targets for value in target.secrets.values()]
        for target in targets:
            for module in modules[target.name]:
                module.check_target(target, config_dir)
                hidden += module.secret_values(target, config_dir)
    reporter = Reporter(out=out, redact=Redactor(hidden), verbosity=verbosity, log=log)
    return Session(config_dir, env, targets, modules, reporter, config, hidden)


def run_on_hosts(session: Session, result: RunResult, work: Callable[[HostContext, list[BaseModule]], str | None], **context: Any) -> RunResult:
    """Connect, run `work` on every host in parallel, collect per-host outcomes."""
    started = time.monotonic()
    reporter = session.reporter

    def host_work(target: Target, plan: Plan) -> None:
        ctx = HostContext(env=session.env, target=target, plan=plan, config_dir=session.config_dir,
                          fleet=tuple(session.targets), modules=tuple(session.modules[target.name]), **context)
        result.strategies[target.name] = target.deployment_strategy
        finished = False
        try:
            message = work(ctx, session.modules[target.name])
            finished = True
        finally:  # on any failure, an interruption too, say what the host still serves
            result.timings[target.name] = dict(ctx.timings)
            if not finished:
                result.serving[target.name] = _serving_after_failure(ctx)
        if message:
            result.messages[target.name] = message

    with Engine(session.targets, reporter, dry_run=result.dry_run) as engine:
        outcomes = engine.run_per_host(host_work)
    result.seconds = time.monotonic() - started
    for target in session.targets:
        result.changed[target.name] = len(reporter.changed_steps(target.name))
        result.urls[target.name] = site_urls(target)
        error = outcomes.get(target.name)
        if error is not None:
            result.errors[target.name] = error
    raise_if_failed(result, len(session.targets), reporter)
    return result


def raise_if_failed(result: RunResult, hosts: int, reporter: Reporter) -> None:
    """One RunFailed naming every failed host, so the summary still shows the ones that worked."""
    if not result.errors:
        return
    lines = [f"{result.command} failed on {len(result.errors)} of {hosts} host(s):"]
    for name, error in result.errors.items():
        if isinstance(error, KeyboardInterrupt):
            lines.append(f"[{name}] interrupted")
        elif isinstance(error, DjaployError):
            lines.append(str(error))
        else:
            lines.append(f"[{name}] unexpected error: {type(error).__name__}: {error}")
    raise RunFailed(result, reporter.redact("\n".join(lines)))


def _serving_after_failure(ctx: HostContext) -> str:
    """What the host serves after a failed operation, read back from the host itself."""
    try:
        return serving_from_state(read_state(ctx))
    except Exception:  # noqa: BLE001 - the connection may be gone; the summary says so
        return ""


def site_urls(target: Target) -> list[str]:
    """The site's URLs as people reach them: https:// for the names the host has certificates
    for (certs module) or Caddy serves with automatic HTTPS; http:// otherwise."""
    names = {load_module_class(path).name for path in target.modules}
    secure: set[str] = set()
    if "certs" in names:
        secure = set(module_options(target, "certs").get("domains", target.domains))
    elif "caddy" in names and module_options(target, "caddy").get("https", True) is not False:
        secure = {domain for domain in target.domains if not is_ip_address(domain)}
    # A wildcard ('*.example.com', certs with DNS-01) covers exactly one label.
    covered = {domain for domain in target.domains if domain in secure or f"*.{domain.partition('.')[2]}" in secure}
    urls = [f"{'https' if domain in covered else 'http'}://{domain}/" for domain in target.domains]
    return urls or [f"http://{target.ssh_host}/"]
