"""The settings init adds: a production block guarded by DJAPLOY_ENV, and djaploy in INSTALLED_APPS
where it is installed. Pure text in, text out; what the settings already have is never added again."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MARKER = "# djaploy: production settings,"
APP_MARKER = "# djaploy: its commands where it is installed"


def _mentions(*words: str) -> Callable[[str], bool]:
    return lambda text: any(word in text for word in words)


def _assigns(name: str, also: str = "") -> Callable[[str], bool]:
    """`NAME = ...` at the top level (with `also` on the same line, when given)."""
    pattern = re.compile(rf"^{name}\s*=.*{re.escape(also)}", re.MULTILINE)
    return lambda text: bool(pattern.search(text))


@dataclass(frozen=True)
class Part:
    """One setting of the production block, skipped when `present(settings text)`."""

    lines: str
    present: Callable[[str], bool]


PRODUCTION_PARTS = (
    Part("DEBUG = False", _assigns("DEBUG", "environ")),
    Part('SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]  # from config.py\'s secrets', _mentions("DJANGO_SECRET_KEY")),
    Part('ALLOWED_HOSTS = [host for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host]',
         _mentions("DJANGO_ALLOWED_HOSTS")),
    Part('CSRF_TRUSTED_ORIGINS = [origin for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", ",".join(\n'
         '        f"https://{host.lstrip(\'.\')}" for host in ALLOWED_HOSTS if host != "*")).split(",") if origin]',
         _assigns("CSRF_TRUSTED_ORIGINS")),
    Part('STATIC_ROOT = os.environ["DJAPLOY_STATIC_ROOT"]  # the folder the web server serves /static/ from',
         _mentions("DJAPLOY_STATIC_ROOT")),
    Part('MEDIA_ROOT = os.environ["DJAPLOY_MEDIA_ROOT"]  # kept across releases', _mentions("DJAPLOY_MEDIA_ROOT")),
    Part('if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # in the data folder kept across releases\n'
         '        DATABASES["default"]["NAME"] = os.path.join(os.environ["DJAPLOY_DATA_DIR"], "db.sqlite3")',
         _mentions("DJAPLOY_DATA_DIR")),
    Part('SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # the web server in front sets it',
         _assigns("SECURE_PROXY_SSL_HEADER")),
)

_IMPORT_OS = re.compile(r"^import os\b", re.MULTILINE)
_DJAPLOY_APP = re.compile(r"""find_spec\(\s*["']djaploy["']\s*\)|["']djaploy["']""")


def production_block(text: str) -> str:
    """The guarded block for what `text` lacks ("" when it has it all, or has the block already)."""
    if MARKER in text:
        return ""
    missing = [part.lines for part in PRODUCTION_PARTS if not part.present(text)]
    if not missing:
        return ""
    body = "\n".join(f"    {lines}" for lines in missing)
    imports = "" if _IMPORT_OS.search(text) else "import os\n\n"
    return (f"\n\n{MARKER} only on a host djaploy deploys to (it sets DJAPLOY_ENV there);\n"
            f"# locally the settings above apply unchanged.\n{imports}"
            f'if os.environ.get("DJAPLOY_ENV"):\n{body}\n')


def installed_app_block(text: str) -> str:
    """djaploy in INSTALLED_APPS only where it is importable ("" when the settings name djaploy already)."""
    if _DJAPLOY_APP.search(text):
        return ""
    return (f"\n\n{APP_MARKER} (your machine), not on the servers (they do not install it).\n"
            "import importlib.util\n\n"
            'if importlib.util.find_spec("djaploy") is not None:\n'
            '    INSTALLED_APPS = [*INSTALLED_APPS, "djaploy"]\n')


def with_djaploy_settings(text: str) -> str:
    """`text` with what it lacks appended; the same text again when nothing is missing (idempotent)."""
    added = production_block(text) + installed_app_block(text)
    if not added:
        return text
    return text.rstrip("\n") + "\n" + added
