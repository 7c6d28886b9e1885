"""djaploy's Django system checks: the local part of `manage.py verify`, run by `manage.py check --deploy`.

Registered in DjaployAppConfig.ready() as deployment checks with the tag "djaploy" (`manage.py check --deploy --tag djaploy`): they never block runserver or migrate.
The ids are listed in djaploy.verify. No SSH here, and no secrets needed: a secret whose variable
is not set in this shell is replaced by a placeholder (deploy and verify still require it).
Without an infra folder the checks say nothing: the app may be installed before any deployment
is set up. Silence one with SILENCED_SYSTEM_CHECKS = ["djaploy.W004"].
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

if TYPE_CHECKING:  # imported when the checks run, so starting Django stays fast
    from djaploy.verify.findings import Finding

LEVELS = {"error": checks.Error, "warning": checks.Warning, "info": checks.Info}


def configured_dir() -> Path | None:
    """The infra folder the commands use, or None when the settings name none."""
    from django.core.management.base import CommandError

    from djaploy.management.commands._common import config_dir

    try:
        return config_dir()
    except CommandError:
        return None


def as_message(finding: Finding) -> checks.CheckMessage:
    return LEVELS[finding.level](finding.text(), hint=finding.hint, id=f"djaploy.{finding.id}")


def local_secret_key() -> str | None:
    """The SECRET_KEY of these (local, not deployed) settings, to spot one that never changes."""
    if os.environ.get("DJAPLOY_ENV"):
        return None
    try:
        return str(settings.SECRET_KEY)
    except Exception:  # noqa: BLE001 - an empty SECRET_KEY raises; Django's own checks report it
        return None


def djaploy_checks(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Config, inventories, project and the settings as each host would run them."""
    if app_configs is not None and not any(config.name == "djaploy" for config in app_configs):
        return []
    directory = configured_dir()
    if directory is None or not directory.is_dir():
        if getattr(settings, "DJAPLOY_CONFIG_DIR", None):
            return [checks.Warning(f"DJAPLOY_CONFIG_DIR is {directory}, which does not exist",
                                   hint="create the infra folder there (config.py, inventory/<env>.py) or fix the setting",
                                   id="djaploy.W001")]
        return []
    from djaploy.inventory import load_targets_without_secrets
    from djaploy.verify import Options, verify

    options = Options(load=load_targets_without_secrets, local_secret_key=local_secret_key(),
                      wsgi_setting=getattr(settings, "WSGI_APPLICATION", None))
    return [as_message(finding) for finding in verify(directory, options).findings]
