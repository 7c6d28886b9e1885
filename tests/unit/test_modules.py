"""The module API: load order, hook order through the real strategies, errors that name the
module and hook, and the example project's own module (infra_example/infra/modules/nightly.py).

`RecordingPlan` (tests/unit/conftest.py) implements the `Plan` protocol over an in-memory host:
it records every call in order and keeps the files it was given (so "changed" means what it
means on a real host, and state.json reads back what was written). The real strategies run
against it unchanged, with two recording modules, `a` and `b`.
"""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from djaploy.config import DjaployConfig
from djaploy.context import CommandResult, HostContext
from djaploy.errors import ConfigError, DjaployError, LockHeld, RemoteError, UndoFailed
from djaploy.inventory import load_config
from djaploy.modules.base import (
    HOOKS,
    BaseModule,
    HookError,
    call_hook,
    load_module_class,
    load_modules,
)
from djaploy.session import RunResult
from djaploy.strategies import bluegreen, in_place, zero_downtime
from djaploy.strategies.common import run_hooks
from djaploy.summary import summary_lines
from tests.unit.conftest import MODULE_A, MODULE_B, RecordingPlan, make_ctx, make_target

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_INFRA = REPO / "infra_example" / "infra"
APP = "/home/shop/apps/shop"
STATE_FILE = f"{APP}/.djaploy/state.json"


def with_state(state: dict[str, Any]) -> RecordingPlan:
    """A host whose .djaploy/state.json holds `state`."""
    return RecordingPlan(files={STATE_FILE: (json.dumps(state), "root", "644")})


class Exploding(BaseModule):
    name = "exploding"

    def publish(self, ctx: HostContext) -> None:
        options = ctx.target.module_options.get("exploding", {})
        options["missing"]  # the user's bug: a KeyError


def hook_steps(plan: RecordingPlan) -> list[str]:
    return [step for step in plan.steps if step.startswith(("a.", "b."))]


DEPLOY_ORDER = ["prepare_data", "prepare_release", "publish", "route_traffic", "verify"]


def per_module(*hooks: str) -> list[str]:
    """The documented order: each hook for every module (in list order) before the next hook."""
    return [f"{name}.{hook}" for hook in hooks for name in ("a", "b")]


# --- load order ---------------------------------------------------------------------------------


def test_load_modules_keeps_the_configured_order() -> None:
    modules = load_modules([MODULE_B, MODULE_A, "djaploy.modules.core"])
    assert [module.name for module in modules] == ["b", "a", "core"]
    assert [module.name for module in load_modules([MODULE_A, MODULE_B])] == ["a", "b"]


def test_hooks_are_the_documented_ones_in_deploy_order() -> None:
    assert HOOKS == ("configure_server", *DEPLOY_ORDER)
    assert all(callable(getattr(BaseModule, hook)) for hook in HOOKS)


def test_run_hooks_runs_each_hook_for_every_module_before_the_next_hook() -> None:
    ctx = make_ctx()
    run_hooks(ctx, load_modules([MODULE_A, MODULE_B]), "prepare_data", "prepare_release", "publish")
    assert hook_steps(ctx.plan) == per_module("prepare_data", "prepare_release", "publish")
    ctx = make_ctx()
    run_hooks(ctx, load_modules([MODULE_B, MODULE_A]), "verify")
    assert hook_steps(ctx.plan) == ["b.verify", "a.verify"]


# --- hook order through the real strategies -----------------------------------------------------


def test_in_place_deploy_runs_every_deploy_hook_in_order_around_its_own_steps() -> None:
    ctx = make_ctx()
    in_place.deploy(ctx, load_modules([MODULE_A, MODULE_B]), {})
    assert hook_steps(ctx.plan) == per_module(*DEPLOY_ORDER)
    steps = ctx.plan.steps
    # The code is in place before any hook; traffic moves after publish, before route_traffic.
    assert steps.index("put release in place") < steps.index("a.prepare_data")
    assert steps.index("b.publish") < steps.index("route traffic to shop") < steps.index("a.route_traffic")
    assert steps[-1] == "record state"


def test_zero_downtime_deploy_gates_the_release_in_its_lane_before_traffic_moves() -> None:
    ctx = make_ctx()
    zero_downtime.deploy(ctx, load_modules([MODULE_A, MODULE_B]), {})
    assert hook_steps(ctx.plan) == per_module(*DEPLOY_ORDER)
    steps = ctx.plan.steps
    gate = next(step for step in steps if step.startswith("health gate"))
    route = next(step for step in steps if step.startswith("route traffic"))
    assert (steps.index("b.prepare_release") < steps.index("switch current to v7") < steps.index("b.publish")
            < steps.index(gate) < steps.index(route) < steps.index("a.route_traffic"))
    assert "shop-a" in gate and route == "route traffic to shop-a"  # the first lane; the publish hook started it


def test_zero_downtime_rollback_starts_the_older_release_in_the_idle_lane() -> None:
    state = {"strategy": "zero_downtime", "current": "v7", "lane": "a", "order": ["v6", "v7"],
             "releases": {"v6": {"commit": "a"}, "v7": {"commit": "b"}}}
    plan = with_state(state)
    plan.live_link = "/run/shop-a/shop.sock"
    ctx = make_ctx(plan)
    zero_downtime.rollback(ctx, load_modules([MODULE_A, MODULE_B]), {})
    assert hook_steps(ctx.plan) == per_module("publish", "route_traffic", "verify")
    assert ctx.service and ctx.service.name == "shop-b"


def test_bluegreen_first_deploy_goes_live_and_a_later_one_only_stages() -> None:
    ctx = make_ctx()
    bluegreen.deploy(ctx, load_modules([MODULE_A, MODULE_B]), {})
    assert hook_steps(ctx.plan) == per_module(*DEPLOY_ORDER)

    state = {"strategy": "bluegreen", "active": "blue", "previous": None, "slots": {"blue": {"state": "active"}}}
    ctx = make_ctx(with_state(state))
    message = bluegreen.deploy(ctx, load_modules([MODULE_A, MODULE_B]), {})
    assert "staged in the green slot" in message
    assert hook_steps(ctx.plan) == per_module("prepare_data", "prepare_release", "publish")


def test_bluegreen_activate_routes_traffic_then_verifies() -> None:
    state = {"strategy": "bluegreen", "active": "blue", "previous": None,
             "slots": {"blue": {"state": "active"}, "green": {"state": "staged", "release": "v7"}}}
    ctx = make_ctx(with_state(state))
    bluegreen.activate(ctx, load_modules([MODULE_A, MODULE_B]), {})
    assert hook_steps(ctx.plan) == per_module("route_traffic", "verify")
    assert ctx.service and ctx.service.name == "shop-green"


# --- a failure, and undoing it -----------------------------------------------------------------


class FailingVerify(BaseModule):
    name = "failing"

    def verify(self, ctx: HostContext) -> None:
        raise RemoteError(ctx.target.name, "failing: health", "HTTP 500")


@dataclass
class UndoBreaks(RecordingPlan):
    """A host where the steps named in `broken` fail (the connection dropped, a unit will not start)."""

    broken: tuple[str, ...] = ()

    def run(self, step: str, command: str, *, as_user: str | None = None) -> CommandResult:
        result = super().run(step, command, as_user=as_user)
        if step.startswith(self.broken):
            raise RemoteError("web1", step, "Connection reset by peer")
        return result

    def releases_on_disk(self) -> str:
        return "v6\n"


ZERO_DOWNTIME_LIVE = {"strategy": "zero_downtime", "current": "v6", "order": ["v6"], "releases": {"v6": {"commit": "a"}}}
BLUEGREEN_STAGED = {"strategy": "bluegreen", "active": "blue", "previous": None,
                    "slots": {"blue": {"state": "active"}, "green": {"state": "staged", "release": "v7"}}}


def _host(state: dict[str, Any], broken: tuple[str, ...] = ()) -> UndoBreaks:
    """A host whose state.json holds `state`; zero_downtime's lane b serves (the live link)."""
    return UndoBreaks(files={STATE_FILE: (json.dumps(state), "root", "644")}, broken=broken, live_link="/run/shop-b/shop.sock")


@pytest.mark.parametrize(
    "operation, state, undo_step",
    [
        (lambda ctx: zero_downtime.deploy(ctx, [FailingVerify()], {}), ZERO_DOWNTIME_LIVE, "route traffic to shop-b"),
        (lambda ctx: bluegreen.activate(ctx, [FailingVerify()], {}), BLUEGREEN_STAGED, "route traffic to shop-blue"),
    ],
    ids=["zero_downtime-deploy", "bluegreen-activate"],
)
def test_when_undoing_a_failure_fails_too_the_report_shows_both_errors(
    operation: Any, state: dict[str, Any], undo_step: str
) -> None:
    ctx = make_ctx(_host(state, broken=(undo_step,)))
    with pytest.raises(UndoFailed) as info:
        operation(ctx)
    message = str(info.value)
    assert message.startswith("[web1] step 'failing: health' failed")
    assert "HTTP 500" in message  # the first error: why the operation failed
    assert f"[web1] step '{undo_step}' failed" in message and "Connection reset by peer" in message  # the second
    assert isinstance(info.value.error, RemoteError) and info.value.error.step == "failing: health"
    assert isinstance(info.value.undo_error, RemoteError) and info.value.undo_error.step == undo_step


def test_a_failure_that_is_undone_is_reported_unchanged() -> None:
    ctx = make_ctx(_host(ZERO_DOWNTIME_LIVE))
    with pytest.raises(RemoteError) as info:
        zero_downtime.deploy(ctx, [FailingVerify()], {})
    assert info.value.step == "failing: health"
    steps = ctx.plan.steps
    # the undo ran: traffic back on lane b, then v6 back as current and lane a stopped, v7 removed
    assert steps[steps.index("route traffic to shop-a") + 1:] == [
        "route traffic to shop-b", "put the previous release back", "remove release v7"]
    assert "releases/v6" in ctx.plan.commands[-2] and "stop shop-a.service" in ctx.plan.commands[-2]


def test_the_summary_offers_unlock_for_a_held_lock_only() -> None:
    result = RunResult("deploy", "production", dry_run=False, errors={"web1": LockHeld("[web1] deploy refused: ...")})
    assert "  if the lock holder is dead: manage.py unlock --env production" in summary_lines(result)
    other = RunResult("deploy", "production", dry_run=False,
                      errors={"web1": DjaployError("[web1] step 'lock the gate' failed: gate held open")})
    assert not any("unlock" in line for line in summary_lines(other))


# --- hook errors --------------------------------------------------------------------------------


def test_a_bug_in_a_hook_names_host_module_hook_and_line() -> None:
    ctx = make_ctx()
    with pytest.raises(HookError) as info:
        call_hook(ctx, Exploding(), "publish")
    message = str(info.value)
    assert message.startswith("[web1] module 'exploding' (tests.unit.test_modules.Exploding) failed in its publish hook: ")
    assert "KeyError: 'missing'" in message
    assert f"(at tests/unit/test_modules.py:{Exploding.publish.__code__.co_firstlineno + 2})" in message
    assert "Traceback" not in message
    assert isinstance(info.value, DjaployError) and isinstance(info.value.__cause__, KeyError)


def test_a_hook_error_never_shows_a_secret() -> None:
    class Leaky(BaseModule):
        def verify(self, ctx: HostContext) -> None:
            raise ValueError(f"token {ctx.target.secrets['API_TOKEN']} refused")

    ctx = make_ctx(target=replace(make_target(), secrets={"API_TOKEN": "s3cr3t-value"}))
    with pytest.raises(HookError) as info:
        call_hook(ctx, Leaky(), "verify")
    assert "ValueError: token ******** refused" in str(info.value)
    assert "s3cr3t-value" not in str(info.value)


def test_run_hooks_reports_a_hook_error_with_module_and_hook() -> None:
    """The strategies' path: run_hooks calls each hook through call_hook."""
    ctx = make_ctx()
    with pytest.raises(HookError, match=r"module 'exploding' .* failed in its publish hook: KeyError"):
        run_hooks(ctx, [*load_modules([MODULE_A]), Exploding()], "publish")


def test_deliberate_errors_and_interrupts_pass_unchanged() -> None:
    class Refusing(BaseModule):
        def verify(self, ctx: HostContext) -> None:
            raise RemoteError(ctx.target.name, "refusing: check", hint="fix the thing")

    class Interrupted(BaseModule):
        def verify(self, ctx: HostContext) -> None:
            raise KeyboardInterrupt

    with pytest.raises(RemoteError) as info:
        call_hook(make_ctx(), Refusing(), "verify")
    assert str(info.value) == "[web1] step 'refusing: check' failed\nfix the thing"
    with pytest.raises(KeyboardInterrupt):
        call_hook(make_ctx(), Interrupted(), "verify")


# --- bad module paths, through a real config.py -------------------------------------------------


def infra_with_module(root: Path, module_source: str | None, path: str) -> Path:
    """An infra folder whose config.py lists the built-ins plus `path`, and infra/modules/custom.py."""
    infra = root / "infra"
    (infra / "modules").mkdir(parents=True)
    if module_source is not None:
        (infra / "modules" / "custom.py").write_text(textwrap.dedent(module_source))
    (infra / "config.py").write_text(
        "from djaploy.config import DjaployConfig\n\n"
        "config = DjaployConfig(\n"
        '    project_name="shop",\n'
        f'    modules=["djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.systemd", "{path}"],\n'
        ")\n"
    )
    return infra


GOOD_MODULE = """
    from djaploy.modules.base import BaseModule

    class Custom(BaseModule):
        name = "custom"
"""


@pytest.mark.parametrize(
    "source, path, expected",
    [
        (None, "infra.modules.nosuch.Custom", "unknown module 'infra.modules.nosuch.Custom': no such Python module or class"),
        (GOOD_MODULE, "infra.modules.custom.Custum", "unknown module 'infra.modules.custom.Custum'"),
        (GOOD_MODULE + "\n    class Other(Custom):\n        name = 'other'\n", "infra.modules.custom",
         "'infra.modules.custom' defines 2 BaseModule subclasses (Custom, Other) and no `Module`; name the one you mean"),
        ("from djaploy.modules.base import BaseModule\n", "infra.modules.custom",
         "'infra.modules.custom' is a Python module but defines no BaseModule subclass"),
        ("class Custom:\n    pass\n", "infra.modules.custom.Custom", "'infra.modules.custom.Custom' is not a BaseModule subclass"),
        ("import requests_that_are_not_installed\n", "infra.modules.custom.Custom",
         ("importing 'infra.modules.custom.Custom' failed: ModuleNotFoundError: No module named "
          "'requests_that_are_not_installed' (at infra/modules/custom.py:1)")),
        ("X = 1\nraise RuntimeError('no settings here')\n", "infra.modules.custom.Custom",
         "importing 'infra.modules.custom.Custom' failed: RuntimeError: no settings here (at infra/modules/custom.py:2)"),
        ("def broken(:\n", "infra.modules.custom.Custom", "importing 'infra.modules.custom.Custom' failed: SyntaxError"),
    ],
    ids=["unknown-module", "unknown-class", "several-module-classes", "no-module-class", "not-a-BaseModule", "missing-dependency", "raises-at-import",
         "syntax-error"],
)
def test_a_bad_module_path_is_a_config_error_naming_config_py_and_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget_new_modules: None, source: str | None, path: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    infra = infra_with_module(tmp_path, source, path)
    with pytest.raises(ConfigError) as info:
        load_config(infra)
    err = info.value
    assert err.file == "infra/config.py:3"  # the file and the line of the DjaployConfig(...) call
    assert err.field == "DjaployConfig.modules"
    assert expected in err.detail
    assert "Traceback" not in str(err)


def test_a_python_module_with_one_module_class_loads_as_djaploy_1x_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget_new_modules: None
) -> None:
    monkeypatch.chdir(tmp_path)
    infra = infra_with_module(tmp_path, GOOD_MODULE, "infra.modules.custom")  # 1.x: class MyModule, its file's path
    load_config(infra)
    assert load_module_class("infra.modules.custom").__name__ == "Custom"


def test_a_module_whose_constructor_raises_is_a_config_error(forget_new_modules: None) -> None:
    class NeedsArguments(BaseModule):
        def __init__(self, required: str) -> None:
            self.required = required

    sys.modules[__name__].NeedsArguments = NeedsArguments  # type: ignore[attr-defined]
    try:
        with pytest.raises(ConfigError, match=r"config.py: modules: creating '.*NeedsArguments' failed: TypeError"):
            load_modules([f"{__name__}.NeedsArguments"], file="config.py")
    finally:
        del sys.modules[__name__].NeedsArguments  # type: ignore[attr-defined]


# --- the example project's own module -----------------------------------------------------------


@pytest.fixture
def example_config(monkeypatch: pytest.MonkeyPatch, forget_new_modules: None) -> DjaployConfig:
    monkeypatch.setattr(sys, "path", [str(EXAMPLE_INFRA.parent), *sys.path])
    return load_config(EXAMPLE_INFRA)


def test_the_example_lists_the_builtins_then_its_own_module(example_config: DjaployConfig) -> None:
    assert example_config.modules == ["djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.systemd",
                                      "infra.modules.nightly.NightlyReport"]
    modules = load_modules(example_config.modules)
    assert [module.name for module in modules] == ["core", "nginx", "systemd", "nightly"]
    # Written only against the public API: it overrides hooks and nothing else.
    nightly = type(modules[-1])
    overridden = {name for name in vars(nightly) if not name.startswith("_") and callable(getattr(nightly, name))}
    assert overridden <= set(HOOKS)


@pytest.mark.parametrize(
    "strategy, slot, code_link",
    [("in_place", None, f"{APP}/code"), ("zero_downtime", None, f"{APP}/current"), ("bluegreen", "green", f"{APP}/slots/green")],
)
def test_nightly_job_runs_the_live_release_with_its_env_file_and_venv(
    example_config: DjaployConfig, strategy: str, slot: str | None, code_link: str
) -> None:
    nightly = load_module_class("infra.modules.nightly.NightlyReport")()
    ctx = make_ctx(config_dir=EXAMPLE_INFRA)  # its unit templates are in the example's infra/templates/
    ctx.service = ctx.paths.service_for(strategy, slot)
    call_hook(ctx, nightly, "route_traffic")
    unit, owner, mode = ctx.plan.files["/etc/systemd/system/shop-nightly.service"]
    assert (owner, mode) == ("root", "644")
    assert "Type=oneshot\nUser=shop\nGroup=shop\n" in unit
    assert f"WorkingDirectory={code_link}\n" in unit
    assert f"EnvironmentFile={code_link}/.djaploy-env\n" in unit
    assert f"ExecStart={code_link}/.djaploy-venv/bin/python manage.py ledger_report\n" in unit
    timer = ctx.plan.files["/etc/systemd/system/shop-nightly.timer"][0]
    assert "OnCalendar=*-*-* 03:00:00\n" in timer and "WantedBy=timers.target" in timer
    assert ctx.plan.commands[-1] == "service shop-nightly.timer daemon_reload=True"


def test_nightly_job_reloads_systemd_only_when_its_units_change(example_config: DjaployConfig) -> None:
    nightly = load_module_class("infra.modules.nightly.NightlyReport")()
    plan = RecordingPlan()
    ctx = make_ctx(plan, config_dir=EXAMPLE_INFRA)
    ctx.service = ctx.paths.service_for("in_place")
    call_hook(ctx, nightly, "route_traffic")
    call_hook(ctx, nightly, "route_traffic")  # a redeploy: same units
    assert plan.commands[-1] == "service shop-nightly.timer daemon_reload=False"

    ctx = make_ctx(plan, replace(make_target(), module_options={"nightly": {"schedule": "Sun *-*-* 04:00"}}),
                   config_dir=EXAMPLE_INFRA)
    ctx.service = ctx.paths.service_for("in_place")
    call_hook(ctx, nightly, "route_traffic")
    assert "OnCalendar=Sun *-*-* 04:00\n" in plan.files["/etc/systemd/system/shop-nightly.timer"][0]
    assert plan.commands[-1] == "service shop-nightly.timer daemon_reload=True"
