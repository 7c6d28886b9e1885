from pathlib import Path
from types import SimpleNamespace

from djaploy.context import HostContext
from djaploy.modules.nginx import nginx_site
from djaploy.modules.systemd import gunicorn_unit
from djaploy.project import Project


def _ctx(domains=("shop.example.com", "www.shop.example.com")) -> HostContext:
    target = SimpleNamespace(
        name="web1", project_name="shop", app_user="shop", domains=tuple(domains), python_version="3.11",
        gunicorn_workers=3, wsgi_application=None, module_options={}, env_vars={}, secrets={"SHOP_KEY": "s3cr3t-value"},
        health_check_path="/health/", services=(),
    )
    project = Project(git_root=Path("/x"), manage_py="src/manage.py", requirements="requirements.txt",
                      wsgi_application="shop.wsgi:application")
    release = SimpleNamespace(name="v1", dependency_hash="abc123")
    return HostContext(env="production", target=target, plan=None, project=project, release=release,
                       code_dir="/home/shop/apps/shop/code")


def test_gunicorn_unit_runs_the_release_as_the_app_user_on_a_socket() -> None:
    unit = gunicorn_unit(_ctx())
    assert "Type=notify" in unit
    assert "User=shop" in unit
    assert "WorkingDirectory=/home/shop/apps/shop/code/src" in unit
    assert "EnvironmentFile=/home/shop/apps/shop/shared/env" in unit
    assert (
        "ExecStart=/home/shop/apps/shop/shared/venv-abc123-py3.11/bin/gunicorn shop.wsgi:application "
        "--bind unix:/run/shop/shop.sock --workers 3" in unit
    )
    assert "RuntimeDirectory=shop" in unit
    assert "s3cr3t-value" not in unit and "SHOP_KEY" not in unit  # secrets only via the env file


def test_nginx_site_serves_domains_static_media_and_proxies_to_the_socket() -> None:
    site = nginx_site(_ctx())
    assert "server_name shop.example.com www.shop.example.com;" in site
    assert "alias /home/shop/apps/shop/shared/staticfiles/;" in site
    assert "alias /home/shop/apps/shop/shared/media/;" in site
    assert "server unix:/run/shop/shop.sock" in site
    assert "proxy_set_header Host $host;" in site
    assert "default_server" not in site


def test_nginx_site_without_domains_is_the_default_server() -> None:
    site = nginx_site(_ctx(domains=()))
    assert "listen 80 default_server;" in site
    assert "server_name _;" in site
