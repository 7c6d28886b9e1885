"""A fleet end to end, on three sandbox hosts of its own: web1 (web), web2 (web, worker), db1 (db, PostgreSQL).

zero_downtime; config.py's modules add djaploy.modules.postgres, and `workers` a `recorder` worker.
The project is a copy of infra_example plus a test app, `fleetcheck`:

- every `migrate` run records one MigrateRun row (post_migrate: host and DJAPLOY_RELEASE), so the rows
  of a release prove its migrations ran exactly once, on the primary;
- the worker (`manage.py fleet_worker`) records a WorkerBeat with its DJAPLOY_RELEASE when it starts,
  and runs queued Jobs; TERM lets the job in flight finish before it exits.

configureserver (the second changes nothing), deploy, data written through web1 read through web2,
the worker on the new release and a job finished across a deploy, status as one table, rollback of
the whole environment, and bad input (two primaries, a db host without the module) touching no host.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import (
    SANDBOX_NAME,
    Project,
    fresh_sandbox,
    http_get,
    http_post_json,
    make_project,
)

ENV = "fleet"
PASSWORD_VARIABLE = "LEDGER_DB_PASSWORD"
PASSWORD = "fleet-pw-$x 'q' @/" + uuid.uuid4().hex[:6]

CONFIG = '''
from djaploy.config import DEFAULT_MODULES, DjaployConfig

config = DjaployConfig(
    project_name="ledger",
    deployment_strategy="zero_downtime",
    health_check_path="/health/",
    env_vars={"DJANGO_DEBUG": "0"},
    secrets={"DJANGO_SECRET_KEY": "env:LEDGER_SECRET_KEY"},
    modules=[*DEFAULT_MODULES, "djaploy.modules.postgres"],
    module_options={"postgres": {"password": "env:LEDGER_DB_PASSWORD"}},
    workers={"recorder": {"command": "manage.py fleet_worker", "stop_grace_seconds": 60}},
)
'''

INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

web1, web2, db1 = sandbox_hosts()[:3]
hosts = [
    HostConfig(name, ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
               domains=[vm.address], env_vars={"DJANGO_ALLOWED_HOSTS": vm.address}, roles=roles{extra})
    for name, vm, roles in (("web1", web1, ["web"]), ("web2", web2, ["web", "worker"]), ("db1", db1, ["db"]))
]
'''

FLEETCHECK = {
    "fleetcheck/__init__.py": "",
    "fleetcheck/models.py": '''from django.db import models


class MigrateRun(models.Model):
    host = models.CharField(max_length=100)
    release = models.CharField(max_length=200)


class WorkerBeat(models.Model):
    host = models.CharField(max_length=100)
    release = models.CharField(max_length=200)


class Job(models.Model):
    seconds = models.IntegerField()
    state = models.CharField(max_length=20, default="queued")
    release = models.CharField(max_length=200, blank=True)
''',
    "fleetcheck/apps.py": '''import os
import socket

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def record_migrate_run(sender, **kwargs):
    from fleetcheck.models import MigrateRun

    MigrateRun.objects.create(host=socket.gethostname(), release=os.environ.get("DJAPLOY_RELEASE", ""))


class FleetcheckConfig(AppConfig):
    name = "fleetcheck"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        post_migrate.connect(record_migrate_run, sender=self)
''',
    "fleetcheck/migrations/__init__.py": "",
    "fleetcheck/migrations/0001_initial.py": '''from django.db import migrations, models


def fields(*extra):
    return [("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)), *extra]


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("MigrateRun", fields(("host", models.CharField(max_length=100)),
                                                     ("release", models.CharField(max_length=200)))),
        migrations.CreateModel("WorkerBeat", fields(("host", models.CharField(max_length=100)),
                                                     ("release", models.CharField(max_length=200)))),
        migrations.CreateModel("Job", fields(("seconds", models.IntegerField()),
                                              ("state", models.CharField(default="queued", max_length=20)),
                                              ("release", models.CharField(blank=True, max_length=200)))),
    ]
''',
    "fleetcheck/management/__init__.py": "",
    "fleetcheck/management/commands/__init__.py": "",
    "fleetcheck/management/commands/fleet_worker.py": '''import os
import signal
import socket
import time

from django.core.management.base import BaseCommand
from django.db import transaction

from fleetcheck.models import Job, WorkerBeat


class Command(BaseCommand):
    help = "Record this release, then run queued jobs; TERM finishes the job in flight, then exits."

    def handle(self, *args, **options):
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        release = os.environ.get("DJAPLOY_RELEASE", "")
        WorkerBeat.objects.create(host=socket.gethostname(), release=release)
        while not stopping:
            with transaction.atomic():
                job = Job.objects.select_for_update(skip_locked=True).filter(state="queued").first()
                if job:
                    job.state = "running"
                    job.save()
            if job is None:
                time.sleep(0.3)
                continue
            time.sleep(job.seconds)  # the job; a signal does not cut the sleep short (PEP 475)
            # "+term": TERM arrived while the job ran, and the job still finished
            job.state, job.release = "done", release + ("+term" if stopping else "")
            job.save()
''',
}


def ssh(host, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    from djaploy.sandbox import Sandbox

    return Sandbox(name=SANDBOX_NAME).run(host, command, timeout=timeout)


def sql(db, query: str) -> str:
    result = ssh(db, f"runuser -u postgres -- psql -XAt -d ledger -c {shlex.quote(query)}")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def released(result: subprocess.CompletedProcess) -> str:
    match = re.search(r"^release (\S+) from ", result.stdout, re.MULTILINE)
    assert match, result.stdout
    return match.group(1)


def version_of(host) -> str:
    status, body = http_get(f"http://{host.address}/version/")
    assert status == 200, body
    return body.strip()


@pytest.fixture(scope="module")
def hosts() -> Iterator[list]:
    with fresh_sandbox(SANDBOX_NAME, 3) as booted:
        yield booted


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, hosts) -> Project:
    project = make_project(tmp_path_factory.mktemp("fleet") / "ledger")
    project.env[PASSWORD_VARIABLE] = PASSWORD
    project.write("infra/config.py", CONFIG)
    project.write(f"infra/inventory/{ENV}.py", INVENTORY.replace("{extra}", ""))
    project.write("infra/inventory/twoprimaries.py", INVENTORY.replace("{extra}", ", primary=True"))
    for path, text in FLEETCHECK.items():
        project.write(path, text)
    settings = (project.root / "ledger/settings.py").read_text()
    project.write("ledger/settings.py", settings + '\nINSTALLED_APPS.append("fleetcheck")\n')
    requirements = (project.root / "requirements.txt").read_text()
    project.write("requirements.txt", requirements + "psycopg[binary]>=3.1\ndj-database-url>=2\n")
    project.commit("a fleet: two web hosts, a worker, PostgreSQL on db1", tag="v2")
    return project


def deploy(project: Project) -> subprocess.CompletedProcess:
    return project.manage("deploy", "--env", ENV, "--latest", check=True)


def test_configureserver_twice_second_changes_nothing(project: Project, hosts) -> None:
    web1, _, db1 = hosts
    project.manage("configureserver", "--env", ENV, check=True)
    second = project.manage("configureserver", "--env", ENV, check=True)
    for name in ("web1", "web2", "db1"):
        assert f"[{name}] ok: no changes" in second.stdout, second.stdout
    # db1 holds PostgreSQL and nothing of the app: no app user, no web server site
    assert ssh(db1, "id -u ledger").returncode != 0
    assert ssh(db1, "test -e /etc/nginx/sites-enabled/ledger.conf").returncode != 0
    assert ssh(web1, "test -e /etc/nginx/sites-enabled/ledger.conf").returncode == 0


def test_deploy_migrates_once_and_both_web_hosts_share_the_database(project: Project, hosts) -> None:
    web1, web2, db1 = hosts
    result = deploy(project)
    release = released(result)
    assert "[db1] ok: no changes; no release (roles: db)" in result.stdout, result.stdout
    hostname = ssh(web1, "hostname").stdout.strip()
    assert sql(db1, f"SELECT host FROM fleetcheck_migraterun WHERE release = '{release}'").splitlines() == [hostname]
    assert ssh(db1, "test -e /home/ledger/apps/ledger/current").returncode != 0  # no release on the db host
    text = f"through web1 {uuid.uuid4().hex[:8]}"
    status, body = http_post_json(f"http://{web1.address}/api/entries/", {"text": text})
    assert status == 201, body
    status, listed = http_get(f"http://{web2.address}/api/entries/")
    assert status == 200 and text in listed, listed


def _wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError("timed out waiting")


def test_the_worker_runs_the_new_release_and_finishes_its_job_across_a_deploy(project: Project, hosts) -> None:
    import sys

    web1, web2, db1 = hosts
    _wait_for(lambda: sql(db1, "SELECT count(*) FROM fleetcheck_workerbeat") != "0")
    first = sql(db1, "SELECT release FROM fleetcheck_workerbeat ORDER BY id DESC LIMIT 1")
    assert ssh(web1, "systemctl cat ledger-worker-recorder.service").returncode != 0  # web1 is no worker host
    project.set_version("2.0.0")
    project.commit("version 2.0.0", tag="v3")
    deploying = subprocess.Popen([sys.executable, "manage.py", "deploy", "--env", ENV, "--latest"], cwd=project.root,
                                 env=project.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert deploying.stdout is not None
    lines = []
    for line in deploying.stdout:  # web2 staged: the workers restart only after every host went live
        lines.append(line)
        if line.startswith("[web2] core: collectstatic"):
            break
    job = sql(db1, "INSERT INTO fleetcheck_job (seconds, state, release) VALUES (30, 'queued', '') RETURNING id").splitlines()[0]
    _wait_for(lambda: sql(db1, f"SELECT state FROM fleetcheck_job WHERE id = {job}") == "running", 10)
    output = "".join(lines) + deploying.communicate(timeout=900)[0]
    assert deploying.returncode == 0, output
    release = re.search(r"^release (\S+) from ", output, re.MULTILINE).group(1)
    # TERM reached the worker while the job ran; the job finished on the old release, then the
    # worker restarted onto the new one.
    assert sql(db1, f"SELECT state, release FROM fleetcheck_job WHERE id = {job}") == f"done|{first}+term"
    _wait_for(lambda: sql(db1, "SELECT release FROM fleetcheck_workerbeat ORDER BY id DESC LIMIT 1") == release)
    assert sql(db1, f"SELECT count(*) FROM fleetcheck_migraterun WHERE release = '{release}'") == "1"
    assert version_of(web1) == version_of(web2) == "2.0.0"


def test_status_is_one_table_for_the_environment(project: Project) -> None:
    result = project.manage("status", "--env", ENV, check=True)
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.split()[:1] in (["web1"], ["web2"], ["db1"])}
    assert "web,worker" in rows["web2"] and "ledger-worker-recorder active" in rows["web2"], result.stdout
    lane = re.search(r"\[lane ([ab])\]", rows["web1"])  # the serving cell names the lane that serves
    assert lane and f"ledger-{lane[1]} active" in rows["web1"] and "free" in rows["web1"], result.stdout
    assert rows["db1"].split()[1] == "db"


def test_rollback_covers_the_whole_environment(project: Project, hosts) -> None:
    web1, web2, db1 = hosts
    beats = int(sql(db1, "SELECT count(*) FROM fleetcheck_workerbeat"))
    project.manage("rollback", "--env", ENV, check=True)
    assert version_of(web1) == version_of(web2) != "2.0.0"
    _wait_for(lambda: int(sql(db1, "SELECT count(*) FROM fleetcheck_workerbeat")) > beats)  # restarted onto it


def test_bad_fleets_touch_no_host(project: Project, hosts) -> None:
    web1 = hosts[0]
    audit = ssh(web1, "wc -l < /home/ledger/apps/ledger/.djaploy/audit.jsonl").stdout
    two = project.manage("deploy", "--env", "twoprimaries", "--latest")
    assert two.returncode != 0 and "primary=True" in two.stdout + two.stderr
    config = (project.root / "infra/config.py").read_text()
    project.write("infra/config.py", config.replace(', "djaploy.modules.postgres"', "")
                  .replace('module_options={"postgres": {"password": "env:LEDGER_DB_PASSWORD"}},', ""))
    try:
        no_module = project.manage("deploy", "--env", ENV, "--latest")
    finally:
        project.write("infra/config.py", config)
    assert no_module.returncode != 0 and "'db' role" in no_module.stdout + no_module.stderr
    assert ssh(web1, "wc -l < /home/ledger/apps/ledger/.djaploy/audit.jsonl").stdout == audit
