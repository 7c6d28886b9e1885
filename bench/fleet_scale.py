"""Fleet scale: a code-only redeploy of 1, 4 and 8 web hosts (plus an lb host and a db host) in one run.

    python bench/fleet_scale.py [--batch-size N|P%] [--out bench/fleet_scale.json]     # as root

Boots its own sandbox ("fleetscale", 10 hosts: lb, db, web1..web8), provisions them and deploys a copy
of infra_example (zero_downtime, PostgreSQL on the db host, HAProxy on the lb host). Then, for 1, 4
and 8 web hosts (environments scale1, scale4, scale8 over the same hosts), one warm-up deploy and
one timed code-only redeploy (a new version: same dependencies, so no venv is built), with the time
of each phase per host as the summary reports them, the ratio 8 hosts / 1 host, and the peak
memory (max RSS) of the deploying `manage.py deploy` process. Rolling switches through the LB use
the default batch size (1 with a load balancer) unless `--batch-size` says otherwise. Prints a
Markdown table; writes JSON. Numbers are for this machine and this moment: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from djaploy.sandbox import Sandbox  # noqa: E402
from tests.e2e.conftest import make_project  # noqa: E402

SANDBOX = "fleetscale"
WEB_COUNTS = (1, 4, 8)
PASSWORD_VARIABLE = "LEDGER_DB_PASSWORD"

CONFIG = '''
from djaploy.config import DEFAULT_MODULES, DjaployConfig

config = DjaployConfig(
    project_name="ledger",
    deployment_strategy="zero_downtime",
    health_check_path="/health/",
    env_vars={{"DJANGO_DEBUG": "0"}},
    secrets={{"DJANGO_SECRET_KEY": "env:LEDGER_SECRET_KEY"}},
    modules=[*DEFAULT_MODULES, "djaploy.modules.postgres", "djaploy.modules.haproxy"],
    module_options={{"postgres": {{"password": "env:{password}"}}}},
)
'''

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vms = sandbox_hosts()
def host(name, vm, roles):
    return HostConfig(name, ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                      domains=["shop.test"], env_vars={{"DJANGO_ALLOWED_HOSTS": "shop.test"}}, roles=roles)

hosts = [host("lb", vms[0], ["lb"]), host("db", vms[1], ["db"])]
hosts += [host(f"web{{i}}", vms[1 + i], ["web"]) for i in range(1, {web} + 1)]
'''

PHASES = re.compile(r"^\[(\S+)\]\s+phases: (.*)$", re.MULTILINE)


def peak_child_rss_mib() -> float:
    """The largest resident set of any child waited for so far (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", help="deploy --batch-size for every deploy (default: the LB's default, 1)")
    parser.add_argument("--out", default=str(REPO / "bench" / "fleet_scale.json"))
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = parser.parse_args()

    sandbox = Sandbox(name=SANDBOX)
    sandbox.up(count=2 + max(WEB_COUNTS))
    rows: list[dict] = []
    try:
        with tempfile.TemporaryDirectory(prefix="djaploy-fleet-scale-") as tmp:
            project = make_project(Path(tmp) / "ledger", sandbox_name=SANDBOX)
            project.write("infra/config.py", CONFIG.format(password=PASSWORD_VARIABLE))
            # PostgreSQL from DATABASE_URL, as docs/postgres.md shows (the example's settings read it)
            requirements = (project.root / "requirements.txt").read_text()
            project.write("requirements.txt", requirements + "psycopg[binary]>=3.1\ndj-database-url>=2\n")
            for web in WEB_COUNTS:
                project.write(f"infra/inventory/scale{web}.py", INVENTORY.format(web=web))
            project.commit("fleet scale inventories")
            version = [1]

            def manage(label: str, *command: str, timed: bool = True) -> subprocess.CompletedProcess:
                started = time.monotonic()
                result = project.manage(*command)
                seconds = time.monotonic() - started
                if result.returncode != 0:
                    raise SystemExit(f"{label} failed:\n{result.stdout}\n{result.stderr}")
                if timed:
                    row = {"what": label, "command": " ".join(command), "seconds": round(seconds, 2),
                           "peak_rss_mib_so_far": round(peak_child_rss_mib(), 1),
                           "phases": dict(PHASES.findall(result.stdout))}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                return result

            def redeploy(env: str) -> list[str]:
                version[0] += 1
                project.set_version(str(version[0]))
                project.commit(f"version {version[0]}")
                batch = ["--batch-size", args.batch_size] if args.batch_size else []
                return ["deploy", "--env", env, "--latest", *batch]

            biggest = f"scale{max(WEB_COUNTS)}"
            manage(f"configureserver, lb + db + {max(WEB_COUNTS)} web (fresh)", "configureserver", "--env", biggest)
            manage(f"first deploy, {max(WEB_COUNTS)} web hosts (venvs built)", *redeploy(biggest))
            for web in WEB_COUNTS:
                manage(f"warm-up deploy, {web} web host(s)", *redeploy(f"scale{web}"), timed=False)
                manage(f"code-only redeploy, {web} web host(s) + lb + db", *redeploy(f"scale{web}"))
    finally:
        if not args.keep:
            sandbox.down()

    redeploys = {int(re.search(r"(\d+) web", row["what"]).group(1)): row["seconds"]
                 for row in rows if row["what"].startswith("code-only")}
    ratio = round(redeploys[max(WEB_COUNTS)] / redeploys[min(WEB_COUNTS)], 2) if redeploys else None
    Path(args.out).write_text(json.dumps({"batch_size": args.batch_size, "rows": rows,
                                          "ratio_8_to_1": ratio}, indent=2) + "\n")
    print("\n| what | seconds | peak RSS of the deploying process (MiB) |")
    print("|---|---:|---:|")
    for row in rows:
        print(f"| {row['what']} | {row['seconds']} | {row['peak_rss_mib_so_far']} |")
    print(f"\nratio code-only redeploy {max(WEB_COUNTS)} web hosts / 1: {ratio}")
    print("where the time goes (per host, last redeploy):")
    for host, phases in rows[-1]["phases"].items():
        print(f"  {host}: {phases}")


if __name__ == "__main__":
    os.environ.setdefault("LEDGER_SECRET_KEY", "bench-secret-" + "x" * 40)
    os.environ.setdefault(PASSWORD_VARIABLE, "bench-db-" + "y" * 20)
    main()
