from djaploy.layout import AppPaths, project_subdir


def test_paths_live_under_the_app_users_home() -> None:
    paths = AppPaths(project_name="ledger", app_user="ledgerapp")
    assert paths.app_root == "/home/ledgerapp/apps/ledger"
    assert paths.env_file == "/home/ledgerapp/apps/ledger/shared/env"
    assert paths.data_dir == "/home/ledgerapp/apps/ledger/shared/data"
    assert paths.static_root == "/home/ledgerapp/apps/ledger/shared/staticfiles"
    assert paths.media_root == "/home/ledgerapp/apps/ledger/shared/media"
    assert paths.code_dir == "/home/ledgerapp/apps/ledger/code"
    assert paths.release_dir("v1.2") == "/home/ledgerapp/apps/ledger/releases/v1.2"
    assert paths.current == "/home/ledgerapp/apps/ledger/current"
    assert paths.upload_path("v1") == "/home/ledgerapp/apps/ledger/.djaploy/uploads/v1.tar.gz"
    assert paths.lock_dir == "/home/ledgerapp/apps/ledger/.djaploy/lock"


def test_data_media_and_static_are_outside_the_code() -> None:
    paths = AppPaths(project_name="ledger", app_user="ledger")
    for kept in (paths.data_dir, paths.media_root, paths.static_root, paths.env_file):
        assert not kept.startswith(paths.code_dir + "/")
        assert not kept.startswith(paths.releases_dir + "/")


def test_venv_is_keyed_by_dependency_hash_and_python() -> None:
    paths = AppPaths(project_name="ledger", app_user="ledger")
    assert paths.venv_dir("abc123", "3.11") == "/home/ledger/apps/ledger/shared/venv-abc123-py3.11"


def test_system_paths_are_named_after_the_project() -> None:
    paths = AppPaths(project_name="ledger", app_user="web")
    assert paths.service_name == "ledger.service"
    assert paths.unit_path == "/etc/systemd/system/ledger.service"
    assert paths.socket_path == "/run/ledger/ledger.sock"
    assert paths.nginx_site_available == "/etc/nginx/sites-available/ledger.conf"
    assert paths.nginx_site_enabled == "/etc/nginx/sites-enabled/ledger.conf"


def test_project_subdir_for_nested_and_flat_layouts() -> None:
    assert project_subdir("/srv/code", "manage.py") == "/srv/code"
    assert project_subdir("/srv/code", "src/site/manage.py") == "/srv/code/src/site"
