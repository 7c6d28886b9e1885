"""Where the replication's files live on the host and what they say: the remote paths, the
Litestream config and systemd unit, the service's environment, and the destination a config records."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, replace
from typing import Any

from djaploy.config import Target
from djaploy.context import HostContext
from djaploy.layout import AppPaths
from djaploy.modules.litestream.options import Replica, Settings
from djaploy.render import render

LITESTREAM_HOME = "/opt/litestream"
LITESTREAM_BIN = f"{LITESTREAM_HOME}/bin/litestream"
INSTALL_MARKER = f"{LITESTREAM_HOME}/.djaploy-source"
#: the variables the config file expands (Litestream reads these names natively, too)
ACCESS_KEY_VAR = "LITESTREAM_ACCESS_KEY_ID"
SECRET_KEY_VAR = "LITESTREAM_SECRET_ACCESS_KEY"
MARKER_PREFIX = "# djaploy-replica: "


@dataclass(frozen=True)
class LitestreamPaths:
    """Remote paths of one app's replication (system files are named after the project).

    With a suffix, the config, env file and key are a staged set: a new destination is
    checked with them before they replace the live ones.
    """

    app: AppPaths
    db_name: str
    suffix: str = ""

    def staged(self) -> LitestreamPaths:
        return replace(self, suffix=".new")

    @property
    def db(self) -> str:
        return posixpath.join(self.app.data_dir, self.db_name)

    @property
    def meta_dir(self) -> str:
        """Litestream's local state (LTX files) beside the database."""
        return posixpath.join(self.app.data_dir, f".{self.db_name}-litestream")

    @property
    def restoring(self) -> str:
        """Where a restore writes before the checked file is moved into place (same filesystem)."""
        return posixpath.join(self.app.data_dir, f".{self.db_name}-restoring")

    @property
    def config(self) -> str:
        return f"/etc/litestream-{self.app.app_name}.yml{self.suffix}"

    @property
    def env_file(self) -> str:
        return f"/etc/litestream-{self.app.app_name}.env{self.suffix}"

    @property
    def sftp_key(self) -> str:
        return f"/etc/litestream-{self.app.app_name}.sftp-key{self.suffix}"

    @property
    def service(self) -> str:
        return f"litestream-{self.app.app_name}.service"

    @property
    def unit_path(self) -> str:
        return f"/etc/systemd/system/{self.service}"


def paths_for(ctx: HostContext, settings: Settings) -> LitestreamPaths:
    return LitestreamPaths(ctx.paths, settings.db_name)


def _yaml(value: object) -> str:
    """A YAML scalar: JSON strings and booleans are valid YAML."""
    return json.dumps(value)


def replica_fields(settings: Settings, paths: LitestreamPaths) -> list[tuple[str, str]]:
    """The `replica:` mapping of Litestream 0.5's config, values already quoted."""
    replica = settings.replica
    fields: list[tuple[str, object]] = [("type", replica.type)]
    if replica.type == "sftp":
        fields += [("host", f"{replica.host}:{replica.port}"), ("user", replica.user), ("key-path", paths.sftp_key),
                   ("host-key", replica.host_key), ("path", replica.path)]
    elif replica.type == "s3":
        fields += [("bucket", replica.bucket), ("path", replica.path)]
        fields += [(key, value) for key, value in (("endpoint", replica.endpoint), ("region", replica.region)) if value]
        if replica.force_path_style:
            fields.append(("force-path-style", True))
        fields += [("access-key-id", f"${{{ACCESS_KEY_VAR}}}"), ("secret-access-key", f"${{{SECRET_KEY_VAR}}}")]
    else:
        fields.append(("path", replica.path))
    return [(key, _yaml(value)) for key, value in fields]


def destination_marker(replica: Replica) -> str:
    return json.dumps(replica.destination(), sort_keys=True)


def litestream_config(ctx: HostContext, settings: Settings, paths: LitestreamPaths | None = None) -> str:
    paths = paths or paths_for(ctx, settings)
    return render(
        "litestream.yml.j2", project=ctx.target.app_name, env=ctx.env, env_file=paths.env_file,
        app_user=ctx.target.app_user, db_path=_yaml(paths.db), replica=replica_fields(settings, paths),
        destination=destination_marker(settings.replica),
    )


def litestream_unit(ctx: HostContext, settings: Settings) -> str:
    paths = paths_for(ctx, settings)
    return render(
        "litestream.service.j2", project=ctx.target.app_name, env=ctx.env, app_user=ctx.target.app_user,
        env_file=paths.env_file, config=paths.config, db_path=paths.db, litestream=LITESTREAM_BIN,
        app_services=" ".join(service.service for service in ctx.paths.all_services()),
    )


def litestream_environment(settings: Settings, target: Target) -> dict[str, str]:
    """The service's environment: credentials by value, read from the host's secrets by name."""
    replica = settings.replica
    if replica.type != "s3":
        return {}
    return {ACCESS_KEY_VAR: target.secrets[replica.access_key_id], SECRET_KEY_VAR: target.secrets[replica.secret_access_key]}


def parse_destination(config_text: str) -> dict[str, Any] | None:
    """The destination recorded in a config djaploy wrote; None when absent or unreadable."""
    for line in config_text.splitlines():
        if line.startswith(MARKER_PREFIX):
            try:
                value = json.loads(line[len(MARKER_PREFIX):])
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None

