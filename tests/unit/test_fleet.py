"""Roles, the primary and private addresses: per-host spelling in HostConfig, fleet rules in djaploy.fleet."""

from __future__ import annotations

from dataclasses import replace

import pytest

from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.errors import ConfigError
from djaploy.fleet import check_fleet, primary, with_role
from djaploy.inventory import resolve_targets

POSTGRES = "djaploy.modules.postgres"


def targets(*hosts: HostConfig) -> list[Target]:
    config = DjaployConfig(project_name="shop")
    return resolve_targets(config, list(hosts), "production", environ={}, source_file="infra/inventory/production.py")


def test_a_host_without_roles_is_a_web_host_reached_at_its_ssh_address() -> None:
    (web,) = targets(HostConfig("web1", ssh_host="203.0.113.11"))
    assert web.roles == ("web",)
    assert web.private_address == "203.0.113.11"
    assert primary([web]) is web


def test_private_address_and_several_roles() -> None:
    web, both = targets(HostConfig("web1", ssh_host="203.0.113.11"),
                        HostConfig("web2", ssh_host="203.0.113.12", roles=["web", "worker"], private_address="10.0.0.12"))
    assert both.roles == ("web", "worker") and both.private_address == "10.0.0.12"
    assert [h.name for h in with_role([web, both], "worker")] == ["web2"]


def test_the_primary_is_the_first_web_host_unless_one_is_marked() -> None:
    hosts = targets(HostConfig("w", ssh_host="h0", roles=["worker"]), HostConfig("web1", ssh_host="h1"),
                    HostConfig("web2", ssh_host="h2"))
    assert primary(hosts).name == "web1"
    hosts = targets(HostConfig("web1", ssh_host="h1"), HostConfig("web2", ssh_host="h2", primary=True))
    assert primary(hosts).name == "web2"


def test_unknown_role_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as err:
        HostConfig("web1", ssh_host="h1", roles=["wbe"])
    assert "unknown role 'wbe'" in str(err.value) and "web" in str(err.value) and err.value.field == "HostConfig.roles"


def test_empty_or_repeated_roles_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least one role"):
        HostConfig("web1", ssh_host="h1", roles=[])
    with pytest.raises(ConfigError, match="listed more than once"):
        HostConfig("web1", ssh_host="h1", roles=["web", "web"])


def test_primary_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match="primary"):
        HostConfig("web1", ssh_host="h1", primary="yes")


def test_two_primaries_are_refused_naming_both() -> None:
    with pytest.raises(ConfigError) as err:
        targets(HostConfig("web1", ssh_host="h1", primary=True), HostConfig("web2", ssh_host="h2", primary=True))
    assert "web1, web2" in str(err.value) and "production.py" in str(err.value)


def test_a_primary_that_is_not_a_web_host_is_refused() -> None:
    with pytest.raises(ConfigError, match="worker1 is primary=True but has no 'web' role"):
        targets(HostConfig("web1", ssh_host="h1"), HostConfig("worker1", ssh_host="h2", roles=["worker"], primary=True))


def test_an_environment_without_web_host_is_refused() -> None:
    with pytest.raises(ConfigError, match="no host has the 'web' role"):
        targets(HostConfig("w1", ssh_host="h1", roles=["worker"]))


def test_a_db_host_needs_the_postgres_module() -> None:
    with pytest.raises(ConfigError) as err:
        targets(HostConfig("web1", ssh_host="h1"), HostConfig("db1", ssh_host="h2", roles=["db"]))
    assert "db1 has the 'db' role" in str(err.value) and POSTGRES in str(err.value)
    web, db = targets(HostConfig("web1", ssh_host="h1"), HostConfig("db1", ssh_host="h2"))
    with_postgres = [replace(web, modules=(*web.modules, POSTGRES)),
                     replace(db, roles=("db",), modules=(*db.modules, POSTGRES))]
    check_fleet(with_postgres, file="infra/inventory/production.py")  # the module's own tests load it for real
    assert [h.name for h in with_role(with_postgres, "db")] == ["db1"]
