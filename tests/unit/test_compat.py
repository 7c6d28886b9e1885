"""djaploy 1.x's documented forms work here (issue 12): the README's config, inventory and module API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from djaploy.config import DjaployConfig, HostConfig
from djaploy.errors import ConfigError
from djaploy.inventory import resolve_targets
from djaploy.layout import AppPaths
from djaploy.modules.base import load_modules
from djaploy.strategies import zero_downtime
from tests.unit.conftest import RecordingPlan, make_ctx

BUILT_INS = ["djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.systemd"]


# --- paths take str or Path -----------------------------------------------------------------------


def test_every_path_field_takes_a_path_as_the_1x_readme_writes_it(tmp_path: Path) -> None:
    config = DjaployConfig(project_name="myapp", djaploy_dir=tmp_path, manage_py_path=Path("src/manage.py"),
                           ssh_key=tmp_path / "id_ed25519", ssh_known_hosts_file=tmp_path / "known_hosts")
    assert config.manage_py_path == "src/manage.py"
    assert config.djaploy_dir == tmp_path
    assert config.ssh_key == str(tmp_path / "id_ed25519")
    host = HostConfig("web-1", ssh_host="192.0.2.1", ssh_key=Path("keys/deploy"))
    assert host.ssh_key == "keys/deploy"


def test_a_path_keeps_its_rules() -> None:
    with pytest.raises(ConfigError) as info:
        DjaployConfig(project_name="myapp", manage_py_path=Path("/abs/manage.py"))
    assert info.value.field == "DjaployConfig.manage_py_path"
    assert "must be a .py path relative to the git root" in str(info.value)


# --- top-level exports ------------------------------------------------------------------------------


def test_config_classes_are_importable_from_the_package() -> None:
    import djaploy
    import djaploy.config

    assert djaploy.HostConfig is djaploy.config.HostConfig
    assert djaploy.DjaployConfig is djaploy.config.DjaployConfig
    with pytest.raises(AttributeError):
        djaploy.NoSuchThing  # noqa: B018


def test_importing_the_package_does_not_load_the_config_code() -> None:
    """manage.py imports djaploy for every command (it is an installed app): keep that cheap."""
    code = "import sys, djaploy; print(sorted(m for m in sys.modules if m.startswith('djaploy')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parents[2]).stdout.strip()
    assert loaded == "['djaploy']"


# --- app_name -----------------------------------------------------------------------------------------


def _target(app_name: str | None = None, **host: Any) -> Any:
    config = DjaployConfig(project_name="shop", modules=BUILT_INS)
    hosts = [HostConfig("web1", ssh_host="192.0.2.10", domains=[f"{app_name or 'shop'}.example.com"],
                        app_name=app_name, deployment_strategy="zero_downtime", **host)]
    return resolve_targets(config, hosts, "production", environ={}, source_file="inventory/production.py")[0]


def test_app_name_defaults_to_the_project_name_and_names_the_folder_on_the_host() -> None:
    assert _target().app_name == "shop"
    target = _target("myapp", app_user="myapp-api")
    paths = AppPaths.for_target(target)
    assert paths.app_root == "/home/myapp-api/apps/myapp"
    assert paths.service_for("zero_downtime").service == "myapp.service"
    assert paths.socket_path == "/run/myapp/myapp.sock"
    assert paths.service_for("bluegreen", "green").socket_path == "/run/myapp-green/myapp.sock"
    assert paths.nginx_site_available == "/etc/nginx/sites-available/myapp.conf"
    assert paths.cert_name == "myapp"
    assert paths.lock_dir == "/home/myapp-api/apps/myapp/.djaploy/lock"


def test_app_name_follows_the_project_name_rules() -> None:
    with pytest.raises(ConfigError) as info:
        HostConfig("web1", ssh_host="192.0.2.10", app_name="My App")
    assert info.value.field == "HostConfig.app_name"


def _deploy_touches(app_name: str) -> str:
    """Every path and command a zero_downtime deploy of `app_name` (same project, same app user) sends."""
    plan = RecordingPlan()
    ctx = make_ctx(plan, _target(app_name))
    zero_downtime.deploy(ctx, load_modules(BUILT_INS), {})
    return "\n".join([*plan.files, *(content for content, _, _ in plan.files.values()), *plan.commands,
                      *(step for _, step in plan.calls)])


def test_two_apps_with_different_names_touch_nothing_of_each_other() -> None:
    alpha, beta = _deploy_touches("alpha"), _deploy_touches("beta")
    assert "/home/shop/apps/alpha/" in alpha and "alpha.service" in alpha and "alpha_app" in alpha
    assert "beta" not in alpha
    assert "alpha" not in beta


# --- prepare.py's run_command ---------------------------------------------------------------------


def _prepare_file(tmp_path: Path, body: str) -> Path:
    from tests.unit.conftest import git

    git(tmp_path, "init", "-q")
    infra = tmp_path / "infra"
    infra.mkdir()
    (infra / "prepare.py").write_text("from djaploy.prepare import run_command\n\n" + body)
    return infra


def _reporter() -> Any:
    import io

    from djaploy.output import Reporter
    from djaploy.redact import Redactor

    return Reporter(io.StringIO(), Redactor(["hunter2-secret"]), log=io.StringIO())


def test_run_command_streams_its_output_into_the_progress_and_the_run_log(tmp_path: Path) -> None:
    import io

    from djaploy.prepare import run_prepare

    infra = _prepare_file(tmp_path, "def prepare():\n    run_command('echo built; echo hunter2-\"secret\"; pwd')\n"
                                    "    run_command(['printf', 'a b\\\\n'])\n")
    reporter = _reporter()
    assert run_prepare(infra, io.StringIO(), reporter=reporter) == []
    for stream in (reporter.out.getvalue(), reporter.log.getvalue()):
        assert 'prepare $ echo built; echo hunter2-"secret"; pwd\nprepare | built\n' in stream
        assert f"prepare | {tmp_path}\n" in stream  # it runs in the git root
        assert "prepare $ printf \"a b\\n\"\nprepare | a b\n" in stream
        assert "hunter2-secret" not in stream  # redacted like every other line


def test_a_failing_run_command_stops_the_deploy_naming_the_command(tmp_path: Path) -> None:
    import io

    from djaploy.prepare import PrepareFailed, run_prepare

    infra = _prepare_file(tmp_path, "def prepare():\n    run_command('echo compiling; exit 7')\n"
                                    "    run_command('touch never')\n")
    reporter = _reporter()
    with pytest.raises(PrepareFailed) as info:
        run_prepare(infra, io.StringIO(), reporter=reporter)
    assert str(info.value) == (f"{infra}/prepare.py: prepare() failed, nothing was deployed: command "
                               "`echo compiling; exit 7` failed with exit status 7; its last lines:\ncompiling")
    assert not (tmp_path / "never").exists()
    assert "prepare | compiling" in reporter.log.getvalue()


# --- commands: the djaploy umbrella, update_certs, sync_certs, verify --verbose ----------------------------

WORKTREE = Path(__file__).parents[2]
INVENTORY = '''from djaploy import HostConfig

hosts = [HostConfig("web-1", ssh_hostname="192.0.2.1", app_name="myapp", domains=["myapp.example.com"])]
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Django project with djaploy installed and an infra folder, as the 1.x README lays it out."""
    from tests.unit.test_verify import make_site

    root = make_site(tmp_path_factory.mktemp("compat") / "site")
    (root / "infra" / "inventory").mkdir(parents=True)
    (root / "infra" / "config.py").write_text(
        "from pathlib import Path\nfrom djaploy.config import DjaployConfig\n\n"
        "config = DjaployConfig(project_name='myapp', djaploy_dir=Path(__file__).parent, "
        "manage_py_path=Path('manage.py'), modules=['djaploy.modules.core', 'djaploy.modules.nginx', "
        "'djaploy.modules.certs', 'djaploy.modules.systemd'])\n")
    (root / "infra" / "inventory" / "production.py").write_text(INVENTORY)
    (root / "infra" / "inventory" / "staging.py").write_text(INVENTORY.replace("myapp.example", "staging.example"))
    return root


def manage(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}, "PYTHONPATH": str(WORKTREE)}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=site, env=env, capture_output=True, text=True,
                          check=False, timeout=120)


def test_the_djaploy_command_lists_every_command_with_its_help(site: Path) -> None:
    result = manage(site, "djaploy", "--help")
    assert result.returncode == 0, result.stderr
    for name in ("deploy", "activate", "status", "rollback", "sync_certs", "update_certs", "verify"):
        assert f"\n  {name} " in result.stdout
    assert "Build a release from git and deploy it" in result.stdout
    assert "djaploy" not in result.stdout.split("commands (each takes")[1].split()[:1]  # not itself


def test_a_subcommand_is_the_command_itself_with_the_same_options_and_help(site: Path) -> None:
    umbrella, own = manage(site, "djaploy", "deploy", "--help"), manage(site, "deploy", "--help")
    assert umbrella.returncode == own.returncode == 0
    assert "usage: manage.py djaploy deploy " in umbrella.stdout
    words = umbrella.stdout.replace("manage.py djaploy deploy", "manage.py deploy").split()
    assert words == own.stdout.split()  # the same text, wrapped for a longer usage line
    missing = manage(site, "djaploy", "status")
    assert missing.returncode != 0 and "the following arguments are required: --env" in missing.stderr


def test_an_unknown_subcommand_says_what_was_meant(site: Path) -> None:
    result = manage(site, "djaploy", "deplyo", "--env", "production")
    assert result.returncode == 1
    assert "unknown djaploy command 'deplyo' (did you mean 'deploy'?); commands: activate," in result.stderr


def test_update_certs_shows_every_environments_certificate_definitions_without_connecting(site: Path) -> None:
    result = manage(site, "update_certs")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[production/web-1] myapp.example.com: certbot lineage myapp (certs module)",
        "[staging/web-1] staging.example.com: certbot lineage myapp (certs module)",
    ]


def test_sync_certs_issues_and_renews_what_is_due(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import io

    from djaploy.management.commands import certs, sync_certs
    from djaploy.session import RunResult

    seen: dict[str, Any] = {}

    def certificates(directory: Path, env: str, **kwargs: Any) -> RunResult:
        seen.update(kwargs, env=env)
        return RunResult("certs", env, False)

    monkeypatch.setattr(certs, "certificates", certificates)
    command = sync_certs.Command(stdout=io.StringIO())
    parser = command.create_parser("manage.py", "sync_certs")
    options = vars(parser.parse_args(["--env", "production"]))
    command.log_file = io.StringIO()
    command.run(tmp_path, options)
    assert seen["env"] == "production" and seen["renew"] is True and seen["force"] is False


def test_verify_verbose_shows_what_each_host_resolves_to(site: Path) -> None:
    verbose, quiet = manage(site, "verify", "--env", "production", "--verbose"), manage(site, "verify", "--env", "production")
    line = ("host    [production/web-1] root@192.0.2.1:22, app myapp at /home/myapp/apps/myapp, in_place, "
            "domains: myapp.example.com, modules: djaploy.modules.core, djaploy.modules.nginx, djaploy.modules.certs, "
            "djaploy.modules.systemd")
    assert line in verbose.stdout.splitlines(), verbose.stdout + verbose.stderr
    assert "host    [" not in quiet.stdout


# --- a 1.x-style custom module -----------------------------------------------------------------------


from djaploy.modules.base import BaseModule  # noqa: E402 - next to the modules that use it

#: what the README's module below was called with
README_CALLS: list[tuple[str, Any]] = []


class MyModule(BaseModule):
    """The 1.x README's custom module, recording its calls."""

    def configure_server(self, host: Any) -> None:
        README_CALLS.append(("configure_server", host.target.name))

    def deploy(self, host: Any, artifact_path: str) -> None:
        README_CALLS.append(("deploy", artifact_path))
        host.plan.run("my module: deploy", "true")


class Misspelt(BaseModule):
    def configure_sever(self, host: Any) -> None: ...

    def helper(self) -> None: ...  # not named like a hook: a helper is fine


class WrongArity(BaseModule):
    def deploy(self, host: Any) -> None: ...


def test_a_1x_module_runs_its_deploy_after_prepare_release_with_the_release_folder() -> None:
    from djaploy.modules.base import call_hook, load_modules
    from tests.unit.conftest import MODULE_A

    README_CALLS.clear()
    plan = RecordingPlan()
    ctx = make_ctx(plan)
    modules = load_modules([MODULE_A, f"{__name__}.MyModule"])
    call_hook(ctx, modules[1], "configure_server")
    zero_downtime.deploy(ctx, modules, {})
    assert README_CALLS == [("configure_server", "web1"), ("deploy", "/home/shop/apps/shop/releases/v7")]
    steps = plan.steps
    assert steps.index("a.prepare_release") < steps.index("my module: deploy") < steps.index("a.publish")


@pytest.mark.parametrize(("name", "message"), [
    ("Misspelt", "its method 'configure_sever' is not a hook and would never run; did you mean 'configure_server'?"),
    ("WrongArity", "its deploy hook must take (self, host, artifact_path), as in djaploy 1.x"),
])
def test_a_method_that_would_never_run_is_refused(name: str, message: str) -> None:
    from djaploy.modules.base import load_module_class

    with pytest.raises(ConfigError) as info:
        load_module_class(f"{__name__}.{name}", file="infra/config.py")
    assert message in str(info.value) and info.value.file == "infra/config.py"


# --- pyinfra operations called inside a hook --------------------------------------------------------


class DirectOps(BaseModule):
    """Calls pyinfra operations itself, between two plan steps, as 1.x modules do."""

    name = "direct"
    folder = ""
    fail = False

    def publish(self, ctx: Any) -> None:
        from pyinfra.operations import files, server

        ctx.plan.run("plan step before", "true")
        files.directory(path=self.folder)
        server.shell(name="write marker", commands=[f"echo hi > {self.folder}/marker"])
        if self.fail:
            server.shell(name="broken", commands=["echo why-it-broke >&2; exit 3"])
        ctx.plan.run("plan step after", "true")


def _run_direct(folder: Path, *, dry_run: bool = False, fail: bool = False) -> tuple[str, BaseException | None]:
    """DirectOps' publish on this machine, through the real engine (pyinfra's @local connector)."""
    import dataclasses
    import io

    from djaploy.engine import Engine
    from djaploy.modules.base import call_hook
    from djaploy.output import Reporter
    from tests.unit.conftest import make_target

    target = dataclasses.replace(make_target(), name="@local")
    out = io.StringIO()
    module = DirectOps()
    module.folder, module.fail = str(folder), fail
    error = None
    with Engine([target], Reporter(out, log=io.StringIO()), dry_run=dry_run) as engine:
        try:
            call_hook(make_ctx(engine.plan_for(target), target), module, "publish")
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            error = exc
    return out.getvalue(), error


def test_operations_a_hook_calls_itself_run_on_its_host_in_order_with_progress(tmp_path: Path) -> None:
    folder = tmp_path / "made-by-pyinfra"
    out, error = _run_direct(folder)
    assert error is None
    assert (folder / "marker").read_text() == "hi\n"
    steps = [line.split(": changed")[0] for line in out.splitlines() if ": changed" in line]
    assert steps == ["[@local] plan step before", "[@local] direct: files.directory", "[@local] direct: write marker",
                     "[@local] plan step after"]


def test_a_dry_run_only_reports_what_a_hooks_own_operations_would_change(tmp_path: Path) -> None:
    folder = tmp_path / "made-by-pyinfra"
    out, error = _run_direct(folder, dry_run=True)
    assert error is None and not folder.exists()
    assert "[@local] direct: files.directory: would change" in out
    assert "[@local] direct: write marker: would change" in out


def test_a_failing_operation_in_a_hook_fails_like_a_plan_step(tmp_path: Path) -> None:
    from djaploy.errors import RemoteError

    out, error = _run_direct(tmp_path / "made-by-pyinfra", fail=True)
    assert isinstance(error, RemoteError), error
    assert error.step == "direct: broken" and "why-it-broke" in error.output
    assert "[@local] direct: broken: FAILED" in out
    assert "plan step after" not in out


# --- a user's own unit for the app, from deploy_files/ --------------------------------------------------


@pytest.mark.parametrize("unit", ["myapp.service", "myapp.socket", "myapp-green.service", "myapp.service.j2"])
def test_a_unit_over_djaploys_own_is_refused_before_anything_is_installed(tmp_path: Path, unit: str) -> None:
    from djaploy.deploy_files import check_deploy_files

    infra = tmp_path / "infra"
    own = infra / "deploy_files" / "production" / "etc" / "systemd" / "system" / unit
    own.parent.mkdir(parents=True)
    own.write_text("[Service]\nExecStart=/home/app/.local/bin/poetry run gunicorn config.wsgi\n")
    with pytest.raises(ConfigError) as info:
        check_deploy_files(infra, "production", [_target("myapp")], "v1")
    assert info.value.file.endswith(f"deploy_files/production/etc/systemd/system/{unit}")
    assert f"installs /etc/systemd/system/{unit.removesuffix('.j2')}, the unit djaploy writes" in str(info.value)
    assert "infra/templates/" in str(info.value)


def test_other_units_and_drop_ins_for_the_apps_unit_are_installed(tmp_path: Path) -> None:
    from djaploy.deploy_files import collect

    infra = tmp_path / "infra"
    system = infra / "deploy_files" / "production" / "etc" / "systemd" / "system"
    (system / "myapp.service.d").mkdir(parents=True)
    (system / "app.service").write_text("[Service]\nExecStart=/bin/true\n")  # the README's tree: not the app's unit
    (system / "myapp.service.d" / "override.conf").write_text("[Service]\nNice=5\n")
    (system / "othername.service").write_text("[Service]\nExecStart=/bin/true\n")  # another app_name's unit name
    remotes = [item.remote for item in collect(infra, "production", _target("myapp"))]
    assert remotes == ["/etc/systemd/system/app.service", "/etc/systemd/system/myapp.service.d/override.conf",
                       "/etc/systemd/system/othername.service"]


def test_the_certificates_extra_of_1x_installs() -> None:
    """`pip install djaploy[certificates]` must resolve: the extra exists (and needs nothing locally)."""
    import tomllib

    extras = tomllib.loads((WORKTREE / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["certificates"] == []
