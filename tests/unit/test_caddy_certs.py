"""caddy and certs: rendered Caddyfile and nginx HTTPS site, option checks, certbot commands,
certificate listings and the re-issue decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from djaploy.config import DjaployConfig
from djaploy.configured_modules import check_configured_modules
from djaploy.context import HostContext
from djaploy.errors import ConfigError
from djaploy.modules import caddy, certs, nginx
from djaploy.modules.certs.certificates import (
    Certificate,
    caddy_listing,
    certbot_listing,
    issue_reason,
    parse_certificates,
)
from djaploy.modules.certs.commands import certonly_command, renew_command
from djaploy.modules.certs.options import (
    LETSENCRYPT,
    LETSENCRYPT_STAGING,
    CertsOptions,
    certs_options,
)

NGINX_CERTS = ("djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.certs", "djaploy.modules.systemd")
CADDY = ("djaploy.modules.core", "djaploy.modules.caddy", "djaploy.modules.systemd")
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
NOW = datetime(2030, 1, 10, tzinfo=UTC)


def target(domains: tuple[str, ...] = ("shop.example.com",), modules: tuple[str, ...] = NGINX_CERTS,
           **options: dict[str, Any]) -> Any:
    return SimpleNamespace(name="web1", project_name="shop", app_name="shop", app_user="shop", domains=domains, modules=modules,
                           module_options=options, source_file="infra/inventory/production.py")


def ctx_for(t: Any) -> HostContext:
    return HostContext(env="production", target=t, plan=None)


def option_error(build: Any, *args: Any) -> str:
    with pytest.raises(ConfigError) as info:
        build(*args)
    return str(info.value)


# --- caddy ------------------------------------------------------------------------------------


def test_caddy_site_proxies_to_the_live_link_without_pooled_connections_and_serves_files() -> None:
    site = caddy.caddy_site(ctx_for(target(modules=CADDY)), caddy.CaddyOptions())
    assert "reverse_proxy unix//home/shop/apps/shop/live.sock {" in site
    assert "keepalive off" in site  # a pooled connection would outlive a bluegreen switch
    assert "handle_path /static/* {\n\t\troot * /home/shop/apps/shop/shared/staticfiles\n" in site
    assert "handle_path /media/* {\n\t\troot * /home/shop/apps/shop/shared/media\n" in site
    assert "\nshop.example.com {\n\timport djaploy_shop\n}" in site  # automatic HTTPS, Caddy's default CA
    assert "http://" not in site and "tls" not in site


def test_caddy_site_with_a_custom_acme_server_and_root_and_plain_http_for_ip_addresses() -> None:
    options = caddy.CaddyOptions(email="ops@shop.example.com", acme_ca="https://10.0.0.1:14000/dir", acme_ca_root_pem=CA_PEM)
    site = caddy.caddy_site(ctx_for(target(("shop.example.com", "www.shop.example.com", "203.0.113.10"), CADDY)), options)
    assert (
        "shop.example.com, www.shop.example.com {\n"
        "\ttls ops@shop.example.com {\n"
        "\t\tca https://10.0.0.1:14000/dir\n"
        "\t\tca_root /etc/caddy/djaploy/shop-acme-ca.pem\n"
        "\t}\n"
        "\timport djaploy_shop\n}"
    ) in site
    assert "http://203.0.113.10 {\n\timport djaploy_shop\n}" in site


def test_caddy_tls_directive_with_only_an_email_or_only_a_ca() -> None:
    ctx = ctx_for(target(modules=CADDY))
    assert "\ttls ops@shop.example.com\n\timport djaploy_shop\n" in caddy.caddy_site(ctx, caddy.CaddyOptions(email="ops@shop.example.com"))
    only_ca = caddy.caddy_site(ctx, caddy.CaddyOptions(acme_ca="https://ca.example/dir"))
    assert "\ttls {\n\t\tca https://ca.example/dir\n\t}\n\timport djaploy_shop\n" in only_ca and "ca_root" not in only_ca


def test_caddy_site_with_https_off_or_without_domains_is_plain_http() -> None:
    off = caddy.caddy_site(ctx_for(target(("shop.example.com",), CADDY)), caddy.CaddyOptions(https=False))
    assert "http://shop.example.com {" in off and "tls" not in off
    anywhere = caddy.caddy_site(ctx_for(target((), CADDY)), caddy.CaddyOptions())
    assert ":80 {\n\timport djaploy_shop\n}" in anywhere


def test_caddyfile_imports_every_djaploy_site() -> None:
    assert "import /etc/caddy/djaploy/*.caddy" in caddy.caddyfile(ctx_for(target(modules=CADDY)))


def test_caddy_options_are_checked(tmp_path: Path) -> None:
    def options(**raw: Any) -> caddy.CaddyOptions:
        return caddy.caddy_options(target(modules=CADDY, caddy=raw), tmp_path)

    assert options() == caddy.CaddyOptions()
    message = option_error(lambda: options(acme_url="https://x/dir"))
    assert "module_options['caddy']['acme_url']" in message and "did you mean 'acme_ca'" in message
    assert "host web1" in message and "config.py" in message
    assert "ACME directory URL" in option_error(lambda: options(acme_ca="ftp://x/dir"))
    assert "set acme_ca too" in option_error(lambda: options(acme_ca_root=CA_PEM))
    assert "expected True or False" in option_error(lambda: options(https="yes"))
    assert "expected an email" in option_error(lambda: options(email="ops"))
    assert "is not a file" in option_error(lambda: options(acme_ca="https://x/dir", acme_ca_root="missing.pem"))
    (tmp_path / "ca.pem").write_text(CA_PEM)
    assert options(acme_ca="https://x/dir", acme_ca_root="ca.pem").acme_ca_root_pem == CA_PEM  # relative to infra/


def test_caddy_refuses_wildcards_with_https() -> None:
    with pytest.raises(ConfigError, match="DNS-01"):
        caddy.caddy_options(target(("*.shop.example.com",), CADDY), None)
    assert caddy.caddy_options(target(("*.shop.example.com",), CADDY, caddy={"https": False}), None).https is False


def test_a_ca_file_holding_a_private_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bundle.pem").write_text(CA_PEM + "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    message = option_error(certs_options, target(certs={"ca_bundle": "bundle.pem"}), tmp_path)
    assert "private key" in message and "module_options['certs']['ca_bundle']" in message
    (tmp_path / "not.pem").write_text("hello")
    assert "no PEM certificate" in option_error(certs_options, target(certs={"ca_bundle": "not.pem"}), tmp_path)


@pytest.mark.parametrize("modules", [
    ["djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.caddy"],
    ["djaploy.modules.core", "djaploy.modules.caddy", "djaploy.modules.certs"],
])
def test_caddy_conflicts_with_nginx_and_certs(modules: list[str]) -> None:
    with pytest.raises(ConfigError, match="cannot be combined"):
        check_configured_modules(DjaployConfig(project_name="shop", modules=modules))


# --- certs options ----------------------------------------------------------------------------


def test_certs_defaults_to_lets_encrypt_and_the_hosts_domains() -> None:
    options = certs_options(target(("shop.example.com", "www.shop.example.com")), None)
    assert options == CertsOptions(server=LETSENCRYPT, email=None,
                                         domains=("shop.example.com", "www.shop.example.com"), ca_pem=None)
    assert certs_options(target(certs={"staging": True}), None).server == LETSENCRYPT_STAGING
    custom = certs_options(target(certs={"acme_server": "https://10.0.0.1:14000/dir", "ca_bundle": CA_PEM,
                                               "email": "ops@shop.example.com", "domains": ["a.example.com"]}), None)
    assert (custom.server, custom.ca_pem, custom.email, custom.domains) == (
        "https://10.0.0.1:14000/dir", CA_PEM, "ops@shop.example.com", ("a.example.com",))
    # Options may also be keyed by the module's dotted path.
    assert certs_options(target(**{"djaploy.modules.certs": {"staging": True}}), None).server == LETSENCRYPT_STAGING


@pytest.mark.parametrize(("domains", "options", "expected"), [
    ((), {}, "a certificate needs domains"),
    (("203.0.113.10",), {}, "is an IP address"),
    (("*.shop.example.com",), {}, "wildcard"),
    (("shop.example.com",), {"staging": True, "acme_server": "https://x/dir"}, "not both"),
    (("shop.example.com",), {"staging": "yes"}, "expected True or False"),
    (("shop.example.com",), {"emial": "ops@x.com"}, "did you mean 'email'"),
    (("shop.example.com",), {"domains": "shop.example.com"}, "expected a list"),
    (("shop.example.com",), {"domains": ["a.example.com", "a.example.com"]}, "listed twice"),
    (("shop.example.com",), {"email": "not an email"}, "expected an email"),
])
def test_certs_options_are_checked(domains: tuple[str, ...], options: dict[str, Any], expected: str) -> None:
    message = option_error(certs_options, target(domains, certs=options), None)
    assert expected in message and "module_options['certs']" in message and "host web1" in message


def test_certs_needs_nginx_listed_before_it() -> None:
    before = ("djaploy.modules.core", "djaploy.modules.certs", "djaploy.modules.nginx")
    with pytest.raises(ConfigError, match="list 'djaploy.modules.nginx' before"):
        certs.Module().check_target(target(modules=before), None)
    with pytest.raises(ConfigError, match="through nginx"):
        certs.Module().check_target(target(modules=("djaploy.modules.core", "djaploy.modules.certs")), None)
    certs.Module().check_target(target(), None)  # the right order passes


# --- nginx with certs ---------------------------------------------------------------------------


def test_nginx_site_before_the_certificate_serves_the_app_and_the_acme_webroot() -> None:
    site = nginx.nginx_site(ctx_for(target()))
    assert "location ^~ /.well-known/acme-challenge/ {\n        root /var/www/djaploy-acme/shop;" in site
    assert "listen 443" not in site and "return 301" not in site
    assert "proxy_pass http://shop_app;" in site


def test_nginx_site_with_the_certificate_serves_https_and_redirects_http_except_acme() -> None:
    tls = nginx.Tls("/etc/letsencrypt/live/shop/fullchain.pem", "/etc/letsencrypt/live/shop/privkey.pem")
    site = nginx.nginx_site(ctx_for(target(("shop.example.com", "www.shop.example.com"))), tls)
    http, https = site.split("\nserver {")[1:]
    assert "listen 80;" in http and "server_name shop.example.com www.shop.example.com;" in http
    assert http.index("/.well-known/acme-challenge/") < http.index("return 301 https://$host$request_uri;")
    assert "proxy_pass" not in http
    assert "listen 443 ssl http2;" in https and "listen [::]:443 ssl http2;" in https
    assert "server_name shop.example.com www.shop.example.com;" in https
    assert "ssl_certificate /etc/letsencrypt/live/shop/fullchain.pem;" in https
    assert "ssl_certificate_key /etc/letsencrypt/live/shop/privkey.pem;" in https
    assert "alias /home/shop/apps/shop/shared/staticfiles/;" in https and "proxy_pass http://shop_app;" in https
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in https


def test_nginx_site_without_the_certs_module_has_no_acme_location() -> None:
    site = nginx.nginx_site(ctx_for(target(modules=("djaploy.modules.core", "djaploy.modules.nginx"))))
    assert "acme-challenge" not in site and "listen 443" not in site


# --- certbot commands -------------------------------------------------------------------------


def test_certonly_command_names_server_domains_webroot_and_bypasses_the_proxy_for_acme() -> None:
    options = CertsOptions("https://10.0.0.1:14000/dir", "ops@shop.example.com", ("shop.example.com", "www.shop.example.com"), None)
    command = certonly_command(ctx_for(target()).paths, options)
    assert command.startswith('NO_PROXY="${NO_PROXY:+$NO_PROXY,}"10.0.0.1 no_proxy="${no_proxy:+$no_proxy,}"10.0.0.1 certbot certonly ')
    assert "--webroot -w /var/www/djaploy-acme/shop --cert-name shop -d shop.example.com -d www.shop.example.com" in command
    assert "--server https://10.0.0.1:14000/dir --agree-tos -m ops@shop.example.com --no-eff-email --non-interactive" in command
    assert command.endswith("--force-renewal")
    anonymous = certonly_command(ctx_for(target()).paths, CertsOptions(LETSENCRYPT, None, ("a.example.com",), None))
    assert "--register-unsafely-without-email" in anonymous and " -m " not in anonymous
    assert "acme-v02.api.letsencrypt.org" in anonymous


def test_renew_command_never_sleeps_and_always_names_the_server() -> None:
    options = CertsOptions(LETSENCRYPT_STAGING, None, ("shop.example.com",), None)
    paths = ctx_for(target()).paths
    command = renew_command(paths, options, force=False)
    assert "certbot renew --cert-name shop --server https://acme-staging-v02.api.letsencrypt.org/directory" in command
    assert "--no-random-sleep-on-renew" in command and "--force-renewal" not in command
    assert renew_command(paths, options, force=True).endswith("--force-renewal")


# --- certificates on the host -----------------------------------------------------------------

LISTING = """\
@@cert shop
notAfter=Jan 17 04:18:39 2030 GMT
serial=136B593B75D1E708
X509v3 Subject Alternative Name: 
    DNS:shop.example.com, DNS:www.shop.example.com
@@server https://10.0.0.1:14000/dir
@@cert other
notAfter=Feb  3 00:00:00 2029 GMT
serial=01
X509v3 Subject Alternative Name: critical
    DNS:other.example.com, IP Address:203.0.113.10
"""


def test_parse_certificates_reads_domains_expiry_serial_and_server() -> None:
    shop, other = parse_certificates(LISTING, "certbot")
    assert shop == Certificate("shop", "certbot", ("shop.example.com", "www.shop.example.com"),
                                     datetime(2030, 1, 17, 4, 18, 39, tzinfo=UTC), "136B593B75D1E708",
                                     "https://10.0.0.1:14000/dir")
    assert other.domains == ("other.example.com",) and other.server == ""
    assert other.expires == datetime(2029, 2, 3, tzinfo=UTC)
    assert shop.describe(NOW) == "shop (certbot): shop.example.com, www.shop.example.com; expires 2030-01-17 04:18 UTC (in 7 days)"
    assert other.describe(NOW).endswith("EXPIRED 2029-02-03 00:00 UTC")
    assert parse_certificates("", "caddy") == []


def test_listings_read_only_public_summaries() -> None:
    paths = ctx_for(target()).paths
    for listing in (certbot_listing(paths), caddy_listing(paths)):
        assert "openssl x509" in listing and "-noout" in listing and "privkey" not in listing and ".key" not in listing


def test_a_valid_certificate_covering_the_domains_is_kept() -> None:
    options = CertsOptions("https://10.0.0.1:14000/dir", None, ("www.shop.example.com", "shop.example.com"), None)
    current = parse_certificates(LISTING, "certbot")[0]
    assert issue_reason(current, options, NOW) is None
    assert issue_reason(None, options, NOW) == "no certificate yet"
    assert "domains changed" in issue_reason(current, options.__class__(options.server, None, ("shop.example.com",), None), NOW)
    assert "another ACME server" in issue_reason(current, CertsOptions(LETSENCRYPT, None, options.domains, None), NOW)
    assert issue_reason(current, options, NOW + timedelta(days=8)) == "the certificate has expired"


def test_certificate_and_hook_paths() -> None:
    paths = ctx_for(target()).paths
    assert paths.cert_fullchain == "/etc/letsencrypt/live/shop/fullchain.pem"
    assert paths.cert_privkey == "/etc/letsencrypt/live/shop/privkey.pem"
    assert paths.certbot_deploy_hook == "/etc/letsencrypt/renewal-hooks/deploy/djaploy-reload-nginx"
    assert paths.acme_ca_bundle.startswith("/usr/local/share/ca-certificates/") and paths.acme_ca_bundle.endswith(".crt")
    assert paths.caddy_site == "/etc/caddy/djaploy/shop.caddy"


def test_deploy_hook_validates_before_reloading() -> None:
    from djaploy.render import render

    hook = render("certs_deploy_hook.sh.j2")
    assert hook.startswith("#!/bin/sh\n") and "set -e" in hook
    assert hook.index("nginx -t") < hook.index("systemctl reload nginx")


def test_site_urls_say_https_where_the_host_serves_it() -> None:
    from djaploy.session import site_urls

    both = ("shop.example.com", "203.0.113.10")
    certified = target(both, certs={"domains": ["shop.example.com"]})
    assert site_urls(SimpleNamespace(**vars(certified), ssh_host="203.0.113.10")) == [
        "https://shop.example.com/", "http://203.0.113.10/"]
    assert site_urls(SimpleNamespace(**vars(target(both, CADDY)), ssh_host="203.0.113.10")) == [
        "https://shop.example.com/", "http://203.0.113.10/"]
    off = target(both, CADDY, caddy={"https": False})
    assert site_urls(SimpleNamespace(**vars(off), ssh_host="x")) == ["http://shop.example.com/", "http://203.0.113.10/"]
    plain = target((), ("djaploy.modules.core", "djaploy.modules.nginx"))
    assert site_urls(SimpleNamespace(**vars(plain), ssh_host="203.0.113.10")) == ["http://203.0.113.10/"]
