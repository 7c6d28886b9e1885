"""The floor: the least work a code-only redeploy and a rollback need, done by hand in one SSH session.

Redeploy: stream the release tarball (`git archive`) into one `ssh`, which extracts it, copies
the live release's env file, links the existing venv, runs `migrate` (nothing to apply) and
`collectstatic`, swaps `current`, restarts the service that gets traffic and waits until
nginx answers with the new version. Rollback: one `ssh` that swaps `current` back, restarts,
and checks once. No lock, no audit, no health gate, no clean-up: what djaploy adds on top of
this is its price.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bench.measure import Outcome
from djaploy import shell
from djaploy.layout import AppPaths
from djaploy.sandbox.host import SandboxHost

PATHS = AppPaths(app_name="ledger", app_user="ledger")
VERSION_URL = "http://127.0.0.1/version/"


def _restart_and_wait(expected_version: str, host_header: str) -> str:
    """Restart the service the live link points at; wait until nginx answers with `expected_version`."""
    app = shell.q(PATHS.app_root)
    curl = f"curl -sf -H {shell.q('Host: ' + host_header)} {VERSION_URL}"
    return (
        f"service=$(basename \"$(dirname \"$(readlink {app}/live.sock)\")\").service && systemctl restart \"$service\" && "
        f"end=$(($(date +%s) + 120)); until [ \"$({curl})\" = {shell.q(expected_version)} ]; do "
        f"[ $(date +%s) -lt $end ] || {{ echo 'no answer {expected_version} after 120 s' >&2; exit 1; }}; sleep 0.02; done"
    )


def redeploy_script(release: str, version: str, host_header: str) -> str:
    """Reads the tarball on stdin."""
    new = f"{PATHS.releases_dir}/{release}"
    n, current = shell.q(new), shell.q(PATHS.current)
    manage = (f"set -a && . {n}/.djaploy-env && set +a && cd {n} && "
              f".djaploy-venv/bin/python manage.py migrate --noinput -v 0 && "
              f".djaploy-venv/bin/python manage.py collectstatic --noinput -v 0")
    return (
        f"set -e; rm -rf {n}; mkdir -p {n}; tar -xz -C {n} --no-same-owner; "
        f"cp -p {current}/.djaploy-env {n}/; ln -sfn \"$(readlink -f {current}/.djaploy-venv)\" {n}/.djaploy-venv; "
        f"chown -R ledger:ledger {n}; runuser -u ledger -- sh -c {shell.q(manage)}; "
        f"{shell.switch_symlink(PATHS.current, new)}; {_restart_and_wait(version, host_header)}"
    )


def rollback_script(release_dir: str, version: str, host_header: str) -> str:
    return f"set -e; {shell.switch_symlink(PATHS.current, release_dir)}; {_restart_and_wait(version, host_header)}"


def live_release_dir(vm: SandboxHost) -> str:
    """Where `current` points now (djaploy's live release), to roll back to."""
    return _ssh(vm, f"readlink -f {shell.q(PATHS.current)}", b"").strip()


def _ssh(vm: SandboxHost, script: str, stdin: bytes) -> str:
    result = subprocess.run([*vm.ssh_command(), script], input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"floor step failed on {vm.name}:\n{result.stdout.decode()}\n{result.stderr.decode()}")
    return result.stdout.decode()


def redeploy(vm: SandboxHost, project_root: Path, release: str, version: str) -> Outcome:
    """The tarball is built before the clock starts: djaploy's build is in its own phase column."""
    tarball = subprocess.run(["git", "archive", "--format=tar.gz", "HEAD"], cwd=project_root, check=True,
                             capture_output=True).stdout
    started = time.monotonic()
    _ssh(vm, redeploy_script(release, version, vm.address), tarball)
    return Outcome(time.monotonic() - started)


def rollback(vm: SandboxHost, release_dir: str, version: str) -> Outcome:
    started = time.monotonic()
    _ssh(vm, rollback_script(release_dir, version, vm.address), b"")
    return Outcome(time.monotonic() - started)
