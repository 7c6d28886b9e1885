"""Settings for the ledger project.

On a server, djaploy passes the deployment to the app through environment
variables (DJAPLOY_ENV, DJAPLOY_RELEASE, DJAPLOY_STATIC_ROOT, DJAPLOY_MEDIA_ROOT,
DJAPLOY_DATA_DIR) plus the project's own env vars and secrets (DJANGO_*).
Locally none of them is set, and the defaults below give a working
development setup (``manage.py runserver``).
"""

import importlib.util
import os
from pathlib import Path

import django
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# Set by djaploy on every deployed host (e.g. "production"); absent locally.
DJAPLOY_ENV = os.environ.get("DJAPLOY_ENV", "")
DEPLOYED = bool(DJAPLOY_ENV)
# Name of the release being served, shown on the home page.
RELEASE = os.environ.get("DJAPLOY_RELEASE", "dev")

if DEPLOYED:
    try:
        SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
    except KeyError:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is not set (DJAPLOY_ENV={DJAPLOY_ENV!r}). "
            "A deployed ledger needs a secret key: define it in the djaploy "
            "config's `secrets`."
        ) from None
else:
    SECRET_KEY = os.environ.get(
        "DJANGO_SECRET_KEY", "django-insecure-dev-only-key-do-not-use-in-production"
    )

DEBUG = os.environ.get("DJANGO_DEBUG", "0" if DEPLOYED else "1") == "1"

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get(
        "DJANGO_ALLOWED_HOSTS", "" if DEPLOYED else "localhost,127.0.0.1"
    ).split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "entries",
]

# djaploy is a deploy-time tool: it runs on the developer's machine (or CI) and
# is listed in neither requirements.txt nor the server's virtualenv. Add it only
# where it is installed, so its management commands are available locally while
# the deployed app never imports it.
if importlib.util.find_spec("djaploy") is not None:
    INSTALLED_APPS.append("djaploy")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ledger.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
            ],
        },
    },
]

WSGI_APPLICATION = "ledger.wsgi.application"

# SQLite, in the data directory djaploy keeps across releases.
DATA_DIR = Path(os.environ.get("DJAPLOY_DATA_DIR", BASE_DIR))

# Let several gunicorn workers share the database: wait up to 20 s for a lock;
# on Django >= 5.1 also use WAL (readers don't block the writer) and take the
# write lock when a transaction begins, so it never fails halfway through.
SQLITE_OPTIONS = {"timeout": 20}
if django.VERSION >= (5, 1):
    SQLITE_OPTIONS.update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        }
    )

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
        "OPTIONS": SQLITE_OPTIONS,
    }
}

# With djaploy.modules.postgres, every host gets DATABASE_URL (PostgreSQL on the
# environment's db host); then `psycopg[binary]` and `dj-database-url` must be in
# requirements.txt. Without it, the SQLite database above.
if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES["default"] = dj_database_url.config(conn_max_age=600, conn_health_checks=True)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("DJAPLOY_STATIC_ROOT", BASE_DIR / "staticfiles"))

MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("DJAPLOY_MEDIA_ROOT", BASE_DIR / "media"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
