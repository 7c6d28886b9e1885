from pathlib import Path
from types import SimpleNamespace

from djaploy.context import HostContext
from djaploy.modules.nginx import nginx_site
from djaploy.modules.systemd import gunicorn_socket, gunicorn_unit
from djaploy.project import Project


def _ctx(domains=("shop.example.com", "www.shop.example.com")) -> HostContext:
    target = SimpleNamespace(
        modules=("djaploy.modules.nginx",),
        name="web1", project_name="shop", app_name="shop", app_user="shop", domains=tuple(domains), python_version="3.11",
        gunicorn_workers=3, wsgi_application=None, module_options={}, env_vars={}, secrets={"SHOP_KEY": "s3cr3t-value"},
        health_check_path="/health/", services=(),
    )
    project = Project(git_root=Path("/x"), manage_py="src/manage.py", wsgi_application="shop.wsgi:application")
    release = SimpleNamespace(name="v1", dependency_hash="abc123")
    return HostContext(env="production", target=target, plan=None, project=project, release=release,
                       code_dir="/home/shop/apps/shop/code")


def test_gunicorn_unit_runs_the_release_as_the_app_user_on_a_socket() -> None:
    ctx = _ctx()
    unit = gunicorn_unit(ctx, ctx.paths.service_for("zero_downtime"))
    assert "Type=notify" in unit
    assert "User=shop" in unit
    assert "Requires=shop.socket" in unit
    assert "WorkingDirectory=/home/shop/apps/shop/current/src" in unit
    assert "EnvironmentFile=/home/shop/apps/shop/current/.djaploy-env" in unit
    assert (
        "ExecStart=/home/shop/apps/shop/current/.djaploy-venv/bin/gunicorn shop.wsgi:application "
        "--bind unix:/run/shop/shop.sock --workers 3" in unit
    )
    assert "KillSignal=SIGTERM" in unit  # gunicorn's graceful stop


def test_socket_unit_holds_the_listening_socket() -> None:
    ctx = _ctx()
    socket = gunicorn_socket(ctx, ctx.paths.service_for("bluegreen", "blue"))
    assert "ListenStream=/run/shop-blue/shop.sock" in socket
    assert "SocketUser=shop" in socket


def test_units_do_not_change_between_releases() -> None:
    first, second = _ctx(), _ctx()
    second.release = SimpleNamespace(name="v2", dependency_hash="def456")
    service = first.paths.service_for("zero_downtime")
    assert gunicorn_unit(first, service) == gunicorn_unit(second, service)


def test_units_hold_no_secrets() -> None:
    ctx = _ctx()
    for service in ctx.paths.all_services():
        for text in (gunicorn_unit(ctx, service), gunicorn_socket(ctx, service)):
            assert "s3cr3t-value" not in text and "SHOP_KEY" not in text  # secrets only via the env file


def test_nginx_site_serves_domains_static_media_and_proxies_to_the_socket() -> None:
    site = nginx_site(_ctx())
    assert "server_name shop.example.com www.shop.example.com;" in site
    assert "alias /home/shop/apps/shop/shared/staticfiles/;" in site
    assert "alias /home/shop/apps/shop/shared/media/;" in site
    assert "include /etc/nginx/sites-available/shop-upstream.conf;" in site
    assert "proxy_set_header Host $host;" in site
    assert "default_server" not in site


def test_nginx_upstream_is_the_live_link() -> None:
    from djaploy.modules.nginx import nginx_upstream

    upstream = nginx_upstream(_ctx())
    assert "upstream shop_app {" in upstream and "server unix:/home/shop/apps/shop/live.sock" in upstream


def test_nginx_site_without_domains_is_the_default_server() -> None:
    site = nginx_site(_ctx(domains=()))
    assert "listen 80 default_server;" in site
    assert "server_name _;" in site


def test_the_site_does_not_change_with_the_environment_name() -> None:
    """A changed site means an nginx reload, which closes idle keep-alive connections: the
    environment's name alone must never cause one."""
    staging, production = _ctx(), _ctx()
    production.env = "production"
    staging.env = "staging"
    assert nginx_site(staging) == nginx_site(production)
