"""Every module checks its own options before connecting, under every spelling of its key, with
"did you mean"; the public option helpers; render() preferring the project's own templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import HostContext
from djaploy.errors import ConfigError
from djaploy.inventory import resolve_targets
from djaploy.modules import litestream, nginx, systemd
from djaploy.modules.base import BaseModule, load_modules
from djaploy.modules.options import did_you_mean, module_options, option_keys
from djaploy.project import Project
from djaploy.render import render

BUILTINS = ["djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.systemd"]
SCHEDULED = f"{__name__}.Scheduled"


class Scheduled(BaseModule):
    """A user's module that declares its options and writes no check of its own."""

    name = "scheduled"
    option_names = ("schedule", "command")


def target(options: dict[str, Any], modules: list[str] = BUILTINS, host_options: dict[str, Any] | None = None) -> Target:
    config = DjaployConfig(project_name="shop", modules=modules, module_options=options)
    host = HostConfig("web1", ssh_host="203.0.113.10", module_options=host_options)
    return resolve_targets(config, [host], "production", environ={}, source_file="inventory/production.py")[0]


def check_before_connecting(t: Target) -> None:
    """What open_session does with every module of a host before any connection."""
    for module in load_modules(t.modules):
        module.check_target(t, None)


# --- unknown options are refused, whatever the key's spelling --------------------------------------


@pytest.mark.parametrize(
    "modules, key, typo, suggestion",
    [
        (BUILTINS, "nginx", "client_max_body_sise", "client_max_body_size"),
        (BUILTINS, "djaploy.modules.nginx", "client_max_body_sise", "client_max_body_size"),
        ([*BUILTINS, SCHEDULED], "scheduled", "shedule", "schedule"),
        ([*BUILTINS, SCHEDULED], SCHEDULED, "shedule", "schedule"),
        ([*BUILTINS, SCHEDULED], "Scheduled", "comand", "command"),
    ],
)
def test_an_unknown_option_is_refused_with_did_you_mean_under_each_key_spelling(
    modules: list[str], key: str, typo: str, suggestion: str
) -> None:
    t = target({key: {typo: "x"}}, modules)  # config accepts the key: it names a listed module
    with pytest.raises(ConfigError) as info:
        check_before_connecting(t)
    message = str(info.value)
    assert info.value.field == f"module_options[{key!r}][{typo!r}]"
    assert f"host web1: unknown option (did you mean {suggestion!r}?)" in message


@pytest.mark.parametrize("key", ["core", "djaploy.modules.core", "systemd", "djaploy.modules.systemd"])
def test_modules_without_options_refuse_any(key: str) -> None:
    with pytest.raises(ConfigError, match="unknown option; this module takes no options") as info:
        check_before_connecting(target({key: {"workers": 3}}))
    assert info.value.field == f"module_options[{key!r}]['workers']"


def test_a_hosts_own_options_are_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'client_max_body_size'"):
        check_before_connecting(target({}, host_options={"djaploy.modules.nginx": {"client_max_body": "1m"}}))


def test_litestream_refuses_an_unknown_option_under_its_dotted_path_too() -> None:
    replica = {"type": "file", "path": "/var/backups/shop"}
    t = target({"litestream": {"replica": replica}, "djaploy.modules.litestream": {"verison": "0.5.17"}},
               [*BUILTINS, "djaploy.modules.litestream"])
    with pytest.raises(ConfigError, match=r"unknown option 'verison' \(did you mean 'version'\?\)"):
        litestream.settings_for(t)


def test_nginx_refuses_a_body_size_that_is_not_a_size() -> None:
    with pytest.raises(ConfigError, match="expected a size like '20m'") as info:
        check_before_connecting(target({"nginx": {"client_max_body_size": "20m; include /etc/shadow"}}))
    assert info.value.field == "module_options['nginx']['client_max_body_size']"


# --- options given under any spelling reach the module --------------------------------------------


def ctx_for(t: Target, config_dir: Path | None = None) -> HostContext:
    project = Project(git_root=Path("/src/shop"), manage_py="manage.py", wsgi_application="shop.wsgi:application")
    return HostContext(env="production", target=t, plan=None, config_dir=config_dir, project=project)  # type: ignore[arg-type]


def test_nginx_reads_its_options_under_its_dotted_path() -> None:
    """Config used to accept this spelling while nginx read only 'nginx': the option was lost."""
    site = nginx.nginx_site(ctx_for(target({"djaploy.modules.nginx": {"client_max_body_size": "64m"}})))
    assert "client_max_body_size 64m;" in site
    assert "client_max_body_size 20m;" in nginx.nginx_site(ctx_for(target({})))


def test_every_spelling_merges_and_the_name_wins() -> None:
    t = target({SCHEDULED: {"schedule": "weekly", "command": "a"}, "scheduled": {"command": "b"}},
               [*BUILTINS, SCHEDULED])
    assert option_keys(t, Scheduled) == [SCHEDULED, "Scheduled", "scheduled"]
    assert module_options(t, Scheduled()) == {"schedule": "weekly", "command": "b"}
    assert option_keys(t, "nginx") == ["djaploy.modules.nginx", "nginx"]


def test_did_you_mean() -> None:
    assert did_you_mean("shedule", ["schedule", "command"]) == " (did you mean 'schedule'?)"
    assert did_you_mean("prod", ["production", "staging"]) == " (did you mean 'production'?)"
    assert did_you_mean("zzz", ["production"]) == ""


# --- render(): the project's templates win -------------------------------------------------------


def test_render_prefers_the_projects_template_over_the_builtin_of_the_same_name(tmp_path: Path) -> None:
    templates = tmp_path / "infra" / "templates"
    templates.mkdir(parents=True)
    (templates / "gunicorn.socket.j2").write_text("# the project's socket for {{ name }}\n")
    (templates / "own.txt.j2").write_text("{{ greeting }}, {{ project }}\n")

    assert render("gunicorn.socket.j2", tmp_path / "infra", name="shop") == "# the project's socket for shop\n"
    assert render("own.txt.j2", tmp_path / "infra", greeting="hello", project="shop") == "hello, shop\n"
    # A built-in module renders through the same path: the project's file replaces djaploy's.
    ctx = ctx_for(target({}), tmp_path / "infra")
    assert systemd.gunicorn_socket(ctx, ctx.paths.service_for("in_place")) == "# the project's socket for shop\n"
    without = ctx_for(target({}))  # no infra folder: djaploy's own
    builtin = systemd.gunicorn_socket(without, without.paths.service_for("in_place"))
    assert "ListenStream=/run/shop/shop.sock" in builtin and "the project's" not in builtin


def test_render_names_where_it_looked_for_a_missing_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"template 'nightly.service.j2' not found in infra/templates/ or djaploy's"):
        render("nightly.service.j2", tmp_path / "infra")
