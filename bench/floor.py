"""The floor: the least work a code-only redeploy and a rollback need, done by hand in one SSH session.

Redeploy: stream the release tarball (`git archive`) into one `ssh`, which extracts it, copies
the live release's env file, links the existing venv, runs `migrate` (nothing to apply) and
`collectstatic`, swaps `current`, restarts the service that gets traffic and waits until
nginx answers with the new version. Rollback: one `ssh` that swaps `current` back, restarts,
and waits for the old version. No lock, no audit, no health gate, no clean-up, no Django start-up
on this side: what djaploy adds on top of this is its price.

It works on a host djaploy deployed with zero_downtime (it reuses the venv and env file of the
live release, and the service whose socket the live link points at).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bench.measure import Outcome
from djaploy import shell
from djaploy.layout import ENV_FILE_NAME, VENV_LINK_NAME, AppPaths
from djaploy.sandbox.host import SandboxHost

PATHS = AppPaths(app_name="ledger", app_user="ledger")
VERSION_URL = "http://127.0.0.1/version/"
WAIT_SECONDS = 120


def restart_and_wait(expected_version: str, host_header: str) -> str:
    """Restart the service whose socket the live link points at (/run/<service>/<app>.sock);
    wait until nginx answers with `expected_version`."""
    curl = f"curl -sf -H {shell.q('Host: ' + host_header)} {VERSION_URL}"
    gave_up = shell.q(f"no answer {expected_version} after {WAIT_SECONDS} s")
    return (
        f"service=$(basename \"$(dirname \"$(readlink {shell.q(PATHS.live_link)})\")\").service && "
        f"systemctl restart \"$service\" && end=$(($(date +%s) + {WAIT_SECONDS})); "
        f"until [ \"$({curl})\" = {shell.q(expected_version)} ]; do "
        f"[ $(date +%s) -lt $end ] || {{ echo {gave_up} >&2; exit 1; }}; sleep 0.02; done"
    )


def redeploy_script(release: str, version: str, host_header: str) -> str:
    """Reads the tarball on stdin."""
    new = f"{PATHS.releases_dir}/{release}"
    n, current, user = shell.q(new), shell.q(PATHS.current), shell.q(PATHS.app_user)
    python = f"{VENV_LINK_NAME}/bin/python"
    manage = (f"set -a && . ./{ENV_FILE_NAME} && set +a && "
              f"{python} manage.py migrate --noinput -v 0 && {python} manage.py collectstatic --noinput -v 0")
    return (
        f"set -e; rm -rf {n}; mkdir -p {n}; tar -xz -C {n} --no-same-owner; "
        f"cp -p {current}/{ENV_FILE_NAME} {n}/; ln -sfn \"$(readlink -f {current}/{VENV_LINK_NAME})\" {n}/{VENV_LINK_NAME}; "
        f"chown -R {user}:{user} {n}; cd {n}; runuser -u {user} -- sh -c {shell.q(manage)}; "
        f"{shell.switch_symlink(PATHS.current, new)}; {restart_and_wait(version, host_header)}"
    )


def rollback_script(release_dir: str, version: str, host_header: str) -> str:
    return f"set -e; {shell.switch_symlink(PATHS.current, release_dir)}; {restart_and_wait(version, host_header)}"


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
