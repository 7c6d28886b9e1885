"""What verify reports, and the pure checks that produce it from values already read (unit tested):
settings as deployed, the project's dependencies."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from djaploy.config import Target
from djaploy.layout import AppPaths


@dataclass(frozen=True)
class Finding:
    """One problem: its check id (E001, W003...), where, what is wrong, and how to fix it."""

    id: str
    where: str
    message: str
    hint: str

    @property
    def level(self) -> str:
        return {"E": "error", "W": "warning"}.get(self.id[0], "info")

    def text(self) -> str:
        return f"[{self.where}] {self.message}" if self.where else self.message


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)  # what was checked and is fine, for the reader
    resolved: list[str] = field(default_factory=list)  # what each host resolves to (verify --verbose)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]


def host_allowed(domain: str, allowed_hosts: Sequence[str]) -> bool:
    """Would Django accept requests for `domain`? Its own validate_host ("*", ".example.com", exact)."""
    from django.http.request import validate_host

    return validate_host(domain.lower().rstrip("."), list(allowed_hosts))


def served_names(target: Target) -> tuple[str, ...]:
    """The Host headers the app gets: its domains; without any, the health check's "localhost"."""
    return target.domains or ("localhost",)


def _same_path(value: str | None, expected: str) -> bool:
    return bool(value) and posixpath.normpath(str(value)) == posixpath.normpath(expected)


@dataclass(frozen=True)
class Expected:
    """What the host gives the app, to compare the settings against."""

    env: str
    paths: AppPaths
    domains: tuple[str, ...]
    secret_names: frozenset[str]  # the host's `secrets` keys
    env_var_names: frozenset[str]  # the host's `env_vars` keys
    web_hosts: int = 1  # web hosts of the environment: uploads on one are invisible on the others
    database_url: bool = False  # a module (postgres) gives the app DATABASE_URL


def settings_findings(values: Mapping[str, Any], expected: Expected, where: str, *,
                      matches_local_key: bool | None) -> list[Finding]:
    """Findings for settings values read as deployed (keys: see djaploy/probes/settings_probe.py).

    `matches_local_key`: whether SECRET_KEY equals the value the settings give without
    DJAPLOY_ENV (None when that value is unknown).
    """
    env, paths = expected.env, expected.paths
    findings = []
    if values.get("DEBUG"):
        findings.append(Finding("E007", where, f"DEBUG is on with DJAPLOY_ENV={env}: error pages would show "
                                "your code and settings to anyone",
                                "turn DEBUG off when deployed, e.g. DEBUG = os.environ.get('DJANGO_DEBUG') == '1' "
                                "and do not set DJANGO_DEBUG=1 in env_vars"))
    static_root = values.get("STATIC_ROOT")
    if not _same_path(static_root, paths.static_root):
        findings.append(Finding("E005", where, f"STATIC_ROOT is {static_root!r} as deployed, but collectstatic must "
                                f"write where nginx serves /static/ from: {paths.static_root}",
                                "STATIC_ROOT = os.environ.get('DJAPLOY_STATIC_ROOT', BASE_DIR / 'staticfiles')"))
    allowed = list(values.get("ALLOWED_HOSTS") or [])
    for domain in expected.domains:
        if not host_allowed(domain, allowed):
            findings.append(Finding("E006", where, f"{domain} is not covered by ALLOWED_HOSTS {allowed} as deployed: "
                                    "Django would answer its requests (and the health check) with 400",
                                    f"add {domain!r} to ALLOWED_HOSTS, e.g. read it from an environment variable "
                                    f"set in the host's env_vars: env_vars={{'DJANGO_ALLOWED_HOSTS': {domain!r}}}"))
    if values.get("MEDIA_ROOT") is not None and not _same_path(values.get("MEDIA_ROOT"), paths.media_root):
        findings.append(Finding("W003", where, f"MEDIA_ROOT is {values.get('MEDIA_ROOT')!r} as deployed, not "
                                f"{paths.media_root}: uploads would not be served by nginx and could be lost with a release",
                                "MEDIA_ROOT = os.environ.get('DJAPLOY_MEDIA_ROOT', BASE_DIR / 'media')"))
    storage = str(values.get("MEDIA_STORAGE") or "")
    # Web hosts that each keep their own SQLite database are separate copies of the site: local media
    # matches their local data. Only hosts serving one shared database must share the media too.
    shares_data = "sqlite3" not in str(values.get("DEFAULT_ENGINE") or "")
    if expected.web_hosts > 1 and shares_data and storage.endswith("FileSystemStorage"):
        findings.append(Finding("W009", where, f"media files are stored on the local disk ({storage}) while {env} has "
                                f"{expected.web_hosts} web hosts: a file uploaded through one is missing on the others",
                                "store them in an S3-compatible bucket with django-storages: add 'django-storages[s3]' "
                                "to the requirements and set STORAGES = {'default': {'BACKEND': "
                                "'storages.backends.s3.S3Storage'}, 'staticfiles': {...}} with AWS_STORAGE_BUCKET_NAME, "
                                "AWS_S3_ENDPOINT_URL and the keys from secrets"))
    for name in values.get("SQLITE") or []:
        if not str(name).startswith(paths.data_dir.rstrip("/") + "/"):
            findings.append(Finding("W004", where, f"the SQLite database {name!r} is outside {paths.data_dir}: it "
                                    "lives in the release and is lost (or left behind) on the next deploy",
                                    "NAME = Path(os.environ.get('DJAPLOY_DATA_DIR', BASE_DIR)) / 'db.sqlite3'"))
    engine = str(values.get("DEFAULT_ENGINE") or "")
    if expected.database_url and "postgresql" not in engine:
        findings.append(Finding("E013", where, f"DATABASES['default'] is {engine or 'not set'} as deployed, although the "
                                "postgres module gives the app DATABASE_URL: every host would use a database of its own",
                                "read it in the settings (psycopg[binary] and dj-database-url in the requirements): "
                                "DATABASES = {'default': dj_database_url.config(conn_max_age=600, conn_health_checks=True)}"))
    findings += _secret_key_findings(values, expected, where, matches_local_key)
    return findings


def connection_findings(env: str, allowed: int, needed: int) -> list[Finding]:
    """PostgreSQL refuses connections past max_connections: the app must fit, with a margin."""
    if allowed >= needed:
        return []
    return [Finding("W008", env, f"PostgreSQL's max_connections is {allowed}, but the app can open {needed} at once "
                    "(gunicorn_workers on every web host, one per worker service, plus a margin): requests would "
                    "fail with 'too many clients' under load",
                    f"set module_options={{'postgres': {{'max_connections': {needed}}}}} (configureserver restarts "
                    "PostgreSQL), or lower gunicorn_workers")]


def _secret_key_findings(values: Mapping[str, Any], expected: Expected, where: str,
                         matches_local_key: bool | None) -> list[Finding]:
    sources = set(values.get("SECRET_KEY_FROM") or [])
    if sources & expected.secret_names:
        return []
    fix = ("read it from the environment (SECRET_KEY = os.environ['DJANGO_SECRET_KEY'] when DJAPLOY_ENV is set) "
           "and give it as a secret: secrets={'DJANGO_SECRET_KEY': 'env:MY_SECRET_KEY'}")
    if sources & expected.env_var_names:
        names = ", ".join(sorted(sources & expected.env_var_names))
        return [Finding("W005", where, f"SECRET_KEY comes from env_vars ({names}), which are written in the "
                        "repository", f"move {names} from env_vars to secrets, read from your environment")]
    if sources:
        return []  # a variable of the host environment we do not manage: still from the environment
    if matches_local_key:
        return [Finding("E008", where, f"SECRET_KEY with DJAPLOY_ENV={expected.env} is the same as without it: "
                        "a key written in the code, which anyone with the repository can use to forge sessions", fix)]
    return [Finding("W005", where, "SECRET_KEY as deployed is not the value of any variable djaploy gives the app; "
                    "if it is written in the settings, anyone with the repository can forge sessions", fix)]


def requirement_findings(names: set[str], source: str) -> list[Finding]:
    """gunicorn must be installed on the server; djaploy must not be."""
    findings = []
    if "gunicorn" not in names:
        findings.append(Finding("E003", "project", f"gunicorn is not among the dependencies ({source}), but the service "
                                "runs the app with the release's gunicorn", "add gunicorn to the dependencies, e.g. gunicorn>=22"))
    if "djaploy" in names:
        findings.append(Finding("W006", "project", f"djaploy is in the server dependencies ({source}); it runs on your machine only, "
                                "and would put pyinfra, gevent and paramiko (100+ MB) on every server",
                                "remove djaploy from them; add it to INSTALLED_APPS only where it is installed "
                                "(importlib.util.find_spec('djaploy'))"))
    return findings

