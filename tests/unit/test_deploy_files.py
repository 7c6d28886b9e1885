"""deploy_files/<env>/: what lands where, rendered how, owned by whom, and what reloads.

Local files in a tmp infra folder, installed through the recording plan (tests/unit/conftest.py: an
in-memory host, so "changed" means what it means on a real one).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from djaploy import shell
from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.deploy_files import (
    DeployFile,
    check_deploy_files,
    collect,
    install_deploy_files,
    reload_commands,
    template_values,
)
from djaploy.errors import ConfigError
from djaploy.inventory import resolve_targets
from tests.unit.conftest import RecordingPlan, make_ctx

ENV = "production"
HOME = "/home/shop"
NGINX_RELOAD = f"nginx -t -q && systemctl reload nginx && {shell.wait_nginx_reloaded()}"  # validate, then reload


def make_target(options: dict[str, Any] | None = None, **host: Any) -> Target:
    config = DjaployConfig(project_name="shop", env_vars={"SHOP_MODE": "live"}, secrets={"API_TOKEN": "env:SHOP_TOKEN"})
    hosts = [HostConfig("web1", ssh_host="192.0.2.10", domains=["shop.example.com", "www.shop.example.com"], **host)]
    target = resolve_targets(config, hosts, ENV, environ={"SHOP_TOKEN": "t0ken-value"}, source_file="inventory/production.py")[0]
    # Options are set on the resolved Target: config.py's own check of module_options keys is tested separately.
    return replace(target, module_options={"deploy_files": options}) if options is not None else target


@pytest.fixture
def infra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "infra"


def write(infra: Path, relative: str, content: str | bytes, executable: bool = False) -> Path:
    path = infra / "deploy_files" / ENV / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    if executable:
        path.chmod(0o755)
    return path


def by_remote(files: list[DeployFile]) -> dict[str, DeployFile]:
    return {item.remote: item for item in files}


# --- where, what, whose -------------------------------------------------------------------------


def test_files_mirror_the_target_filesystem_with_owner_and_mode(infra: Path) -> None:
    write(infra, "etc/shop/plain.conf", "a = 1\n")
    write(infra, "usr/local/bin/shop-backup", "#!/bin/sh\necho backup\n", executable=True)
    write(infra, "home/shop/.config/shop/user.ini", "[user]\n")
    write(infra, "etc/shop/credentials.ini", "token = from a vault\n")
    write(infra, "etc/shop/tool-with-key", "#!/bin/sh\n", executable=True)
    files = by_remote(collect(infra, ENV, make_target({"secret_files": ["/etc/shop/cred*", "/etc/shop/*-key"]})))
    assert {path: (item.owner, item.mode) for path, item in files.items()} == {
        "/etc/shop/plain.conf": ("root", "644"),
        "/usr/local/bin/shop-backup": ("root", "755"),
        "/home/shop/.config/shop/user.ini": ("shop", "644"),  # under the app user's home: the app user's
        "/etc/shop/credentials.ini": ("root", "600"),
        "/etc/shop/tool-with-key": ("root", "700"),
    }
    assert files["/etc/shop/plain.conf"].content is None  # uploaded as it is


def test_no_folder_for_the_environment_means_nothing_to_install(infra: Path) -> None:
    write(infra, "etc/shop/plain.conf", "a = 1\n")
    assert collect(infra, "staging", make_target()) == []
    assert collect(None, ENV, make_target()) == []
    plan = RecordingPlan()
    install_deploy_files(make_ctx(plan, make_target(), config_dir=infra, env="staging"))
    assert plan.calls == []


# --- templates ----------------------------------------------------------------------------------


def test_templates_are_rendered_with_host_and_config_values_and_lose_their_suffix(infra: Path) -> None:
    write(infra, "etc/shop/site.ini.j2", (
        "[site]\nenv = {{ env }}\nrelease = {{ release }}\nhost = {{ host }}\nproject = {{ project }}\n"
        "user = {{ app_user }}\ndomains = {{ domains | join(' ') }}\nmode = {{ env_vars.SHOP_MODE }}\n"
        "data = {{ paths.data_dir }}\nstatic = {{ paths.static_root }}\npython = {{ python_version }}\n"
    ))
    files = by_remote(collect(infra, ENV, make_target(), release="v7"))
    assert list(files) == ["/etc/shop/site.ini"]
    assert files["/etc/shop/site.ini"].content == (
        "[site]\nenv = production\nrelease = v7\nhost = web1\nproject = shop\nuser = shop\n"
        "domains = shop.example.com www.shop.example.com\nmode = live\n"
        "data = /home/shop/apps/shop/shared/data\nstatic = /home/shop/apps/shop/shared/staticfiles\npython = 3.11\n"
    )
    assert (files["/etc/shop/site.ini"].owner, files["/etc/shop/site.ini"].mode) == ("root", "644")


def test_template_values_hold_no_secrets() -> None:
    values = template_values(ENV, make_target(), "v7")
    assert "secrets" not in values
    assert "t0ken-value" not in repr(values)


def test_a_missing_value_is_an_error_naming_the_file_line_and_the_values_there_are(infra: Path) -> None:
    write(infra, "etc/shop/site.ini.j2", "[site]\nhost = {{ host }}\nport = {{ port }}\n")
    with pytest.raises(ConfigError) as info:
        check_deploy_files(infra, ENV, [make_target()], "v7")
    assert info.value.file == f"infra/deploy_files/{ENV}/etc/shop/site.ini.j2:3"
    assert "'port' is undefined" in info.value.detail
    assert "templates get: app_name, app_user, domains, env, env_vars, host, paths, project, python_version, release" in info.value.detail


def test_a_template_syntax_error_names_the_file_and_line(infra: Path) -> None:
    write(infra, "etc/shop/site.ini.j2", "a\nb\n{% if host %}\n")
    with pytest.raises(ConfigError) as info:
        collect(infra, ENV, make_target())
    assert info.value.file == f"infra/deploy_files/{ENV}/etc/shop/site.ini.j2:3"
    assert "TemplateSyntaxError" in info.value.detail


def test_a_template_that_is_not_utf8_is_refused(infra: Path) -> None:
    write(infra, "etc/shop/site.ini.j2", b"caf\xe9\n")
    with pytest.raises(ConfigError, match="must be UTF-8 text"):
        collect(infra, ENV, make_target())


def test_templates_get_secrets_only_when_allowed_and_are_then_private(infra: Path) -> None:
    write(infra, "etc/shop/api.ini.j2", "token = {{ secrets.API_TOKEN }}\n")
    write(infra, "etc/shop/public.ini.j2", "host = {{ host }}\n")
    with pytest.raises(ConfigError) as info:
        collect(infra, ENV, make_target())
    assert info.value.file == f"infra/deploy_files/{ENV}/etc/shop/api.ini.j2"
    assert "template_secrets" in info.value.detail and "t0ken-value" not in str(info.value)

    files = by_remote(collect(infra, ENV, make_target({"template_secrets": True})))
    assert files["/etc/shop/api.ini"].content == "token = t0ken-value\n"
    assert files["/etc/shop/api.ini"].mode == "600"
    assert files["/etc/shop/public.ini"].mode == "644"  # allowed, but this one does not use them


@pytest.mark.parametrize(
    "options, field, message",
    [
        ({"reloads": {}}, "['deploy_files']['reloads']", "unknown option (did you mean 'reload'?)"),
        ({"reload": ["nginx"]}, "['deploy_files']['reload']", "expected a dict of path glob to systemd unit"),
        ({"reload": {"etc/shop/*": "shop.service"}}, "['deploy_files']['reload']", "keys are absolute path globs"),
        ({"reload": {"/etc/shop/*": "shop service; reboot"}}, "['deploy_files']['reload']", "a unit name"),
        ({"secret_files": "/etc/shop/*"}, "['deploy_files']['secret_files']", "expected a list of absolute path globs"),
        ({"template_secrets": "yes"}, "['deploy_files']['template_secrets']", "expected True or False"),
    ],
)
def test_bad_options_are_config_errors_naming_the_field(infra: Path, options: dict, field: str, message: str) -> None:
    write(infra, "etc/shop/plain.conf", "a = 1\n")
    with pytest.raises(ConfigError) as info:
        check_deploy_files(infra, ENV, [make_target(options)], "v7")
    assert info.value.file == "infra/config.py"
    assert info.value.field == f"module_options{field}"
    assert message in info.value.detail and "host web1" in info.value.detail


# --- reloads ------------------------------------------------------------------------------------


def changed(*paths: str, reload: tuple[str, ...] = ()) -> list[DeployFile]:
    return [DeployFile(Path("x"), path, "root", "644", "", reload) for path in paths]


def test_unit_files_and_drop_ins_reload_systemd_and_restart_their_running_units() -> None:
    files = changed(
        "/etc/systemd/system/shop-worker.service",
        "/etc/systemd/system/shop-nightly.timer",
        "/etc/systemd/system/ledger.service.d/limits.conf",
        "/etc/systemd/system/shop-job@.service",
        "/etc/systemd/system/shop.socket",  # never restarted: it would refuse connections
        "/etc/systemd/system/multi-user.target.wants/shop-worker.service",
    )
    assert reload_commands(files) == [(
        "deploy_files: systemd daemon-reload, restart ledger.service shop-job@*.service shop-nightly.timer shop-worker.service",
        "systemctl daemon-reload && systemctl try-restart ledger.service 'shop-job@*.service' shop-nightly.timer shop-worker.service",
    )]
    assert reload_commands(changed("/etc/systemd/system/shop.socket")) == [
        ("deploy_files: systemd daemon-reload", "systemctl daemon-reload")
    ]


def test_nginx_files_check_the_config_then_reload_nginx_once() -> None:
    assert reload_commands(changed("/etc/nginx/conf.d/gzip.conf", "/etc/nginx/snippets/headers.conf")) == [
        ("deploy_files: check nginx config and reload", NGINX_RELOAD)
    ]


def test_the_reload_option_reloads_its_units_once_in_a_fixed_order() -> None:
    files = [
        *changed("/etc/shop/a.ini", reload=("shop-worker.service", "nginx")),
        *changed("/etc/shop/b.ini", reload=("shop-worker.service",)),
        *changed("/etc/systemd/system/shop-worker.service"),
    ]
    assert [command for _, command in reload_commands(files)] == [
        "systemctl daemon-reload && systemctl try-restart shop-worker.service",
        "systemctl try-reload-or-restart shop-worker.service",
        NGINX_RELOAD,
    ]
    assert reload_commands(changed("/etc/shop/plain.conf", "/usr/local/bin/tool")) == []


def test_reload_globs_match_the_installed_path(infra: Path) -> None:
    write(infra, "etc/shop/worker/queue.ini.j2", "host = {{ host }}\n")
    write(infra, "etc/shop/other.ini", "x\n")
    files = by_remote(collect(infra, ENV, make_target({"reload": {"/etc/shop/worker/*.ini": ["shop-worker.service"],
                                                                  "/etc/shop/*": "shop-all.service"}})))
    assert files["/etc/shop/worker/queue.ini"].reload == ("shop-worker.service", "shop-all.service")
    assert files["/etc/shop/other.ini"].reload == ("shop-all.service",)


def test_only_changed_files_reload_their_services(infra: Path) -> None:
    write(infra, "etc/nginx/conf.d/gzip.conf", "gzip_types text/css;\n")
    write(infra, "etc/shop/worker.ini.j2", "host = {{ host }}\n")
    target = make_target({"reload": {"/etc/shop/worker.ini": "shop-worker.service"}})
    plan = RecordingPlan()
    install_deploy_files(make_ctx(plan, target, config_dir=infra, env=ENV))
    assert [step for method, step in plan.calls if method == "run"] == [
        "deploy_files: reload shop-worker.service", "deploy_files: check nginx config and reload",
    ]
    assert plan.files["/etc/shop/worker.ini"] == ("host = web1\n", "root", "644")

    plan.calls.clear()
    install_deploy_files(make_ctx(plan, target, config_dir=infra, env=ENV))  # the same files again
    assert [method for method, _ in plan.calls] == ["put_file", "put_text"]  # no reload

    plan.calls.clear()
    write(infra, "etc/shop/worker.ini.j2", "host = {{ host }}\nthreads = 4\n")
    install_deploy_files(make_ctx(plan, target, config_dir=infra, env=ENV))
    assert [step for method, step in plan.calls if method == "run"] == ["deploy_files: reload shop-worker.service"]


def test_config_accepts_deploy_files_options() -> None:
    """module_options["deploy_files"] is valid though deploy_files is not a module in `modules`."""
    config = DjaployConfig(project_name="shop", module_options={"deploy_files": {"reload": {"/etc/shop/*": "shop-worker"}}})
    assert config.module_options["deploy_files"] == {"reload": {"/etc/shop/*": "shop-worker"}}


def test_the_example_deploy_files_render_for_the_sandbox() -> None:
    infra = Path(__file__).resolve().parents[2] / "infra_example" / "infra"
    config = DjaployConfig(project_name="ledger", env_vars={"DJANGO_DEBUG": "0"})
    target = resolve_targets(config, [HostConfig("vm1", ssh_host="10.231.1.2", domains=["10.231.1.2"])], "sandbox",
                             environ={}, source_file="inventory/sandbox.py")[0]
    files = by_remote(collect(infra, "sandbox", target, "v1"))
    assert files, "the example has deploy files for the sandbox"
    for item in files.values():
        assert not item.remote.endswith(".j2")
        assert (item.owner, item.mode) == ("root", "644")
    motd = files["/etc/motd"].content
    assert motd and "ledger (sandbox host vm1): 10.231.1.2" in motd and "/home/ledger/apps/ledger/shared/data" in motd
