"""Measure djaploy on sandbox hosts beside the floor (the same work by hand) in the same run.

    python bench/run.py [--clients 8] [--sandbox bench] [--out bench/results.json] [--keep]

Boots its own sandbox (2 Debian hosts), deploys a copy of infra_example and times each command
end to end (the wall time a user waits, Django start-up included), the switches with and without
HTTP load through nginx, and the same code-only redeploy and rollback done by hand in one SSH
session (bench/floor.py). Every djaploy row that has a floor row shows its ratio to it; each
djaploy command's seconds are split into the phases djaploy measured (DJAPLOY_TIMINGS_FILE), with
the peak memory of the deploying process. Last, `manage.py help` with djaploy in INSTALLED_APPS
and without it. Prints Markdown tables; writes JSON. Numbers are for this machine and this
moment: compare ratios within one run. (Memory with 8 hosts: bench/fleet_scale.py.)
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
from tests.e2e.conftest import Project, make_project  # noqa: E402

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


class Bench:
    """One run: the project, its sandbox hosts, and the rows measured so far."""

    def __init__(self, project: Project, url: str, clients: int) -> None:
        self.project, self.url, self.clients = project, url, clients
        self.rows: list[dict[str, Any]] = []
        self._versions = iter(range(2, 1000))

    def inventory(self, strategy: str) -> None:
        for env, (first, last) in ENVIRONMENTS.items():
            self.project.write(f"infra/inventory/{env}.py", INVENTORY.format(strategy=strategy, first=first, last=last))

    def timed(self, label: str, *command: str, load: bool = False, floor_of: str | None = None) -> None:
        """A djaploy command; `floor_of` names the floor row it is compared with."""
        row = measure(label, lambda: run_manage(self.project.root, self.project.env, *command), url=self.url,
                      clients=self.clients, load=load, switches=floor_of is not None)
        row.update(command=" ".join(command), **({"floor": floor_of} if floor_of else {}))
        self.rows.append(row)

    def by_hand(self, label: str, step: Any, *, load: bool, key: str) -> None:
        row = measure(label, step, url=self.url, clients=self.clients, load=load, switches=True)
        row.update(key=key)
        self.rows.append(row)

    def new_version(self) -> str:
        """A code-only change (same dependencies): the next version number, committed."""
        name = str(next(self._versions))
        self.project.set_version(name)
        self.project.commit(f"version {name}")
        return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--sandbox", default="bench", help="the sandbox's name (its hosts are its own)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results.json"))
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    parser.add_argument("--no-peer", action="store_true", help="skip djaploy 1.6.2 (bench/peer.py) on a third host")
    args = parser.parse_args()

    sandbox = Sandbox(name=args.sandbox)
    sandbox.down()
    vms = sandbox.up(count=2 if args.no_peer else 3)  # the third: a fresh host for the peer
    extra: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="djaploy-bench-") as tmp:
            project = make_project(Path(tmp) / "ledger", sandbox_name=args.sandbox)
            bench = Bench(project, f"http://{vms[0].address}/version/", args.clients)
            run_steps(bench, vms[0])
            extra["manage_py_help"] = manage_py_help(project)
            print(json.dumps(extra), flush=True)
            if not args.no_peer:
                from bench.peer import measure_peer

                extra["peer"] = measure_peer(vms[2], args.clients)
            save(args, bench.rows, extra)
    finally:
        if not args.keep:
            sandbox.down()
    print()
    print(markdown(json.loads(Path(args.out).read_text())))


def run_steps(bench: Bench, vm: Any) -> None:
    """Every measured step, in order; the floor runs between djaploy's redeploys and rollbacks."""
    timed = bench.timed
    bench.inventory("zero_downtime")
    bench.project.commit("bench inventories")
    timed("configureserver, fresh host", "configureserver", "--env", "one")
    timed("configureserver, no changes", "configureserver", "--env", "one")
    timed("first deploy (venv built)", "deploy", "--env", "one", "--latest")
    timed("configureserver, no changes", "configureserver", "--env", "one", load=True)
    for load in (False, True):
        bench.new_version()
        timed("zero_downtime code-only redeploy", "deploy", "--env", "one", "--latest", load=load, floor_of="redeploy")
    for number, load in enumerate((False, True), start=1):
        back_to = floor.live_release_dir(vm)
        back_version = served_version(bench.url)  # djaploy's live release, which the floor's rollback restores
        name = bench.new_version()
        bench.by_hand("floor: code-only redeploy by hand",
                      lambda: floor.redeploy(vm, bench.project.root, f"floor-{number}", name), load=load, key="redeploy")
        bench.by_hand("floor: rollback by hand", lambda: floor.rollback(vm, back_to, back_version),
                      load=load, key="rollback")
    for load in (False, True):
        timed("zero_downtime rollback", "rollback", "--env", "one", load=load, floor_of="rollback")
    bench.new_version()
    timed("configureserver, 2 hosts (one fresh)", "configureserver", "--env", "two")
    timed("zero_downtime deploy, 2 hosts in parallel (one first deploy)", "deploy", "--env", "two", "--latest")
    bench.new_version()
    timed("zero_downtime code-only redeploy, 2 hosts in parallel", "deploy", "--env", "two", "--latest")
    bench.inventory("bluegreen")
    bench.project.commit("bluegreen")
    timed("switch strategy zero_downtime -> bluegreen", "deploy", "--env", "one", "--latest", load=True)
    for load in (False, True):
        bench.new_version()
        timed("bluegreen deploy (stage)", "deploy", "--env", "one", "--latest", load=load)
        timed("bluegreen activate", "activate", "--env", "one", load=load)
        timed("bluegreen rollback", "rollback", "--env", "one", load=load)
        timed("bluegreen rollback (back again)", "rollback", "--env", "one", load=load)
    bench.inventory("zero_downtime")
    bench.project.commit("back to zero_downtime")
    timed("switch strategy bluegreen -> zero_downtime", "deploy", "--env", "one", "--latest", load=True)


def save(args: argparse.Namespace, rows: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    results = {"clients": args.clients, "cpus": os.cpu_count(), "rows": rows, **extra}
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


def manage_py_help(project: Project) -> dict[str, Any]:
    """`manage.py help` with djaploy in INSTALLED_APPS and without it: the price of the app."""
    project.write("ledger/settings_without_djaploy.py", WITHOUT_DJAPLOY)
    timings = help_timings(project.root, project.env, {"with": "ledger.settings", "without": "ledger.settings_without_djaploy"})
    timings["difference_ms"] = {kind: round((timings["with"][kind] - timings["without"][kind]) * 1000)
                                for kind in ("wall_s", "cpu_s")}
    return timings


def served_version(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode().strip()


if __name__ == "__main__":
    os.environ.setdefault("LEDGER_SECRET_KEY", "bench-secret-" + "x" * 40)
    main()
