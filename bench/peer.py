"""Measure the peer, djaploy 1.6.2 (PyPI), on a sandbox host with the bench's load.

    python bench/peer.py [--clients 8] [--out bench/peer_results.json] [--keep]     # as root

Boots its own sandbox ("benchpeer", 1 host), installs djaploy 1.6.2 in its own virtualenv
(/var/cache/djaploy-bench/peer-venv) and Poetry in another, turns infra_example into the
Poetry project + 1.x infra folder the peer needs (bench/peer/), puts a stand-in `op` (1Password
CLI: `op inject` prints a fixed value) first on PATH, and runs the peer's own commands:
configure (fresh, then again with nothing to change), the first deploy, a code-only redeploy
and a rollback, both under the load of bench/run.py (8 keep-alive clients on /version/ through
nginx). A redeploy or rollback counts until the other version actually serves (a poller reads
the version marker in the answer), not until the command returns: the peer's command returns
before its gunicorn handover ends. Writes JSON; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench" / "peer"))

from bench.poller import Poller  # noqa: E402
from djaploy.loadgen import Load  # noqa: E402
from djaploy.sandbox import Sandbox  # noqa: E402
from djaploy.sandbox.host import SandboxHost, ssh_run  # noqa: E402
from peer_project import PEER_VERSION, PeerProject, ensure_tools, make_peer_project  # noqa: E402

SANDBOX = "benchpeer"
ENV = "sandbox"
LOGS = Path("/var/tmp/djaploy-bench-peer")
SWITCH_TIMEOUT = 120.0  # seconds after the command returned
FIRST_DEPLOY_TIMEOUT = 30.0  # a fresh host that does not serve by then will not (see HUP_RACE)
SERVICE = "ledger"
HUP_RACE = (
    "gunicornherder was killed by SIGHUP: the deploy runs `systemctl start` and right after it "
    "`systemctl reload` (ExecReload=kill -HUP), which reaches the herder before it has installed "
    "its HUP handler (it does so only once gunicorn has written its pidfile); systemd counts "
    "death by SIGHUP as a clean exit, so Restart=on-failure does not bring the service back"
)


def boot() -> tuple[Sandbox, SandboxHost]:
    """The one host of sandbox "benchpeer" (retried once: boots at the same moment as another
    sandbox's have been seen to die)."""
    sandbox = Sandbox(name=SANDBOX)
    sandbox.down()
    try:
        return sandbox, sandbox.up(count=1)[0]
    except Exception as error:  # noqa: BLE001 - retried once, then raised
        print(f"sandbox boot failed ({error}); retrying once", flush=True)
        sandbox.down()
        time.sleep(5)
        return sandbox, sandbox.up(count=1)[0]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Bench:
    """Runs the peer's commands, each timed and logged, and collects the rows."""

    def __init__(self, project: PeerProject, host: SandboxHost, url: str, clients: int) -> None:
        self.project = project
        self.host = host
        self.url = url
        self.clients = clients
        self.rows: list[dict[str, Any]] = []
        LOGS.mkdir(parents=True, exist_ok=True)

    def _command(self, label: str, args: tuple[str, ...]) -> tuple[bool, float, dict[str, Any]]:
        result, seconds = self.project.manage(*args)
        log = LOGS / f"{len(self.rows) + 1:02d}-{args[1]}.log"
        log.write_text(f"$ manage.py {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}")
        row: dict[str, Any] = {"what": label, "command": "manage.py " + " ".join(args),
                               "command_seconds": round(seconds, 2), "log": str(log)}
        if result.returncode != 0:
            row["error"] = f"exit {result.returncode}: " + _tail(result.stdout + "\n" + result.stderr)
        return result.returncode == 0, seconds, row

    def plain(self, label: str, *args: str) -> bool:
        """A command without load: its wall time is the step's time."""
        ok, seconds, row = self._command(label, args)
        row["seconds"] = round(seconds, 2)
        self._add(row)
        return ok

    def service_state(self) -> str:
        """The app service's state as systemd reports it (over SSH, as root)."""
        props = "ActiveState,SubState,Result,ExecMainCode,ExecMainStatus"
        result = ssh_run(self.host, f"systemctl show {SERVICE} -p {props}", timeout=30)
        return " ".join(sorted(result.stdout.split()))

    def wait_handover_done(self, timeout: float = 60.0) -> None:
        """Wait until gunicornherder's handover has ended (the new master promoted: gunicorn.pid
        present, gunicorn.pid.2 gone) and note when, on the last row. A reload that arrives
        before that is dropped by the herder ("Cannot reload: no pidfile") while the deploy
        reports success, so the next step must not start earlier."""
        check = f"test -s /run/{SERVICE}/gunicorn.pid && ! test -e /run/{SERVICE}/gunicorn.pid.2"
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            if ssh_run(self.host, check, timeout=30).returncode == 0:
                self.rows[-1]["handover_done_after_step_s"] = round(time.monotonic() - started, 2)
                return
            time.sleep(0.2)
        self.rows[-1]["handover_done_after_step_s"] = None

    def manual_start(self, label: str, version: str) -> bool:
        """`systemctl start` over SSH: not a peer command, what a user does after the 502."""
        command = f"systemctl start {SERVICE}"
        with Poller(self.url) as poller:
            started = time.monotonic()
            result = ssh_run(self.host, command, timeout=120)
            command_seconds = time.monotonic() - started
            while poller.steady_since(version) is None and time.monotonic() < started + SWITCH_TIMEOUT:
                time.sleep(0.1)
            steady = poller.steady_since(version)
        row: dict[str, Any] = {"what": label, "command": f"ssh root@host {command} (by hand, not a djaploy 1.6.2 command)",
                               "command_seconds": round(command_seconds, 2),
                               "seconds": round(max(command_seconds, steady - started), 2) if steady else None}
        if result.returncode != 0 or steady is None:
            row["error"] = f"exit {result.returncode}: {_tail(result.stderr)}; service: {self.service_state()}"
        self._add(row)
        return steady is not None

    def until_serving(self, label: str, version: str, *args: str, load: bool = False,
                      timeout: float = SWITCH_TIMEOUT) -> bool:
        """A command that changes the served version: timed until `version` serves steadily."""
        report = None
        with Poller(self.url) as poller:
            running = Load(self.url, clients=self.clients, max_seconds=900).start() if load else None
            if running:
                time.sleep(0.5)
            started = time.monotonic()
            ok, command_seconds, row = self._command(label, args)
            deadline = time.monotonic() + timeout
            while ok and poller.steady_since(version) is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if running:
                time.sleep(0.5)
                report = running.stop()
            steady = poller.steady_since(version)
            first = poller.first_seen(version, started)
        if steady is None:
            row["seconds"] = None
            if ok:
                state = self.service_state()
                row["serving"] = False
                row["error"] = (f"the command succeeded, but version {version} did not serve within "
                                f"{timeout:.0f} s of its return; service: {state}")
                if "ExecMainCode=2" in state and "ExecMainStatus=1" in state:
                    row["cause"] = HUP_RACE
        else:
            row["seconds"] = round(max(command_seconds, steady - started), 2)
            row["first_answer_of_new_version_s"] = round(first - started, 2) if first else None
        if report is not None:
            previous = report.bodies_in_order[0] if report.bodies_in_order else ""
            old = [s for s in report.samples if s.ok and s.body == previous and previous != version]
            # nginx passes a reply cut off by a killed worker on as HTTP/0.9: a 200 whose body is
            # a fragment. The load counts it as ok; it is no version, so it is counted here.
            wrong = [s.body for s in report.samples if s.ok and s.body not in (previous, version)]
            row.update(
                requests=report.total,
                failed=report.failures,
                failure_reasons=dict(report.failure_reasons),
                versions=list(dict.fromkeys(report.bodies_in_order)),  # in order of first answer
                # old and new answered in turn while both ran: each change of the served body counts
                version_flips=len(report.bodies_in_order) - 1,
                regressions=report.regressions,
                mixed_window_s=round(report.mixed_window_seconds, 3),
                max_gap_s=round(report.max_gap_seconds(), 3),
                rps=round(report.requests_per_second),
                old_version_last_answered_s=round(max(s.end for s in old) - started, 2) if old else None,
                ok_status_but_no_version=len(wrong),
                ok_status_but_no_version_bodies=sorted(set(wrong))[:5],
            )
        self._add(row)
        return ok and steady is not None

    def _add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        print(json.dumps(row), flush=True)


def run_steps(bench: Bench, project: PeerProject) -> None:
    """configure x2, first deploy, code-only redeploy and rollback under load."""
    configure = ("djaploy", "configure", "--env", ENV)
    deploy = ("djaploy", "deploy", "--env", ENV, "--latest")
    rollback = ("djaploy", "rollback", "--env", ENV)
    if not bench.plain("configure, fresh host", *configure):
        raise SystemExit("configure failed: see the row above")
    bench.plain("configure, second run (no changes)", *configure)
    first = bench.until_serving("first deploy (venv built)", "1", *deploy, timeout=FIRST_DEPLOY_TIMEOUT)
    if not first and bench.rows[-1].get("serving") is False:
        # Once more with the peer's own command, to show whether it was bad luck.
        first = bench.until_serving("first deploy, run again (same release)", "1", *deploy,
                                    timeout=FIRST_DEPLOY_TIMEOUT)
        if not first and bench.rows[-1].get("serving") is False:
            first = bench.manual_start("start the app service by hand (the peer leaves it stopped)", "1")
    if not first:
        raise SystemExit("the first deploy does not serve: see the rows above")
    bench.wait_handover_done()  # the first deploy's reload starts a handover too
    project.set_version("2")
    project.commit("version 2")
    bench.until_serving("zero_downtime code-only redeploy, under load", "2", *deploy, load=True)
    bench.wait_handover_done()
    bench.until_serving("zero_downtime rollback, under load", "1", *rollback, load=True)
    bench.wait_handover_done()


def print_table(rows: list[dict[str, Any]]) -> None:
    print("\n| what | seconds | command returned | requests | failed | req/s | versions (flips) | mixed window |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for row in rows:
        seconds = row["seconds"] if row.get("seconds") is not None else "failed"
        versions = " -> ".join(row.get("versions", []))
        versions += f" ({row['version_flips']})" if "version_flips" in row else ""
        window = f"{row['mixed_window_s']} s" if "mixed_window_s" in row else ""
        failed = row.get("failed", "")
        if row.get("ok_status_but_no_version"):
            failed = f"{failed} + {row['ok_status_but_no_version']} 200 without a version"
        print(f"| {row['what']} | {seconds} | {row['command_seconds']} | {row.get('requests', '')} | "
              f"{failed} | {row.get('rps', '')} | {versions} | {window} |")


def measure_peer(vm: SandboxHost, clients: int) -> dict[str, Any]:
    """The peer's rows on `vm`, a fresh host (bench/run.py gives it one of its sandbox's hosts)."""
    began = time.monotonic()  # run_minutes: the whole run, project set-up included
    ensure_tools()
    load_before = os.getloadavg()
    bench: Bench | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="djaploy-bench-peer-") as tmp:
            inventory = {"name": vm.name, "address": vm.address, "ssh_user": vm.sudo_user,
                         "key_path": vm.key_path, "known_hosts": vm.known_hosts_path}
            project = make_peer_project(Path(tmp) / "ledger", inventory, Path(tmp) / "bin")
            bench = Bench(project, vm, f"http://{vm.address}/version/", clients)
            run_steps(bench, project)
    except SystemExit as stopped:  # a step the peer could not do: its rows say which
        print(f"peer stopped: {stopped}", flush=True)
    return {"peer": f"djaploy {PEER_VERSION}", "clients": clients, "date": time.strftime("%Y-%m-%d"),
            "cores": os.cpu_count(),
            # other work on the machine shows here: compare within one run
            "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "run_minutes": round((time.monotonic() - began) / 60, 1), "rows": bench.rows if bench else []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--out", default=str(REPO / "bench" / "peer_results.json"))
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = parser.parse_args()

    sandbox, vm = boot()
    try:
        result = measure_peer(vm, args.clients)
    finally:
        if not args.keep:
            sandbox.down()
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print_table(result["rows"])


if __name__ == "__main__":
    main()
