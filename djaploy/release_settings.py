"""The `versioning` and `notifications` options of DjaployConfig: their keys, rules and defaults.

Both are plain dicts in infra/config.py (the names users copy from the README); this file
checks them when the config is built (unknown keys get a "did you mean") and turns them into
frozen settings for one environment. Per-environment changes live under the option's own
`environments` key, so one file says what every environment does:

    versioning={"increment": "patch", "environments": {"staging": {"push_tags": False}}}

`env:NAME` values (webhook URLs, secrets, API keys) are read from the deployer's environment
only by `resolve_env_values`, right before a command needs them; they are never printed.
A leaf: it imports only errors and the did-you-mean helper.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from djaploy.errors import ConfigError
from djaploy.modules.options import ENV_NAME_RE, MIN_SECRET_LENGTH, did_you_mean, env_variable

INCREMENTS = ("patch", "minor", "major")
BUILTIN_GENERATORS = ("simple", "llm")
DOTTED_RE = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*([.:][A-Za-z_]\w*)")
FILE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
REMOTE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]*")
TAG_PREFIX_RE = re.compile(r"[A-Za-z0-9._/-]*")

VERSIONING_KEYS = ("tag_environments", "increment", "tag_prefix", "push_tags", "version_file", "changelog",
                   "environments")
CHANGELOG_KEYS = ("generator", "max_commits", "url", "model", "api_key", "timeout", "prompt")
NOTIFICATION_KEYS = ("slack", "webhook", "notifiers", "notify_on_failure", "timeout", "environments")
SLACK_KEYS = ("webhook_url",)
WEBHOOK_KEYS = ("url", "secret")


# --- the settings, once checked -----------------------------------------------------------------


@dataclass(frozen=True)
class ChangelogSettings:
    """How release notes are written: 'simple', 'llm' (falls back to simple) or a dotted path."""

    generator: str = "simple"
    max_commits: int = 50
    url: str | None = None  # llm: an OpenAI-compatible base URL (…/v1) or its /chat/completions URL
    model: str | None = None
    api_key: str | None = None
    timeout: float = 20.0
    prompt: str | None = None


@dataclass(frozen=True)
class VersioningSettings:
    tag_environments: tuple[str, ...] = ("production",)
    increment: str = "patch"
    tag_prefix: str = "v"
    push_tags: bool | str = True  # True: to origin; a string names the remote
    version_file: str = "VERSION"
    changelog: ChangelogSettings = field(default_factory=ChangelogSettings)

    def tags(self, env: str) -> bool:
        return env in self.tag_environments

    @property
    def remote(self) -> str | None:
        """The remote tags are pushed to, or None when they stay local."""
        if self.push_tags is True:
            return "origin"
        return self.push_tags or None


@dataclass(frozen=True)
class NotificationSettings:
    """One environment's channels; the URLs and the secret stay out of repr (they carry tokens)."""

    slack_webhook_url: str | None = field(default=None, repr=False)
    webhook_url: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    notifiers: tuple[str, ...] = ()  # dotted paths of the user's own callables(event)
    notify_on_failure: bool = True
    timeout: float = 10.0

    @property
    def any(self) -> bool:
        return bool(self.slack_webhook_url or self.webhook_url or self.notifiers)

    @property
    def reports_failures_over_http(self) -> bool:
        """Whether a failure is announced on Slack or the webhook: the channels a host can send
        itself (the notifiers are Python callables on the deployer's machine)."""
        return self.notify_on_failure and bool(self.slack_webhook_url or self.webhook_url)

    def resolved(self, environ: Mapping[str, str] = os.environ) -> NotificationSettings:
        """These settings with every 'env:NAME' read from `environ` (ConfigError when unset)."""
        return resolve_env_values(self, environ, where="DjaployConfig.notifications")

    def secret_values(self) -> list[str]:
        """What must never be printed: webhook URLs carry their token in the path."""
        return [v for v in (self.slack_webhook_url, self.webhook_url, self.webhook_secret) if v]


# --- checking (called by DjaployConfig's field rules: return a problem or None) ---------------


def _unknown(given: Mapping[str, Any], valid: tuple[str, ...], where: str) -> str | None:
    for key in given:
        if key not in valid:
            return f"unknown key {key!r} in {where}{did_you_mean(str(key), valid)}; valid: {', '.join(valid)}"
    return None


def _env_or_text(value: Any, where: str) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{where} must be a non-empty string (or 'env:NAME'), got {value!r}"
    if (variable := env_variable(value)) is not None and not ENV_NAME_RE.fullmatch(variable):
        return f"{where}: 'env:' must be followed by a variable name"
    return None


def _number(value: Any, where: str) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    return None if ok else f"{where} must be a positive number, got {value!r}"


def _check_changelog(value: Any) -> str | None:
    if isinstance(value, str):
        value = {"generator": value}
    if not isinstance(value, Mapping):
        return f"versioning['changelog'] must be 'simple', 'llm', a dotted path or a dict, got {value!r}"
    problem = _unknown(value, CHANGELOG_KEYS, "versioning['changelog']")
    if problem:
        return problem
    generator = value.get("generator", "simple")
    if not isinstance(generator, str) or (generator not in BUILTIN_GENERATORS and not DOTTED_RE.fullmatch(generator)):
        return (f"changelog generator {generator!r} is neither 'simple', 'llm' nor a dotted path "
                f"like 'infra.changelog.write'{did_you_mean(str(generator), BUILTIN_GENERATORS)}")
    if generator == "llm":
        for key in ("url", "model"):
            if key not in value:
                return f"the llm changelog needs {key!r} (an OpenAI-compatible endpoint and its model)"
    for key in ("url", "model", "api_key", "prompt"):
        if key in value and (problem := _env_or_text(value[key], f"changelog {key!r}")):
            return problem
    if "timeout" in value and (problem := _number(value["timeout"], "changelog 'timeout'")):
        return problem
    if "max_commits" in value and (not isinstance(value["max_commits"], int) or value["max_commits"] < 1):
        return f"changelog 'max_commits' must be a positive int, got {value['max_commits']!r}"
    return None


def _check_versioning_keys(value: Mapping[str, Any], where: str) -> str | None:
    problem = _unknown(value, VERSIONING_KEYS if where == "versioning" else VERSIONING_KEYS[:-1], where)
    if problem:
        return problem
    envs = value.get("tag_environments", ["production"])
    if not isinstance(envs, (list, tuple)) or not all(isinstance(e, str) and e for e in envs):
        return f"{where}['tag_environments'] must be a list of environment names, got {envs!r}"
    increment = value.get("increment", "patch")
    if increment not in INCREMENTS:
        return f"unknown increment {increment!r}{did_you_mean(str(increment), INCREMENTS)}; valid: {', '.join(INCREMENTS)}"
    prefix = value.get("tag_prefix", "v")
    if not isinstance(prefix, str) or not TAG_PREFIX_RE.fullmatch(prefix):
        return f"{where}['tag_prefix'] {prefix!r} must be letters, digits, '.', '_', '/' or '-' (like 'v')"
    push = value.get("push_tags", True)
    if not isinstance(push, bool) and not (isinstance(push, str) and REMOTE_RE.fullmatch(push)):
        return f"{where}['push_tags'] must be True, False or a git remote's name, got {push!r}"
    version_file = value.get("version_file", "VERSION")
    if not isinstance(version_file, str) or not FILE_NAME_RE.fullmatch(version_file):
        return f"{where}['version_file'] must be a file name (no folder), got {version_file!r}"
    return _check_changelog(value["changelog"]) if "changelog" in value else None


def _check_environments(value: Mapping[str, Any], where: str, check: Any) -> str | None:
    environments = value.get("environments", {})
    if not isinstance(environments, Mapping):
        return f"{where}['environments'] must map environment names to dicts, got {environments!r}"
    for env, override in environments.items():
        if not isinstance(override, Mapping):
            return f"{where}['environments'][{env!r}] must be a dict, got {override!r}"
        if problem := check(override, f"{where}['environments'][{env!r}]"):
            return problem
    return None


def check_versioning(value: Mapping[str, Any]) -> str | None:
    """The rule of DjaployConfig.versioning."""
    return _check_versioning_keys(value, "versioning") or _check_environments(value, "versioning", _check_versioning_keys)


def _check_channel(value: Any, keys: tuple[str, ...], required: str, where: str) -> str | None:
    if value is None:
        return None  # None switches a channel off (per environment)
    if not isinstance(value, Mapping):
        return f"{where} must be a dict like {{{required!r}: 'env:NAME'}}, got {value!r}"
    if problem := _unknown(value, keys, where):
        return problem
    if required not in value:
        return f"{where} needs {required!r}"
    return next((p for key in keys if key in value and (p := _env_or_text(value[key], f"{where}[{key!r}]"))), None)


def _check_notification_keys(value: Mapping[str, Any], where: str) -> str | None:
    problem = _unknown(value, NOTIFICATION_KEYS if where == "notifications" else NOTIFICATION_KEYS[:-1], where)
    if problem:
        return problem
    problem = (_check_channel(value.get("slack"), SLACK_KEYS, "webhook_url", f"{where}['slack']")
               or _check_channel(value.get("webhook"), WEBHOOK_KEYS, "url", f"{where}['webhook']"))
    if problem:
        return problem
    notifiers = value.get("notifiers", [])
    if not isinstance(notifiers, (list, tuple)) or not all(isinstance(n, str) and DOTTED_RE.fullmatch(n) for n in notifiers):
        return f"{where}['notifiers'] must be a list of dotted paths like 'infra.notify.send', got {notifiers!r}"
    if not isinstance(value.get("notify_on_failure", True), bool):
        return f"{where}['notify_on_failure'] must be True or False"
    return _number(value["timeout"], f"{where}['timeout']") if "timeout" in value else None


def check_notifications(value: Mapping[str, Any]) -> str | None:
    """The rule of DjaployConfig.notifications."""
    return (_check_notification_keys(value, "notifications")
            or _check_environments(value, "notifications", _check_notification_keys))


# --- one environment's settings -----------------------------------------------------------------


def _for_env(value: Mapping[str, Any], env: str) -> dict[str, Any]:
    """The option with `environments[env]` laid over it, key by key."""
    merged = {key: item for key, item in value.items() if key != "environments"}
    merged.update(value.get("environments", {}).get(env, {}))
    return merged


def versioning_for(value: Mapping[str, Any] | None, env: str) -> VersioningSettings | None:
    """None when the project does not version its releases (no `versioning` in config.py)."""
    if value is None:
        return None
    merged = _for_env(value, env)
    changelog = merged.get("changelog", "simple")
    changelog = {"generator": changelog} if isinstance(changelog, str) else dict(changelog)
    return VersioningSettings(
        tag_environments=tuple(merged.get("tag_environments", ("production",))),
        increment=merged.get("increment", "patch"),
        tag_prefix=merged.get("tag_prefix", "v"),
        push_tags=merged.get("push_tags", True),
        version_file=merged.get("version_file", "VERSION"),
        changelog=ChangelogSettings(**changelog),
    )


def notifications_for(value: Mapping[str, Any] | None, env: str) -> NotificationSettings:
    merged = _for_env(value or {}, env)
    slack, webhook = merged.get("slack") or {}, merged.get("webhook") or {}
    return NotificationSettings(
        slack_webhook_url=slack.get("webhook_url"),
        webhook_url=webhook.get("url"),
        webhook_secret=webhook.get("secret"),
        notifiers=tuple(merged.get("notifiers", ())),
        notify_on_failure=merged.get("notify_on_failure", True),
        timeout=float(merged.get("timeout", 10.0)),
    )


def resolve_env_values(settings: Any, environ: Mapping[str, str] = os.environ, *, where: str) -> Any:
    """A copy of frozen `settings` with every 'env:NAME' string replaced by $NAME; unset is an error."""
    changes = {}
    for name, value in vars(settings).items():
        if isinstance(value, str) and (variable := env_variable(value)) is not None:
            if variable not in environ:
                raise ConfigError(f"{name} reads ${variable}, which is not set in your environment", field=where)
            if 0 < len(environ[variable]) < MIN_SECRET_LENGTH:
                raise ConfigError(f"{name} reads ${variable}, whose value is {len(environ[variable])} characters long: "
                                  f"djaploy hides it in its output and logs, and one this short would garble them; "
                                  f"use at least {MIN_SECRET_LENGTH} characters", field=where)
            changes[name] = environ[variable]
        elif isinstance(value, ChangelogSettings):
            changes[name] = resolve_env_values(value, environ, where=f"{where}['changelog']")
    return type(settings)(**{**vars(settings), **changes})
