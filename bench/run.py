"""Measure djaploy on sandbox hosts against the floor (the same work by hand) in the same run.

    python bench/run.py [--clients 8] [--sandbox bench] [--fleet 8] [--out bench/results.json]

Boots its own sandbox (2 hosts; `--fleet N` boots N more for one memory row), deploys a copy of
infra_example and times each command end to end (the wall time a user waits, Django start-up
included), each switch with and without HTTP load through nginx. Every djaploy row that has a
floor row prints its ratio to it. Prints a Markdown table; writes JSON.
Numbers are for this machine and this moment: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import floor  # noqa: E402
from bench.measure import help_timings, measure, run_manage  # noqa: E402
from bench.table import markdown  # noqa: E402
from djaploy.sandbox import Sandbox  # noqa: E402
from tests.e2e.conftest import make_project  # noqa: E402

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vms = sandbox_hosts()[{first}:{last}]
hosts = [HostConfig(vm.name, ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                    domains=[vm.address], deployment_strategy="{strategy}", env_vars={{"DJANGO_ALLOWED_HOSTS": vm.address}})
         for vm in vms]
'''
ENVIRONMENTS = {"one": (0, 1), "two": (0, 2)}
WITHOUT_DJAPLOY = "from ledger.settings import *  # noqa\nINSTALLED_APPS = [a for a in INSTALLED_APPS if a != 'djaploy']\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--sandbox", default="bench", help="sandbox name (hosts are its own)")
    parser.add_argument("--fleet", type=int, default=0, help="also deploy to this many fresh hosts (memory row)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results.json"))
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = parser.parse_args()

    sandbox = Sandbox(name=args.sandbox)
    sandbox.down()
    vms = sandbox.up(count=2)
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="djaploy-bench-") as tmp:
            project = make_project(Path(tmp) / "ledger", sandbox_name=args.sandbox)
            url = f"http://{vms[0].address}/version/"

            def inventory(strategy: str) -> None:
                for env, (first, last) in ENVIRONMENTS.items():
                    project.write(f"infra/inventory/{env}.py", INVENTORY.format(strategy=strategy, first=first, last=last))

            def timed(label: str, *command: str, load: bool = False, floor_of: str | None = None) -> None:
                row = measure(label, lambda: run_manage(project.root, project.env, *command), url=url,
                              clients=args.clients, load=load)
                row.update(command=" ".join(command), **({"floor": floor_of} if floor_of else {}))
                rows.append(row)

            def by_hand(label: str, step: Any, *, load: bool, key: str) -> None:
                row = measure(label, step, url=url, clients=args.clients, load=load)
                row.update(key=key)
                rows.append(row)

            version = iter(range(2, 100))

            def new_version() -> str:
                name = str(next(version))
                project.set_version(name)
                project.commit(f"version {name}")
                return name

            inventory("zero_downtime")
            project.commit("bench inventories")
            timed("configureserver, fresh host", "configureserver", "--env", "one")
            timed("configureserver, no changes", "configureserver", "--env", "one")
            timed("first deploy (venv built)", "deploy", "--env", "one", "--latest")
            timed("configureserver, no changes", "configureserver", "--env", "one", load=True)
            for load in (False, True):
                new_version()
                timed("zero_downtime code-only redeploy", "deploy", "--env", "one", "--latest", load=load,
                      floor_of="redeploy")
            for number, load in enumerate((False, True), start=1):
                back_to = floor.live_release_dir(vms[0])
                back_version = served_version(url)  # djaploy's live release, which the floor's rollback restores
                name = new_version()
                by_hand("floor: code-only redeploy by hand", lambda: floor.redeploy(vms[0], project.root, f"floor-{number}", name),
                        load=load, key="redeploy")
                by_hand("floor: rollback by hand", lambda: floor.rollback(vms[0], back_to, back_version),
                        load=load, key="rollback")
            for load in (False, True):
                timed("zero_downtime rollback", "rollback", "--env", "one", load=load, floor_of="rollback")
            new_version()
            timed("configureserver, 2 hosts (one fresh)", "configureserver", "--env", "two")
            timed("zero_downtime deploy, 2 hosts in parallel (one first deploy)", "deploy", "--env", "two", "--latest")
            new_version()
            timed("zero_downtime code-only redeploy, 2 hosts in parallel", "deploy", "--env", "two", "--latest")
            inventory("bluegreen")
            project.commit("bluegreen")
            timed("switch strategy zero_downtime -> bluegreen", "deploy", "--env", "one", "--latest", load=True)
            for load in (False, True):
                new_version()
                timed("bluegreen deploy (stage)", "deploy", "--env", "one", "--latest", load=load)
                timed("bluegreen activate", "activate", "--env", "one", load=load)
                timed("bluegreen rollback", "rollback", "--env", "one", load=load)
                timed("bluegreen rollback (back again)", "rollback", "--env", "one", load=load)
            inventory("zero_downtime")
            project.commit("back to zero_downtime")
            timed("switch strategy bluegreen -> zero_downtime", "deploy", "--env", "one", "--latest", load=True)

            extra["manage_py_help"] = manage_py_help(project)
            print(json.dumps(extra), flush=True)
            save(args, rows, extra)
            if args.fleet:
                try:
                    extra["fleet"] = fleet_rows(sandbox, project, args.fleet, rows)
                except BaseException as error:  # noqa: BLE001 - the main table is kept; the README says why
                    extra["fleet"] = {"hosts": args.fleet, "error": f"{type(error).__name__}: {str(error)[:300]}"}
                save(args, rows, extra)
    finally:
        if not args.keep:
            sandbox.down()
    print()
    print(markdown(json.loads(Path(args.out).read_text())))


def save(args: argparse.Namespace, rows: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    results = {"clients": args.clients, "cpus": os.cpu_count(), "rows": rows, **extra}
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


def manage_py_help(project: Any) -> dict[str, Any]:
    """`manage.py help` with djaploy in INSTALLED_APPS and without it: the price of the app."""
    project.write("ledger/settings_without_djaploy.py", WITHOUT_DJAPLOY)
    timings = help_timings(project.root, project.env, {"with": "ledger.settings", "without": "ledger.settings_without_djaploy"})
    timings["difference_ms"] = {kind: round((timings["with"][kind] - timings["without"][kind]) * 1000)
                                for kind in ("wall_s", "cpu_s")}
    return timings


def served_version(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode().strip()


def fleet_rows(sandbox: Sandbox, project: Any, count: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Peak memory of the deploying process with `count` hosts (fresh ones, after the two)."""
    sandbox.up(count=2 + count)
    project.write("infra/inventory/fleet.py", INVENTORY.format(strategy="zero_downtime", first=2, last=2 + count))
    project.commit("fleet inventory")
    for label, command in ((f"configureserver, {count} fresh hosts", "configureserver"),
                           (f"first deploy, {count} hosts", "deploy")):
        args = [command, "--env", "fleet"] + (["--latest"] if command == "deploy" else [])
        outcome = run_manage(project.root, project.env, *args)
        row = {"what": label, "load": False, "seconds": round(outcome.seconds, 2), "phases": outcome.phases,
               "peak_rss_mib": outcome.peak_rss_mib, "command": " ".join(args)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return {"hosts": count}


if __name__ == "__main__":
    os.environ.setdefault("LEDGER_SECRET_KEY", "bench-secret-" + "x" * 40)
    main()
