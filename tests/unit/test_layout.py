from djaploy.layout import AppPaths, project_subdir


def test_paths_live_under_the_app_users_home() -> None:
    paths = AppPaths(app_name="ledger", app_user="ledgerapp")
    assert paths.app_root == "/home/ledgerapp/apps/ledger"
    assert paths.data_dir == "/home/ledgerapp/apps/ledger/shared/data"
    assert paths.static_root == "/home/ledgerapp/apps/ledger/shared/staticfiles"
    assert paths.media_root == "/home/ledgerapp/apps/ledger/shared/media"
    assert paths.code_dir == "/home/ledgerapp/apps/ledger/code"
    assert paths.release_dir("v1.2") == "/home/ledgerapp/apps/ledger/releases/v1.2"
    assert paths.current == "/home/ledgerapp/apps/ledger/current"
    assert paths.upload_path("v1") == "/home/ledgerapp/apps/ledger/.djaploy/uploads/v1.tar.gz"
    assert paths.lock_dir == "/home/ledgerapp/apps/ledger/.djaploy/lock"


def test_data_media_and_static_are_outside_the_code() -> None:
    paths = AppPaths(app_name="ledger", app_user="ledger")
    for kept in (paths.data_dir, paths.media_root, paths.static_root):
        assert not kept.startswith(paths.code_dir + "/")
        assert not kept.startswith(paths.releases_dir + "/")


def test_venv_is_keyed_by_dependency_hash_and_python() -> None:
    paths = AppPaths(app_name="ledger", app_user="ledger")
    assert paths.venv_dir("abc123", "3.11") == "/home/ledger/apps/ledger/shared/venv-abc123-py3.11"


def test_system_paths_are_named_after_the_project() -> None:
    paths = AppPaths(app_name="ledger", app_user="web")
    assert paths.socket_path == "/run/ledger/ledger.sock"
    assert paths.nginx_site_available == "/etc/nginx/sites-available/ledger.conf"
    assert paths.nginx_site_enabled == "/etc/nginx/sites-enabled/ledger.conf"
    assert paths.nginx_upstream == "/etc/nginx/sites-available/ledger-upstream.conf"
    assert paths.state_file == "/home/web/apps/ledger/.djaploy/state.json"


def test_each_strategy_runs_its_service_from_its_own_code_link() -> None:
    paths = AppPaths(app_name="ledger", app_user="web")
    in_place = paths.service_for("in_place")
    assert (in_place.service, in_place.socket_unit) == ("ledger.service", "ledger.socket")
    assert in_place.code_link == "/home/web/apps/ledger/code"
    assert in_place.env_file == "/home/web/apps/ledger/code/.djaploy-env"
    lane = paths.service_for("zero_downtime", "b")
    assert (lane.service, lane.socket_unit) == ("ledger-b.service", "ledger-b.socket")
    assert lane.socket_path == "/run/ledger-b/ledger.sock" and lane.code_link == "/home/web/apps/ledger/current"
    assert lane.venv_link == "/home/web/apps/ledger/current/.djaploy-venv"
    legacy = paths.service_for("zero_downtime")  # the single service of djaploy before lanes
    assert legacy.service == "ledger.service" and legacy.code_link == "/home/web/apps/ledger/current"
    assert paths.service_on("/run/ledger-b/ledger.sock") == lane
    assert paths.service_on("/run/ledger/ledger.sock").name == "ledger" and paths.service_on("/elsewhere") is None
    green = paths.service_for("bluegreen", "green")
    assert green.service_path == "/etc/systemd/system/ledger-green.service"
    assert green.socket_path == "/run/ledger-green/ledger.sock"
    assert green.code_link == "/home/web/apps/ledger/slots/green"
    assert [s.name for s in paths.all_services()] == ["ledger", "ledger-a", "ledger-b", "ledger-blue", "ledger-green"]


def test_bluegreen_needs_a_slot() -> None:
    import pytest

    with pytest.raises(ValueError, match="slot"):
        AppPaths(app_name="ledger", app_user="web").service_for("bluegreen")


def test_project_subdir_for_nested_and_flat_layouts() -> None:
    assert project_subdir("/srv/code", "manage.py") == "/srv/code"
    assert project_subdir("/srv/code", "src/site/manage.py") == "/srv/code/src/site"
