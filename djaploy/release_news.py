"""Around one deploy, activate or rollback: decide its version first, tag it once it serves, tell people.

The order is the point (djaploy 1.x got it wrong): the version and changelog are decided before
any host is touched; the tag is created only after every host serves the release (a bluegreen
deploy that only stages waits for `activate`), then pushed; only then is the success announced.
A failed push exits non-zero with the live state and the command to retry. Failures after
validation (prepare.py, the build, any host) are announced as failures. Notifying never fails
a command: what went wrong is in the summary.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from djaploy.context import HostContext
from djaploy.errors import ConfigError, RemoteError, UndoFailed
from djaploy.notify import DeployEvent, notify
from djaploy.redact import Redactor
from djaploy.release_settings import NotificationSettings, notifications_for, resolve_env_values, versioning_for
from djaploy.session import RunFailed, RunResult, Session
from djaploy.state import serving_info
from djaploy.strategies.common import deployer
from djaploy.versioning import TagError, Version, create_tag, decide_version, push_tag, with_recorded

if TYPE_CHECKING:  # building a release is deploy's alone: other commands skip its imports
    from djaploy.artifact import RefSpec, Release

ERROR_TAIL_LINES = 15


class ReleaseNews:
    """Versioning and notifying for one command on one environment (built after validation)."""

    def __init__(self, session: Session, git_root: Path, action: str, *,
                 environ: Mapping[str, str] = os.environ) -> None:
        self.session, self.root, self.action = session, git_root, action
        config = session.config
        versioning = versioning_for(config.versioning, session.env)
        self.versioning = versioning and resolve_env_values(versioning, environ, where="DjaployConfig.versioning")
        self.muted = ""  # why this command notifies nobody although channels are configured
        try:
            self.notifications = resolve_env_values(notifications_for(config.notifications, session.env), environ,
                                                    where="DjaployConfig.notifications")
        except ConfigError as error:
            if action == "deploy":
                raise  # a deploy can wait for the variable; an emergency rollback or activate must not
            self.notifications, self.muted = NotificationSettings(), str(error)
        hidden = [value for target in session.targets for value in target.secrets.values()]
        hidden += [*session.hidden, *self.notifications.secret_values()]
        if self.versioning and self.versioning.changelog.api_key:
            hidden.append(self.versioning.changelog.api_key)
        session.reporter.redact = Redactor(hidden)
        self.started = time.monotonic()
        self.phase = "validate"  # what the command was doing, for a failure before the hosts
        self.version: Version | None = None
        self.release: Release | None = None
        self.serving: dict[str, dict] = {}

    # --- before the hosts ---------------------------------------------------------------------

    def decide(self, commit: str, spec: RefSpec, increment: str | None, *, dry_run: bool = False) -> Version | None:
        """The version the deploy carries (None when the project does not version releases).
        A dry run writes the simple changelog: it calls no endpoint (an `llm` one costs money)."""
        if self.versioning is None:
            return None
        self.phase = "decide the version"
        settings = self.versioning
        if dry_run and settings.changelog.generator == "llm":
            settings = replace(settings, changelog=replace(settings.changelog, generator="simple"))
        self.version = decide_version(self.root, commit, settings, project=self.session.config.project_name,
                                      increment=increment, release_tag=spec.tag if spec.mode == "release" else None,
                                      local=spec.mode == "local")
        for warning in self.version.warnings:
            self.session.reporter.line(f"warning: {warning}")
        return self.version

    def stamp(self, release: Release) -> Release:
        """The release as the hosts get it: with its version and VERSION file name."""
        if self.version and self.versioning:
            release = replace(release, version=self.version.name, version_file=self.versioning.version_file)
        self.release = release
        return release

    def record_serving(self, ctx: HostContext) -> None:
        """Per host, what serves once its operation is done (read from the state it just wrote)."""
        self.serving[ctx.target.name] = serving_info(ctx.state)

    # --- after the hosts ----------------------------------------------------------------------

    def succeeded(self, result: RunResult) -> RunResult:
        """Tag (when every host serves it), push, announce; raises RunFailed when the tag could not be pushed."""
        if result.dry_run:
            if self.version:
                result.notes.append(f"version: {self.version.name} (dry run: no tag, no notification)")
            return result
        if self.action == "deploy":
            version, commit = self.version, self.release.commit if self.release else None
            if any(info.get("commit") != commit for info in self.serving.values()):
                if version:
                    result.notes.append(f"version: {version.name} staged; `activate` tags and announces it")
                return result
        else:
            version, commit = self._recorded_version(result)
        tag_error = self._tag(version, result) if version else None
        self._announce(self._event(f"{self.action}.succeeded", version, commit, tagged=tag_error is None and
                                   bool(version and version.tag_needed(self.versioning, self.session.env))), result)
        if tag_error:
            raise RunFailed(result, self.session.reporter.redact(str(tag_error)))
        return result

    def failed(self, error: BaseException) -> None:
        """Announce a failure after validation; its lines go to the summary (or, before the hosts, out)."""
        result = error.result if isinstance(error, RunFailed) else None
        host, step, cause = None, self.phase, error
        if result and result.errors:
            host, cause = next(iter(result.errors.items()))
            step = "deploy"
        if isinstance(cause, UndoFailed):
            cause = cause.error
        if isinstance(cause, RemoteError):
            host, step = cause.host, cause.step
        text = "interrupted" if isinstance(cause, KeyboardInterrupt) else str(cause) or type(cause).__name__
        tail = "\n".join(self.session.reporter.redact(text).strip().splitlines()[-ERROR_TAIL_LINES:])
        commit = self.release.commit if self.release else (self.version.commit if self.version else None)
        event = replace(self._event(f"{self.action}.failed", self.version, commit),
                        error=tail, failed_host=host, failed_step=step)
        if result is not None:
            self._announce(event, result)
        else:
            for line in self._send(event):
                self.session.reporter.line(line)

    # --- the parts ----------------------------------------------------------------------------

    def _recorded_version(self, result: RunResult) -> tuple[Version | None, str | None]:
        """activate and rollback: the version the hosts now serve, as each recorded it."""
        info = next(iter(self.serving.values()), {})
        commit, name = info.get("commit"), info.get("version")
        if not (self.versioning and name and commit):
            return None, commit
        try:
            return with_recorded(self.root, name, commit, self.versioning,
                                 project=self.session.config.project_name), commit
        except Exception as error:  # noqa: BLE001 - a commit this clone lacks must not fail a live switch
            result.notes.append(f"warning: version {name}: its changelog could not be read here ({error})")
            return Version(name, commit, "", existing=True), commit

    def _tag(self, version: Version, result: RunResult) -> TagError | None:
        settings, env = self.versioning, self.session.env
        assert settings
        if not version.tag_needed(settings, env):
            why = ("already tagged" if version.existing else "--local is never tagged" if version.local
                   else f"{env} is not in tag_environments")
            result.notes.append(f"version: {version.name} ({why})")
            return None
        try:
            create_tag(self.root, version)
            if settings.remote:
                push_tag(self.root, version.name, settings.remote)
        except TagError as error:
            result.notes.append(f"version: {version.name}: TAG NOT PUSHED (see the error below)")
            return error
        where = f"pushed to {settings.remote}" if settings.remote else "kept local (push_tags is off)"
        result.notes.append(f"version: {version.name} tagged on {version.commit[:8]}, {where}")
        return None

    def _event(self, name: str, version: Version | None, commit: str | None, *, tagged: bool = False) -> DeployEvent:
        return DeployEvent(
            event=name,
            project=self.session.config.project_name,
            environment=self.session.env,
            version=version.name if version else None,
            commit=commit,
            changelog=version.changelog if version else None,
            hosts=tuple(target.name for target in self.session.targets),
            release=self.release.name if self.release else next(
                (info.get("release") for info in self.serving.values()), None),
            deployed_by=deployer(),
            duration_seconds=round(time.monotonic() - self.started, 1),
            tagged=tagged,
        )

    def _send(self, event: DeployEvent) -> list[str]:
        if not self.notifications.any:
            return []
        warnings = notify(self.notifications, event, root=str(self.session.config_dir.parent))
        return [self.session.reporter.redact(line) for line in warnings]

    def _announce(self, event: DeployEvent, result: RunResult) -> None:
        if self.muted:
            result.notes.append(f"not notified: {self.muted}")
        warnings = self._send(event)
        result.notes.extend(warnings)
        if self.notifications.any and not warnings and (event.succeeded or self.notifications.notify_on_failure):
            result.notes.append(f"notified: {event.event}")
