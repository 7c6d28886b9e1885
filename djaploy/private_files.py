"""Files that hold secrets (a mode giving group and others nothing): written so that no other
user can read them at any moment. Part of the engine (`PyinfraPlan.put_text`/`put_file` call it),
split off for size: it talks to pyinfra's host object, lazily imported like the engine's."""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

from djaploy.errors import RemoteError
from djaploy.shell import install_private, q


def is_private(mode: str) -> bool:
    """A mode that gives group and others nothing (600, 400, 700): the file holds a secret."""
    return int(mode, 8) & 0o077 == 0


def put_private(plan: Any, step: str, content: bytes, path: str, owner: str, mode: str) -> bool:
    """A file only its owner may read is never readable by anyone else, not for a moment.

    pyinfra's files.put uploads first and chmods after (and with sudo goes through a
    predictable /tmp name). Instead: upload as the login user into a fresh 0700 `mktemp -d`
    folder, then, as root and under umask 077, copy it beside `path`, set owner and mode,
    and rename it into place. Unchanged content, owner and mode: nothing is sent. Three round
    trips when it changes (check and folder, upload, install and clean-up), one when it does not.
    """
    from pyinfra.api.command import StringCommand

    started = time.monotonic()
    wanted = f"{owner} {int(mode, 8):o} {hashlib.sha256(content).hexdigest()}"
    current = (f"if [ -f {q(path)} ]; then stat -c '%U %a' {q(path)} | tr '\\n' ' '; "
               f"sha256sum < {q(path)} | cut -c1-64; fi")
    if plan.dry_run:
        changed = plan.query(current).stdout.strip() != wanted
        plan.record(step, changed, started)
        return changed
    # One round trip: compare, and only when the file must change make the login user's 0700 folder.
    prepare = (f'if [ "$({current})" = {q(wanted)} ]; then echo unchanged; '
               f'else d=$(mktemp -d) && chown {q(plan.target.ssh_user)} "$d" && echo "$d"; fi')
    ok, output = plan.host.run_shell_command(StringCommand(prepare), _sudo=plan.sudo)
    stage = output.stdout.strip()
    if ok and stage == "unchanged":
        plan.record(step, False, started)
        return False
    if not ok or not stage.startswith("/"):
        raise RemoteError(plan.target.name, step, f"mktemp -d failed: {output.stderr.strip()}")
    install = install_private(f"{stage}/upload", path, owner, mode)
    if plan.host.put_file(io.BytesIO(content), f"{stage}/upload", _sudo=False):
        # ...and one for the install, which removes the folder whatever happened.
        ok, output = plan.host.run_shell_command(
            StringCommand(f"{install}; status=$?; rm -rf {q(stage)}; exit $status"), _sudo=plan.sudo)
    else:
        plan.host.run_shell_command(StringCommand(f"rm -rf {q(stage)}"), _sudo=plan.sudo)
        ok, output = False, None
    plan.engine.reporter.detail(f"[{plan.target.name}] {step} $ {install}")
    if not ok:
        plan.record(step, True, started, ok=False)
        why = plan.engine.reporter.redact(output.stderr) if output else "the upload failed"
        raise RemoteError(plan.target.name, step, why)
    plan.record(step, True, started)
    return True
