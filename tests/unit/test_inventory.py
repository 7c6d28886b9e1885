"""Loading an infra folder and resolving it into Targets: errors name the file, line, host and field."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.errors import ConfigError
from djaploy.inventory import list_environments, load_config, load_inventory, load_targets, resolve_targets
from tests.unit.fixtures_config.modules import CUSTOM, OTHER

CONFIG = f"""\
from djaploy.config import DjaployConfig

config = DjaployConfig(
    project_name="shop",
    modules=[{CUSTOM!r}],
    ssh_user="deploy",
    ssh_port=2200,
    ssh_key="keys/deploy_key",
    domains=["shop.example.com"],
    env_vars={{"DJANGO_DEBUG": "0", "REGION": "eu"}},
    secrets={{"DJANGO_SECRET_KEY": "env:SHOP_SECRET_KEY", "API_TOKEN": "literal-token"}},
    module_options={{"custom": {{"a": 1, "b": 1}}}},
)
"""

PRODUCTION = """\
from djaploy.config import HostConfig

hosts = [
    HostConfig("web1", ssh_host="203.0.113.10"),
    HostConfig(
        "web2",
        ssh_hostname="203.0.113.11",
        ssh_port=22,
        ssh_key="~/.ssh/id_web2",
        domains=["www.example.com"],
        env_vars={"REGION": "us"},
        secrets={"DB_PASSWORD": "env:WEB2_DB_PASSWORD"},
        module_options={"custom": {"b": 2}},
        keep_releases=3,
    ),
]
"""

HOST_OK = 'from djaploy.config import HostConfig\nhosts = [HostConfig("web1", ssh_host="h")]\n'
ENVIRON = {"SHOP_SECRET_KEY": "from-env-secret", "WEB2_DB_PASSWORD": "db-secret"}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def make_infra(root: Path, config: str = CONFIG, **inventories: str) -> Path:
    """An infra folder under `root` with config.py and inventory/<env>.py per keyword."""
    infra = root / "infra"
    write(infra / "config.py", config)
    for env, text in (inventories or {"production": PRODUCTION}).items():
        write(infra / "inventory" / f"{env}.py", text)
    return infra


def inventory_error(infra: Path, env: str = "production") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_inventory(infra, env)
    return info.value


# --- load_config ---------------------------------------------------------------------------------


def test_load_config_returns_the_config_with_djaploy_dir_set(tmp_path: Path) -> None:
    infra = make_infra(tmp_path)
    config = load_config(infra)
    assert isinstance(config, DjaployConfig)
    assert config.project_name == "shop"
    assert config.djaploy_dir == infra.absolute()


def test_relative_djaploy_dir_is_taken_from_the_config_folder(tmp_path: Path) -> None:
    infra = make_infra(tmp_path, CONFIG.replace('project_name="shop",', 'project_name="shop", djaploy_dir="sub",'))
    assert load_config(infra).djaploy_dir == infra.absolute() / "sub"


def test_missing_config_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist; create .*config.py with config = DjaployConfig\("):
        load_config(tmp_path / "infra")


def test_missing_config_file(tmp_path: Path) -> None:
    (tmp_path / "infra").mkdir()
    with pytest.raises(ConfigError, match=r"config.py not found; create .* with config = DjaployConfig\(project_name="):
        load_config(tmp_path / "infra")


def test_config_file_without_config_variable(tmp_path: Path) -> None:
    infra = make_infra(tmp_path, "cfg = 1\n")
    with pytest.raises(ConfigError, match="defines no `config`; add config = DjaployConfig") as info:
        load_config(infra)
    assert info.value.file is not None and info.value.file.endswith("config.py")


def test_config_of_the_wrong_type(tmp_path: Path) -> None:
    infra = make_infra(tmp_path, "config = {'project_name': 'shop'}\n")
    with pytest.raises(ConfigError, match="`config` must be a DjaployConfig .*got dict"):
        load_config(infra)


def test_config_error_in_config_file_names_file_line_and_field(tmp_path: Path) -> None:
    infra = make_infra(tmp_path, CONFIG.replace("ssh_port=2200", 'ssh_port="2200"'))
    with pytest.raises(ConfigError) as info:
        load_config(infra)
    err = info.value
    assert err.file == f"{infra / 'config.py'}:3"
    assert err.field == "DjaployConfig.ssh_port"
    assert str(err) == f"{infra / 'config.py'}:3: DjaployConfig.ssh_port: expected int, got str ('2200')"


def test_unknown_module_in_config_file_names_file(tmp_path: Path) -> None:
    infra = make_infra(tmp_path, CONFIG.replace(repr(CUSTOM), "'djaploy.modules.nginxx'"))
    with pytest.raises(ConfigError, match="unknown module 'djaploy.modules.nginxx'") as info:
        load_config(infra)
    assert info.value.file == f"{infra / 'config.py'}:3"
    assert info.value.field == "DjaployConfig.modules"


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    infra = make_infra(tmp_path, "from djaploy.config import DjaployConfig\nconfig = DjaployConfig(project_name=\n")
    with pytest.raises(ConfigError, match="invalid Python") as info:
        load_config(infra)
    assert info.value.file is not None and info.value.file.startswith(f"{infra / 'config.py'}:")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_name_error_names_file_and_line_without_traceback(tmp_path: Path) -> None:
    infra = make_infra(tmp_path, "x = 1\nconfig = DjaployConfg(project_name='shop')\n")
    with pytest.raises(ConfigError) as info:
        load_config(infra)
    assert str(info.value) == (
        f"{infra / 'config.py'}:2: NameError: name 'DjaployConfg' is not defined"
    )
    assert info.value.__suppress_context__


def test_error_raised_in_a_helper_says_where(tmp_path: Path, forget_new_modules: None) -> None:
    infra = make_infra(tmp_path, "from infra.helpers import build\nconfig = build()\n")
    write(infra / "helpers.py", "def build():\n    return 1 / 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(infra)
    assert info.value.file == f"{infra / 'config.py'}:2"
    assert "ZeroDivisionError: division by zero (raised at " in str(info.value)
    assert f"{infra / 'helpers.py'}:2)" in str(info.value)


def test_project_root_is_importable_while_running_and_restored_after(tmp_path: Path, forget_new_modules: None) -> None:
    infra = make_infra(
        tmp_path,
        CONFIG.replace(repr(CUSTOM), repr("infra.modules.timers.Nightly")).replace(
            'project_name="shop"', "project_name=infra.names.PROJECT"
        ).replace("from djaploy.config import DjaployConfig", "import infra.names\nfrom djaploy.config import DjaployConfig"),
    )
    write(infra / "names.py", "PROJECT = 'fromhelper'\n")
    write(infra / "modules" / "timers.py", "from djaploy.modules.base import BaseModule\n"
                                           "class Nightly(BaseModule):\n    name = 'custom'\n")
    path_before = list(sys.path)
    config = load_config(infra)
    assert config.project_name == "fromhelper"
    assert config.modules == ["infra.modules.timers.Nightly"]
    assert sys.path == path_before


# --- environments and inventories ------------------------------------------------------------------


def test_list_environments_skips_private_files(tmp_path: Path) -> None:
    infra = make_infra(tmp_path, staging=HOST_OK, production=HOST_OK, _common="X = 1\n", __init__="")
    write(infra / "inventory" / "notes.txt", "not python")
    assert list_environments(infra) == ["production", "staging"]


def test_list_environments_without_inventory_folder(tmp_path: Path) -> None:
    assert list_environments(tmp_path) == []


def test_unknown_environment_lists_existing_ones_and_suggests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    infra = make_infra(tmp_path, production=HOST_OK, staging=HOST_OK)
    monkeypatch.chdir(tmp_path)
    err = inventory_error(infra, "prod")
    assert str(err) == (
        "unknown environment 'prod' (did you mean 'production'?); environments in infra/inventory: production, staging"
    )


def test_no_environments_at_all(tmp_path: Path) -> None:
    infra = make_infra(tmp_path)
    (infra / "inventory" / "production.py").unlink()
    with pytest.raises(ConfigError, match=r"no environments in .*inventory; create .*production.py with hosts = \["):
        load_inventory(infra, "production")


def test_load_inventory_returns_hosts(tmp_path: Path) -> None:
    hosts = load_inventory(make_infra(tmp_path), "production")
    assert [host.name for host in hosts] == ["web1", "web2"]
    assert hosts[1].ssh_host == "203.0.113.11"


def test_unknown_field_in_inventory_names_file_line_and_suggests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    infra = make_infra(tmp_path, production=PRODUCTION.replace("ssh_port=22,", "ssh_hots='x',"))
    monkeypatch.chdir(tmp_path)
    assert str(inventory_error(infra)) == (
        "infra/inventory/production.py:5: HostConfig: unknown field 'ssh_hots' (did you mean 'ssh_host'?)"
    )


def test_both_ssh_host_and_ssh_hostname_in_inventory(tmp_path: Path) -> None:
    infra = make_infra(tmp_path, production='from djaploy.config import HostConfig\n'
                                             'hosts = [HostConfig("a", ssh_host="h", ssh_hostname="h")]\n')
    err = inventory_error(infra)
    assert err.file == f"{infra / 'inventory' / 'production.py'}:2"
    assert "give either 'ssh_host' or 'ssh_hostname', not both" in str(err)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n", "defines no `hosts`; add hosts = [HostConfig("),
        ("hosts = []\n", "`hosts` is empty"),
        ("hosts = {'web1': 1}\n", "`hosts` must be a list of HostConfig, got dict"),
        ("from djaploy.config import HostConfig\nhosts = [HostConfig('a', ssh_host='h'), 'b']\n",
         "hosts[1] is a str, expected HostConfig"),
        ("from djaploy.config import HostConfig\nhosts = [HostConfig('a', ssh_host='h'), HostConfig('a', ssh_host='i')]\n",
         "host name 'a' is used more than once"),
        ("from djaploy.config import HostConfig\nhosts = [HostConfig('a', ssh_host='h', env='staging')]\n",
         "host a has env='staging' but is in the 'production' inventory"),
    ],
)
def test_bad_hosts_lists(tmp_path: Path, source: str, message: str) -> None:
    infra = make_infra(tmp_path, production=source)
    err = inventory_error(infra)
    assert message in str(err)
    assert err.file == str(infra / "inventory" / "production.py")


def test_matching_env_label_is_accepted(tmp_path: Path) -> None:
    infra = make_infra(tmp_path, production=HOST_OK.replace('ssh_host="h"', 'ssh_host="h", env="production"'))
    assert load_inventory(infra, "production")[0].env == "production"


def test_raise_config_error_from_inventory_gets_the_file(tmp_path: Path) -> None:
    infra = make_infra(tmp_path, production="from djaploy.errors import ConfigError\n"
                                             "raise ConfigError('no sandbox running', field='hosts')\n")
    assert str(inventory_error(infra)) == f"{infra / 'inventory' / 'production.py'}:2: hosts: no sandbox running"


# --- resolving -------------------------------------------------------------------------------------


@pytest.fixture
def targets(tmp_path: Path) -> dict[str, Target]:
    _config, resolved = load_targets(make_infra(tmp_path), "production", environ=ENVIRON)
    return {target.name: target for target in resolved}


def test_config_defaults_reach_hosts_without_overrides(targets: dict[str, Target], tmp_path: Path) -> None:
    web1 = targets["web1"]
    assert (web1.env, web1.ssh_host, web1.ssh_port, web1.ssh_user) == ("production", "203.0.113.10", 2200, "deploy")
    assert web1.project_name == "shop" and web1.app_user == "shop"
    assert web1.domains == ("shop.example.com",)
    assert web1.modules == (CUSTOM,)
    assert web1.services == ()
    assert (web1.keep_releases, web1.gunicorn_workers, web1.python_version) == (5, 2, "3.11")
    assert web1.env_vars == {"DJANGO_DEBUG": "0", "REGION": "eu"}
    assert web1.module_options == {"custom": {"a": 1, "b": 1}}
    assert web1.source_file == str(tmp_path / "infra" / "inventory" / "production.py")


def test_host_values_override_config_defaults(targets: dict[str, Target]) -> None:
    web2 = targets["web2"]
    assert web2.ssh_host == "203.0.113.11"  # given as ssh_hostname
    assert web2.ssh_port == 22
    assert web2.ssh_user == "deploy"
    assert web2.domains == ("www.example.com",)
    assert web2.keep_releases == 3
    assert web2.env_vars == {"DJANGO_DEBUG": "0", "REGION": "us"}
    assert web2.module_options == {"custom": {"a": 1, "b": 2}}


def test_secrets_resolve_from_environ_or_literally(targets: dict[str, Target]) -> None:
    assert targets["web1"].secrets == {"DJANGO_SECRET_KEY": "from-env-secret", "API_TOKEN": "literal-token"}
    assert targets["web2"].secrets == {
        "DJANGO_SECRET_KEY": "from-env-secret", "API_TOKEN": "literal-token", "DB_PASSWORD": "db-secret",
    }


def test_target_repr_hides_resolved_secrets(targets: dict[str, Target]) -> None:
    text = repr(targets["web2"])
    assert "DB_PASSWORD" in text and "DJANGO_SECRET_KEY" in text
    for value in ("from-env-secret", "literal-token", "db-secret"):
        assert value not in text


def test_key_paths_are_absolute(targets: dict[str, Target], tmp_path: Path) -> None:
    assert targets["web1"].ssh_key == str(tmp_path / "infra" / "keys" / "deploy_key")
    assert targets["web2"].ssh_key == os.path.expanduser("~/.ssh/id_web2")
    assert targets["web1"].ssh_known_hosts_file is None


@pytest.mark.parametrize("environ, file, message", [
    ({"WEB2_DB_PASSWORD": "long-enough"}, "config.py", "secret DJANGO_SECRET_KEY of host web1 reads $SHOP_SECRET_KEY"),
    ({"SHOP_SECRET_KEY": "long-enough"}, "inventory/production.py", "secret DB_PASSWORD of host web2 reads $WEB2_DB_PASSWORD"),
], ids=["config-secret", "host-secret"])
def test_missing_secret_variable_names_the_file_that_asks_for_it(tmp_path: Path, environ: dict[str, str], file: str,
                                                                 message: str) -> None:
    infra = make_infra(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_targets(infra, "production", environ=environ)
    assert str(info.value) == f"{infra / file}: {message}, which is not set in your environment"


def test_secret_variable_with_a_newline_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"reads \$SHOP_SECRET_KEY, whose value contains a newline"):
        load_targets(make_infra(tmp_path), "production", environ={**ENVIRON, "SHOP_SECRET_KEY": "a\nb"})


def test_a_secret_too_short_to_hide_is_refused_naming_the_file(tmp_path: Path) -> None:
    infra = make_infra(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_targets(infra, "production", environ={**ENVIRON, "SHOP_SECRET_KEY": "abc"})
    message = str(info.value)
    assert message.startswith(f"{infra / 'config.py'}: secret DJANGO_SECRET_KEY of host web1 is 3 characters long")
    assert "at least 4 characters" in message


def test_every_secret_is_redacted_however_short() -> None:
    from djaploy.redact import Redactor

    redact = Redactor(["abcd", "abcdefgh", ""])
    assert redact("key=abcdefgh pw=abcd x") == "key=******** pw=******** x"


def _config(**overrides: object) -> DjaployConfig:
    return DjaployConfig(**{"project_name": "shop", "modules": [CUSTOM, OTHER], **overrides})  # type: ignore[arg-type]


def test_resolve_targets_with_hand_built_objects() -> None:
    hosts = [HostConfig("web1", ssh_host="h", app_user="www", ssh_key="/keys/k", services=["celery"])]
    [target] = resolve_targets(_config(djaploy_dir="/srv/infra", ssh_known_hosts_file="known"), hosts, "staging",
                               environ={}, source_file=Path("/srv/infra/inventory/staging.py"))
    assert (target.app_user, target.ssh_key, target.ssh_known_hosts_file) == ("www", "/keys/k", "/srv/infra/known")
    assert target.services == ("celery",)
    assert target.source_file == "/srv/infra/inventory/staging.py"


def test_resolve_refuses_duplicate_hosts() -> None:
    hosts = [HostConfig("web1", ssh_host="h"), HostConfig("web1", ssh_host="i")]
    with pytest.raises(ConfigError, match="host name 'web1' is used more than once"):
        resolve_targets(_config(), hosts, "production", environ={}, source_file="inv.py")


def test_host_module_options_for_an_unconfigured_module(tmp_path: Path) -> None:
    hosts = [HostConfig("web1", ssh_host="h", module_options={"othr": {}})]
    with pytest.raises(ConfigError, match=r"inv.py: host web1: module_options: options for 'othr'.*did you mean 'other'"):
        resolve_targets(_config(), hosts, "production", environ={}, source_file="inv.py")


def test_same_name_in_env_vars_and_secrets_is_refused() -> None:
    hosts = [HostConfig("web1", ssh_host="h", secrets={"TOKEN": "x"})]
    with pytest.raises(ConfigError, match="host web1 sets TOKEN in both env_vars and secrets"):
        resolve_targets(_config(env_vars={"TOKEN": "y"}), hosts, "production", environ={}, source_file="inv.py")


def test_load_targets_returns_the_config(tmp_path: Path) -> None:
    config, resolved = load_targets(make_infra(tmp_path), "production", environ=ENVIRON)
    assert config.project_name == "shop"
    assert [target.name for target in resolved] == ["web1", "web2"]
