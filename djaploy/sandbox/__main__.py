"""CLI: python -m djaploy.sandbox up [--count N] [--os debian-13] | down | status | ssh N [-- cmd...]
| prepare [--os RELEASE]... (build and cache root filesystems ahead of time, as scripts/test.sh does)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
from collections.abc import Sequence

from . import rootfs, settings, vps
from .core import Sandbox
from .errors import SandboxError
from .host import SandboxHost


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m djaploy.sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    name_help = f"sandbox name (default: $DJAPLOY_SANDBOX_NAME or {settings.DEFAULT_NAME!r})"
    up = sub.add_parser("up", help="boot missing hosts (keeps running ones) and print how to reach them")
    up.add_argument("--count", type=int, default=1, help="number of hosts wanted (default 1)")
    up.add_argument("--os", choices=sorted(settings.RELEASES), default=None,
                    help=f"release of new hosts (default: $DJAPLOY_SANDBOX_OS or {settings.DEFAULT_OS}); "
                         "each release's root filesystem is built once and cached")
    up.add_argument("--root-password-env", metavar="VAR", default=None,
                    help="boot new hosts like a provider's fresh VPS: root logs in only with the password "
                         "held in environment variable VAR (no key, no other user)")
    down = sub.add_parser("down", help="stop all hosts and remove everything the sandbox created")
    status = sub.add_parser("status", help="list recorded hosts and whether they answer over SSH")
    ssh = sub.add_parser("ssh", help="ssh as root to host N (1-based); add -- CMD to run a command")
    ssh.add_argument("number", type=int)
    prepare = sub.add_parser("prepare", help="build (once) and cache each release's root filesystem without "
                             "booting a host, so the first `up` of a test run does not pay for it")
    prepare.add_argument("--os", dest="releases", action="append", choices=sorted(settings.RELEASES),
                         help=f"a release to prepare, repeatable (default: {settings.DEFAULT_OS})")
    for p in (up, down, status, ssh):
        p.add_argument("--name", default=None, help=name_help)
    return parser


def describe(host: SandboxHost) -> str:
    """What someone needs to connect by hand or to point an inventory at the host."""
    example = shlex.join(
        [
            "ssh",
            "-i",
            host.key_path,
            "-o",
            f"UserKnownHostsFile={host.known_hosts_path}",
            "-o",
            "StrictHostKeyChecking=yes",
            f"{host.root_user}@{host.address}",
        ]
    )
    users = (f"{host.root_user} (password only; no other user)" if host.root_password_only
             else f"{host.root_user}, {host.sudo_user} (passwordless sudo)")
    return (
        f"{host.name}: {host.address} ({host.os}; port {host.ssh_port}; proxy http://{host.host_side_address}:"
        f"{settings.PROXY_PORT})\n"
        f"  ssh users:   {users}\n"
        f"  private key: {host.key_path}\n"
        f"  known_hosts: {host.known_hosts_path}\n"
        f"  example:     {example}\n"
    )


def _cmd_up(sb: Sandbox, count: int, root_password_env: str | None) -> int:
    password = None
    if root_password_env:
        password = os.environ.get(root_password_env)
        if not password:
            raise SandboxError(f"--root-password-env {root_password_env}: that environment variable is not set")
    for host in sb.up(count=count, root_password=password):
        print(describe(host))
    return 0


def _cmd_status(sb: Sandbox) -> int:
    recorded = sb.recorded()
    if not recorded:
        print(f"sandbox {sb.name!r}: no hosts")
        return 0
    for host, running in recorded:
        if not running:
            state = "not running"
        else:
            state = "reachable" if sb.reachable(host) else "running, NOT reachable over SSH"
        print(f"{host.name}: {host.address} {host.os} {state}")
    return 0


def _cmd_ssh(sb: Sandbox, number: int, remote: Sequence[str]) -> int:
    hosts = sb.status()
    if not 1 <= number <= len(hosts):
        raise SandboxError(f"sandbox {sb.name!r} has {len(hosts)} running host(s); no host {number}")
    argv = hosts[number - 1].ssh_command(batch=False)
    if remote:
        argv.append(shlex.join(remote) if len(remote) > 1 else remote[0])
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 0  # not reached


def _cmd_prepare(releases: Sequence[str]) -> int:
    vps.require_root()
    for release in releases:
        print(f"{release}: root filesystem ready at {rootfs.ensure_base(settings.suite(release))}")
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into SystemExit so a failed or aborted `up` still cleans up after itself."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    remote: list[str] = []
    if "--" in args_list:  # everything after -- is the remote command, untouched by argparse
        cut = args_list.index("--")
        args_list, remote = args_list[:cut], args_list[cut + 1 :]
    args = _parser().parse_args(args_list)
    if remote and args.command != "ssh":
        print("error: '-- CMD' only goes with the ssh command", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.command == "prepare":
            return _cmd_prepare(args.releases or [settings.DEFAULT_OS])
        sb = Sandbox(args.name, getattr(args, "os", None))
        if args.command == "up":
            return _cmd_up(sb, args.count, args.root_password_env)
        if args.command == "down":
            sb.down()
            print(f"sandbox {sb.name!r}: down")
            return 0
        if args.command == "status":
            return _cmd_status(sb)
        return _cmd_ssh(sb, args.number, remote)
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
