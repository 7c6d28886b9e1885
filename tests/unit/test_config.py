"""DjaployConfig / HostConfig validation and Target: every mistake must be a clear ConfigError."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from djaploy.config import (
    DEFAULT_MODULES,
    DjaployConfig,
    HostConfig,
    Target,
    inherited_settings,
)
from djaploy.configured_modules import check_configured_modules
from djaploy.errors import ConfigError
from djaploy.modules.options import did_you_mean
from tests.unit.fixtures_config.modules import CLASHING, CUSTOM, OTHER


def make_config(**overrides: Any) -> DjaployConfig:
    """A valid config; the fixture module stands in for the built-ins so the tests do not need them."""
    return DjaployConfig(**{"project_name": "shop", "modules": [CUSTOM], **overrides})


def checked_config(**overrides: Any) -> DjaployConfig:
    """make_config, with the module checks loading the infra folder runs after config.py."""
    config = make_config(**overrides)
    check_configured_modules(config)
    return config


def make_host(**overrides: Any) -> HostConfig:
    return HostConfig(**{"name": "web1", "ssh_host": "203.0.113.10", **overrides})


def config_error(build: Any, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build(**kwargs)
    return info.value


# --- valid configs ------------------------------------------------------------------------------


def test_defaults_of_a_minimal_config() -> None:
    config = make_config()
    assert config.python_version == "3.11"
    assert (config.ssh_user, config.ssh_port, config.ssh_key) == ("root", 22, None)
    assert config.deployment_strategy == "in_place"
    assert config.health_check_path == "/"
    assert (config.keep_releases, config.gunicorn_workers) == (5, 2)
    assert config.services == [] and config.domains == [] and config.env_vars == {} and config.secrets == {}
    assert config.app_user is None and config.djaploy_dir is None and config.wsgi_application is None


def test_default_modules_are_the_builtins() -> None:
    default = DjaployConfig.__dataclass_fields__["modules"].default_factory()  # type: ignore[misc]
    assert default == list(DEFAULT_MODULES)
    assert DEFAULT_MODULES == ("djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.systemd")


def test_mutable_defaults_are_not_shared() -> None:
    first, second = make_config(), make_config()
    first.env_vars["A"] = "1"
    assert second.env_vars == {}


def test_tuples_are_accepted_for_lists_and_paths_become_path() -> None:
    config = make_config(domains=("example.com",), djaploy_dir="/srv/infra")
    assert config.domains == ["example.com"]
    assert str(config.djaploy_dir) == "/srv/infra"


def test_host_name_may_be_positional() -> None:
    host = HostConfig("web1", ssh_host="203.0.113.10")
    assert (host.name, host.ssh_host) == ("web1", "203.0.113.10")
    assert host.ssh_port is None and host.domains is None and host.env is None


def test_none_means_inherit_for_host_overrides() -> None:
    assert make_host(ssh_port=None, secrets=None).ssh_port is None


def test_ssh_hostname_is_an_alias_of_ssh_host() -> None:
    assert HostConfig("web1", ssh_hostname="203.0.113.10").ssh_host == "203.0.113.10"


# --- unknown, missing and doubled fields ---------------------------------------------------------


def test_unknown_field_suggests_the_closest() -> None:
    err = config_error(make_host, ssh_hots="x")
    assert str(err) == "HostConfig: unknown field 'ssh_hots' (did you mean 'ssh_host'?)"
    assert err.field == "HostConfig"


def test_unknown_config_field_suggests_the_closest() -> None:
    err = config_error(make_config, deploy_strategy="in_place")
    assert "unknown field 'deploy_strategy'" in str(err)
    assert "did you mean 'deployment_strategy'?" in str(err)


def test_unknown_field_without_a_close_match_lists_the_valid_ones() -> None:
    err = config_error(make_config, zzz=1)
    assert "unknown field 'zzz'; valid fields: project_name, djaploy_dir," in str(err)


def test_missing_required_fields() -> None:
    assert "missing required field 'project_name'" in str(config_error(DjaployConfig))
    assert "missing required field 'ssh_host'" in str(config_error(HostConfig, name="web1"))
    assert "missing required field 'name'" in str(config_error(HostConfig, ssh_host="h"))


def test_both_ssh_host_and_ssh_hostname_is_an_error() -> None:
    err = config_error(make_host, ssh_hostname="203.0.113.11")
    assert "give either 'ssh_host' or 'ssh_hostname', not both" in str(err)


def test_name_given_positionally_and_as_keyword() -> None:
    with pytest.raises(ConfigError, match="'name' is given twice"):
        HostConfig("web1", name="web2", ssh_host="h")


def test_surplus_positional_arguments() -> None:
    with pytest.raises(ConfigError, match="positional arguments allowed: name; pass the other fields"):
        HostConfig("web1", "203.0.113.10")
    with pytest.raises(ConfigError, match="DjaployConfig: positional arguments allowed: none"):
        DjaployConfig("shop")


# --- wrong types -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field", "value", "expected"),
    [
        (make_config, "ssh_port", "22", "DjaployConfig.ssh_port: expected int, got str ('22')"),
        (make_config, "ssh_port", True, "DjaployConfig.ssh_port: expected int, got bool (True)"),
        (make_host, "ssh_port", True, "HostConfig.ssh_port: expected int or None, got bool (True)"),
        (make_config, "project_name", 5, "DjaployConfig.project_name: expected str, got int (5)"),
        (make_config, "project_name", None, "DjaployConfig.project_name: expected str, got NoneType (None)"),
        (make_config, "ssh_port", None, "DjaployConfig.ssh_port: expected int, got NoneType (None)"),
        (make_config, "domains", "example.com", "DjaployConfig.domains: expected list of str, got str"),
        (make_config, "services", ["a", 3], "DjaployConfig.services: expected list of str, got a list containing int (3)"),
        (make_config, "env_vars", {"A": 1}, "DjaployConfig.env_vars: expected dict of str to str, got int (1) for key 'A'"),
        (make_config, "env_vars", {1: "a"}, "DjaployConfig.env_vars: expected dict of str to str, got a dict with key int"),
        (make_host, "secrets", ["A"], "HostConfig.secrets: expected dict of str to str or None, got list"),
        (make_config, "module_options", {"custom": 1}, "DjaployConfig.module_options: expected dict of module name"),
        (make_config, "keep_releases", 2.5, "DjaployConfig.keep_releases: expected int, got float (2.5)"),
        (make_config, "djaploy_dir", 3, "DjaployConfig.djaploy_dir: expected str or Path or None, got int (3)"),
        (make_config, "python_version", 3.11, "DjaployConfig.python_version: expected str, got float (3.11)"),
    ],
)
def test_wrong_type_names_field_expected_and_got(build: Any, field: str, value: Any, expected: str) -> None:
    err = config_error(build, **{field: value})
    assert str(err).startswith(expected)
    assert err.field is not None and err.field.endswith(f".{field}")


# --- value rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Shop", "1shop", "my shop", "shop.app", "", "a" * 41, "-shop"])
def test_bad_project_names(name: str) -> None:
    err = config_error(make_config, project_name=name)
    assert err.field == "DjaployConfig.project_name"
    assert "not a valid project name" in str(err)


@pytest.mark.parametrize("name", ["a", "shop", "my-shop_2", "a" * 32])
def test_good_project_names(name: str) -> None:
    assert make_config(project_name=name).project_name == name


def test_project_name_too_long_for_a_linux_user_needs_app_user() -> None:
    long_name = "a" * 35
    err = config_error(make_config, project_name=long_name)
    assert err.field == "DjaployConfig.app_user"
    assert "set app_user=" in str(err)
    assert make_config(project_name=long_name, app_user="shop").app_user == "shop"


@pytest.mark.parametrize("user", ["Root", "1user", "a b", "a" * 33])
def test_bad_app_user(user: str) -> None:
    assert "not a valid Linux user name" in str(config_error(make_config, app_user=user))
    assert "not a valid Linux user name" in str(config_error(make_host, app_user=user))


@pytest.mark.parametrize("name", ["web 1", "-web", "", "web/1"])
def test_bad_host_names(name: str) -> None:
    err = config_error(make_host, name=name)
    assert err.field == "HostConfig.name"


def test_unknown_strategy_lists_valid_ones_and_suggests() -> None:
    err = config_error(make_config, deployment_strategy="zero-downtime")
    assert str(err) == (
        "DjaployConfig.deployment_strategy: unknown deployment strategy 'zero-downtime' "
        "(did you mean 'zero_downtime'?); valid: in_place, zero_downtime, bluegreen"
    )


def test_host_overrides_follow_the_same_rules_as_the_config() -> None:
    assert "unknown deployment strategy 'blue'" in str(config_error(make_host, deployment_strategy="blue"))
    assert "at least 2" in str(config_error(make_host, keep_releases=1))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("python_version", "3", "not a Python version like '3.11'"),
        ("python_version", "python3.11", "not a Python version"),
        ("health_check_path", "health/", "is not a URL path: '/' followed by"),
        ("health_check_path", "/health/?q=$(touch${IFS}/tmp/x)", "is not a URL path"),
        ("health_check_path", '/a"b', "is not a URL path"),
        ("health_check_path", "/a b", "percent-encode anything else"),
        ("keep_releases", 1, "must be at least 2, got 1"),
        ("gunicorn_workers", 0, "must be at least 1, got 0"),
        ("ssh_port", 0, "0 is not a port"),
        ("ssh_port", 70000, "70000 is not a port"),
        ("wsgi_application", "mysite.wsgi", "must look like 'mysite.wsgi:application'"),
        ("manage_py_path", "/abs/manage.py", "relative to the git root"),
        ("manage_py_path", "../manage.py", "relative to the git root"),
        ("domains", ["https://example.com/"], "without scheme or path"),
        ("domains", ["example.com", "example.com"], "domain 'example.com' listed more than once"),
        ("services", ["celery worker"], "not a systemd unit name"),
        ("env_vars", {"MY-VAR": "1"}, "'MY-VAR' is not a valid environment variable name"),
        ("env_vars", {"A": "two\nlines"}, "may not contain newlines"),
        ("secrets", {"1KEY": "x"}, "'1KEY' is not a valid environment variable name"),
        ("secrets", {"KEY": "env:BAD-NAME"}, "'env:' must be followed by a variable name"),
        ("secrets", {"KEY": "two\nlines"}, "may not contain newlines"),
    ],
)
def test_bad_values_name_the_field(field: str, value: Any, message: str) -> None:
    err = config_error(make_config, **{field: value})
    assert err.field == f"DjaployConfig.{field}"
    assert message in str(err)


@pytest.mark.parametrize(
    ("value", "message"),
    [("root@203.0.113.10", "ssh_user="), ("203.0.113.10:2222", "ssh_port="), ("my host", "not a host name")],
)
def test_bad_ssh_host(value: str, message: str) -> None:
    err = config_error(make_host, ssh_host=value)
    assert err.field == "HostConfig.ssh_host"
    assert message in str(err)


def test_ipv6_ssh_host_is_accepted() -> None:
    assert make_host(ssh_host="2001:db8::1").ssh_host == "2001:db8::1"


# --- modules -------------------------------------------------------------------------------------


def test_modules_accept_classes_by_dotted_path() -> None:
    assert checked_config(modules=[CUSTOM, OTHER]).modules == [CUSTOM, OTHER]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nosuchpackage.nginx", "unknown module 'nosuchpackage.nginx'"),
        ("tests.unit.fixtures_config.modules.Missing", "unknown module"),
        ("tests.unit.fixtures_config.modules.NotAModule", "is not a BaseModule subclass"),
        ("tests.unit.fixtures_config", "defines no BaseModule subclass; define `class Module(BaseModule)` there"),
        ("", "must be dotted paths"),
    ],
)
def test_bad_module_paths(path: str, message: str) -> None:
    err = config_error(checked_config, modules=[path])
    assert err.field == "DjaployConfig.modules"
    assert message in str(err)


def test_duplicate_modules_are_refused() -> None:
    err = config_error(make_config, modules=[CUSTOM, OTHER, CUSTOM])
    assert err.field == "DjaployConfig.modules"
    assert f"module {CUSTOM!r} listed more than once" in str(err)


def test_conflicting_modules_are_refused() -> None:
    assert "cannot be combined" in str(config_error(checked_config, modules=[CUSTOM, CLASHING]))


def test_module_options_are_keyed_by_name_or_path() -> None:
    config = checked_config(modules=[CUSTOM, OTHER], module_options={"custom": {"a": 1}, OTHER: {"b": 2}})
    assert config.module_options == {"custom": {"a": 1}, OTHER: {"b": 2}}


def test_module_options_for_an_unconfigured_module_are_refused() -> None:
    err = config_error(checked_config, module_options={"custon": {"a": 1}})
    assert err.field == "DjaployConfig.module_options"
    assert "options for 'custon', which is not in modules (did you mean 'custom'?)" in str(err)


# --- merging and Target --------------------------------------------------------------------------


def test_host_values_override_config_defaults_and_dicts_merge() -> None:
    config = make_config(ssh_port=2200, ssh_user="deploy", domains=["a.example.com"], env_vars={"A": "1", "B": "1"},
                         module_options={"custom": {"x": 1, "y": 1}})
    host = make_host(ssh_port=22, domains=["b.example.com"], env_vars={"B": "2"}, module_options={"custom": {"y": 2}})
    settings = inherited_settings(config, host)
    assert settings["ssh_port"] == 22
    assert settings["ssh_user"] == "deploy"
    assert settings["domains"] == ["b.example.com"]
    assert settings["env_vars"] == {"A": "1", "B": "2"}
    assert settings["module_options"] == {"custom": {"x": 1, "y": 2}}
    assert settings["keep_releases"] == 5


def make_target(**overrides: Any) -> Target:
    values: dict[str, Any] = {
        "name": "web1", "env": "production", "ssh_host": "h", "ssh_port": 22, "ssh_user": "root", "ssh_key": None,
        "ssh_known_hosts_file": None, "project_name": "shop", "app_name": "shop", "app_user": "shop", "domains": (),
        "deployment_strategy": "in_place", "health_check_path": "/", "keep_releases": 5, "gunicorn_workers": 2,
        "python_version": "3.11", "wsgi_application": None, "modules": (CUSTOM,), "services": (), "env_vars": {},
        "secrets": {"DJANGO_SECRET_KEY": "hunter2-value"}, "module_options": {}, "source_file": "inv.py",
    }
    return Target(**{**values, **overrides})


def test_target_repr_shows_secret_names_not_values() -> None:
    text = repr(make_target())
    assert "DJANGO_SECRET_KEY" in text
    assert "hunter2-value" not in text
    assert "hunter2-value" not in str(make_target())
    assert "ssh_host='h'" in text


def test_config_reprs_hide_literal_secrets_too() -> None:
    for obj in (make_config(secrets={"KEY": "hunter2-value"}), make_host(secrets={"KEY": "hunter2-value"})):
        assert "secrets={'KEY': ***}" in repr(obj)
        assert "hunter2-value" not in repr(obj)
    assert repr(make_host()).startswith("HostConfig(name='web1', ssh_host='203.0.113.10', ")


def test_target_is_frozen_and_hashable() -> None:
    target = make_target()
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.ssh_port = 2222  # type: ignore[misc]
    assert hash(target) == hash(make_target())


def test_did_you_mean() -> None:
    assert did_you_mean("ssh_hots", ["ssh_host", "ssh_port"]) == " (did you mean 'ssh_host'?)"
    assert did_you_mean("prod", ["production", "staging"]) == " (did you mean 'production'?)"
    assert did_you_mean("zzz", ["production", "staging"]) == ""


def test_targets_carry_their_environments_notifications_unread_and_out_of_repr() -> None:
    from djaploy.inventory import resolve_targets

    config = make_config(notifications={"slack": {"webhook_url": "https://hooks.slack.test/T0KEN-literal"},
                                        "webhook": {"url": "env:HOOK_URL", "secret": "env:HOOK_SECRET"},
                                        "environments": {"staging": {"slack": None, "notify_on_failure": False}}})
    production = resolve_targets(config, [make_host()], "production", environ={}, source_file="inv.py")[0]
    staging = resolve_targets(config, [make_host()], "staging", environ={}, source_file="inv.py")[0]
    assert production.notifications.webhook_url == "env:HOOK_URL"  # read only when a command needs it
    assert production.notifications.reports_failures_over_http and not staging.notifications.reports_failures_over_http
    assert staging.notifications.slack_webhook_url is None
    assert "T0KEN-literal" not in repr(production)
    resolved = production.notifications.resolved({"HOOK_URL": "https://hooks.test/x", "HOOK_SECRET": "signing-secret"})
    assert (resolved.webhook_url, resolved.webhook_secret) == ("https://hooks.test/x", "signing-secret")
    with pytest.raises(ConfigError, match=r"DjaployConfig.notifications: webhook_url reads \$HOOK_URL, which is not set"):
        production.notifications.resolved({})
    assert make_target().notifications.any is False  # a Target made without them: nobody is told
