"""sshd hardening as a drop-in file, installed so that a config sshd refuses is never left behind."""

from __future__ import annotations

from djaploy.shell import q

#: sshd keeps the first value it reads and Debian includes sshd_config.d/*.conf at the top, in
#: name order: "00-" wins over the main file and over a provider's "50-cloud-init.conf".
DROPIN_PATH = "/etc/ssh/sshd_config.d/00-djaploy.conf"


def hardening_dropin() -> str:
    """Keys only, and no root: the deploy user (proven to work first) is the way in."""
    return (
        "# Written by djaploy bootstrap: log in with a key, as a user other than root.\n"
        "PermitRootLogin no\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\n"
    )


def install_dropin(content: str, path: str = DROPIN_PATH) -> str:
    """A script that puts `content` at `path`, checks the whole config with `sshd -t`, and on
    refusal puts back what was there (or nothing) and fails; sshd is reloaded only when it passes.
    Open sessions survive a reload, so the connection running this is never cut."""
    return "\n".join([
        "set -eu",
        f"dropin={q(path)}",
        'new=$(mktemp "$dropin.new.XXXXXX")',
        f"printf '%s' {q(content)} > \"$new\"",
        'chmod 644 "$new"',
        'backup=""',
        'if [ -e "$dropin" ]; then backup=$(mktemp "$dropin.old.XXXXXX"); cp -p "$dropin" "$backup"; fi',
        'mv -f "$new" "$dropin"',
        'if ! why=$(sshd -t 2>&1); then',
        '  if [ -n "$backup" ]; then mv -f "$backup" "$dropin"; else rm -f "$dropin"; fi',
        '  echo "sshd -t refused the configuration, so it was left as it was: $why" >&2',
        "  exit 1",
        "fi",
        'if [ -n "$backup" ]; then rm -f "$backup"; fi',
        "systemctl reload ssh",
    ])
