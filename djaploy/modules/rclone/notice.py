"""The failed-backup notice: whether the host sends one (the environment has Slack or a webhook
and notify_on_failure), and the settings file its program reads (failure_notice.py, installed
beside the backup program). The URLs and the secret are secrets: they go only into that file
(0600, root's: the failure unit runs as root, the app user never reads them) and out of output.
The user's own `notifiers` are Python on the deployer's machine: the host cannot call them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from importlib.resources import files
from urllib.parse import unquote, urlsplit

from djaploy.config import Target
from djaploy.context import HostContext
from djaploy.errors import ConfigError
from djaploy.modules.options import env_variable
from djaploy.modules.rclone.files import database_url
from djaploy.modules.rclone.options import Settings
from djaploy.release_settings import NotificationSettings

#: the notice program, sent as a file: the host has no djaploy
NOTICE_SCRIPT = files("djaploy.modules.rclone").joinpath("failure_notice.py").read_text(encoding="utf-8")


def failure_channels(target: Target, environ: Mapping[str, str] = os.environ) -> NotificationSettings | None:
    """The environment's Slack and webhook with their "env:" values read; None when a failed
    backup tells neither (then nothing is written and the failure unit only logs)."""
    if not target.notifications.reports_failures_over_http:
        return None
    try:
        return target.notifications.resolved(environ)
    except ConfigError as error:
        raise ConfigError(f"{error.detail} (the rclone module writes it on the host, which reports a failed "
                          f"backup itself)", file=error.file, field=error.field) from None


def notice_secrets(target: Target, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The channel values a host would get, as far as they can be read here (leniently: `status`
    must work for someone who has not exported them)."""
    if not target.notifications.reports_failures_over_http:
        return []
    values = []
    for value in target.notifications.secret_values():
        variable = env_variable(value)
        if variable is None:
            values.append(value)
        elif environ.get(variable):
            values.append(environ[variable])
    return values


def _hidden(settings: Settings, url: str = "") -> list[str]:
    """What the journal lines must not carry off the host: the backup's credentials (and the
    password of `url`, the app's PostgreSQL DATABASE_URL)."""
    url = url or settings.database_url
    encoded = urlsplit(url).password if url else None
    passwords = [encoded, unquote(encoded)] if encoded else []
    return sorted({*settings.secrets, *passwords})


def notice_settings(ctx: HostContext, settings: Settings, channels: NotificationSettings, service: str) -> str:
    """The notice program's settings file (it holds the channels' tokens: install it 0600, root's)."""
    values = {
        "project": ctx.target.project_name, "environment": ctx.env, "host": ctx.target.name, "service": service,
        "slack_webhook_url": channels.slack_webhook_url, "webhook_url": channels.webhook_url,
        "webhook_secret": channels.webhook_secret, "timeout": channels.timeout,
        "hide": _hidden(settings, database_url(ctx, settings)),
    }
    return json.dumps(values, indent=2, sort_keys=True) + "\n"
