"""Measure djaploy on sandbox hosts: provisioning, deploys, switches, and requests failed under load.

    python bench/run.py [--clients 8] [--out bench/results.json]

Boots its own sandbox ("bench", 2 hosts), deploys a copy of infra_example and times each
command end to end (the wall time a user waits, Django start-up included), with continuous
HTTP load through nginx during every switch. Prints a Markdown table; writes JSON.
Numbers are for this machine and this moment: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from djaploy.loadgen import Load  # noqa: E402
from djaploy.sandbox import Sandbox  # noqa: E402
from tests.e2e.conftest import make_project  # noqa: E402

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vms = sandbox_hosts()[:{count}]
hosts = [HostConfig(vm.name, ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                    domains=[vm.address], deployment_strategy="{strategy}", env_vars={{"DJANGO_ALLOWED_HOSTS": vm.address}})
         for vm in vms]
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--out", default=str(REPO / "bench" / "results.json"))
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = parser.parse_args()

    sandbox = Sandbox(name="bench")
    vms = sandbox.up(count=2)
    rows: list[dict] = []
    try:
        with tempfile.TemporaryDirectory(prefix="djaploy-bench-") as tmp:
            project = make_project(Path(tmp) / "ledger", sandbox_name="bench")
            url = f"http://{vms[0].address}/version/"

            def inventory(strategy: str, count: int = 1) -> None:
                for env_count, env in ((1, "one"), (2, "two")):
                    project.write(f"infra/inventory/{env}.py", INVENTORY.format(strategy=strategy, count=env_count))

            def timed(label: str, *command: str, load: bool = False) -> None:
                started = time.monotonic()
                report = None
                if load:
                    with Load(url, clients=args.clients, max_seconds=600) as running:
                        time.sleep(0.5)
                        result = project.manage(*command)
                        seconds = time.monotonic() - started - 0.5
                        time.sleep(0.5)
                    report = running.report
                else:
                    result = project.manage(*command)
                    seconds = time.monotonic() - started
                if result.returncode != 0:
                    raise SystemExit(f"{label} failed:\n{result.stdout}\n{result.stderr}")
                row = {"what": label, "command": " ".join(command), "seconds": round(seconds, 2)}
                if report:
                    row.update(
                        requests=report.total,
                        failed=report.failures,
                        failure_reasons=dict(report.failure_reasons),
                        versions=report.bodies_in_order,
                        mixed_window_s=round(report.mixed_window_seconds, 3),
                        max_gap_s=round(report.max_gap_seconds(), 3),
                        rps=round(report.requests_per_second),
                    )
                rows.append(row)
                print(json.dumps(row), flush=True)

            def new_version(version: str) -> None:
                project.set_version(version)
                project.commit(f"version {version}")

            inventory("zero_downtime")
            project.commit("bench inventories")
            timed("configureserver, fresh host", "configureserver", "--env", "one")
            timed("configureserver, second run (no changes)", "configureserver", "--env", "one")
            timed("first deploy (venv built)", "deploy", "--env", "one", "--latest")
            new_version("2")
            timed("zero_downtime code-only redeploy, 1 host, under load", "deploy", "--env", "one", "--latest", load=True)
            timed("zero_downtime rollback, under load", "rollback", "--env", "one", load=True)
            new_version("3")
            timed("configureserver, 2 hosts (one fresh)", "configureserver", "--env", "two")
            timed("zero_downtime deploy, 2 hosts in parallel (one first deploy)", "deploy", "--env", "two", "--latest")
            new_version("4")
            timed("zero_downtime code-only redeploy, 2 hosts in parallel", "deploy", "--env", "two", "--latest")
            inventory("bluegreen")
            project.commit("bluegreen")
            timed("switch strategy zero_downtime -> bluegreen, under load", "deploy", "--env", "one", "--latest", load=True)
            new_version("5")
            timed("bluegreen deploy (stage), under load", "deploy", "--env", "one", "--latest", load=True)
            timed("bluegreen activate, under load", "activate", "--env", "one", load=True)
            timed("bluegreen rollback, under load", "rollback", "--env", "one", load=True)
            inventory("zero_downtime")
            project.commit("back to zero_downtime")
            timed("switch strategy bluegreen -> zero_downtime, under load", "deploy", "--env", "one", "--latest", load=True)
    finally:
        if not args.keep:
            sandbox.down()

    Path(args.out).write_text(json.dumps({"clients": args.clients, "rows": rows}, indent=2) + "\n")
    print("\n| what | seconds | requests | failed | versions seen | mixed window | longest stall |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for row in rows:
        versions = " -> ".join(row.get("versions", [])) if "versions" in row else ""
        print(
            f"| {row['what']} | {row['seconds']} | {row.get('requests', '')} | {row.get('failed', '')} | {versions} | "
            f"{str(row['mixed_window_s']) + ' s' if 'mixed_window_s' in row else ''} | {str(row['max_gap_s']) + ' s' if 'max_gap_s' in row else ''} |"
        )


if __name__ == "__main__":
    os.environ.setdefault("LEDGER_SECRET_KEY", "bench-secret-" + "x" * 40)
    main()
