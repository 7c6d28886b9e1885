"""Versions people can talk about, on sandbox hosts: two production deploys tag v0.1.0 then v0.1.1
and push them to a real bare `origin`; staging announces and tags nothing; a redeploy of a tagged
commit reuses its changelog; a failing release is announced with its host and step and tags
nothing; VERSION on the host follows deploys and rollbacks; a refused push fails the command
while the release serves. The webhook and Slack servers run on this (the deploying) machine.
"""

from __future__ import annotations

import hashlib
import hmac
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import SANDBOX_NAME, Project, http_get
from tests.local_http import LocalServer, local_server

APP = "/home/ledger/apps/ledger"
SECRET = "e2e-webhook-signing-secret"
CONFIG = '''
from djaploy.config import DjaployConfig

config = DjaployConfig(
    project_name="ledger",
    health_check_path="/health/",
    env_vars={"DJANGO_DEBUG": "0"},
    secrets={"DJANGO_SECRET_KEY": "env:LEDGER_SECRET_KEY"},
    versioning={"tag_environments": ["production"], "increment": "patch", "push_tags": True},
    notifications={
        "slack": {"webhook_url": "env:SLACK_WEBHOOK_URL"},
        "webhook": {"url": "env:DEPLOY_WEBHOOK_URL", "secret": "env:DEPLOY_WEBHOOK_SECRET"},
        "notify_on_failure": True,
    },
)
'''
INVENTORY = '''
from djaploy.config import HostConfig
from djaploy.sandbox import sandbox_hosts

vm = sandbox_hosts()[{index}]
hosts = [HostConfig("{name}", ssh_host=vm.address, ssh_key=vm.key_path, ssh_known_hosts_file=vm.known_hosts_path,
                    domains=[vm.address], deployment_strategy="zero_downtime",
                    env_vars={{"DJANGO_ALLOWED_HOSTS": vm.address}})]
'''


@dataclass
class Setup:
    project: Project
    hosts: dict  # env -> sandbox VPS
    origin: str
    webhook: LocalServer
    slack: LocalServer

    def events(self) -> list[dict]:
        for request in self.webhook.requests:  # every body is signed with the secret
            expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
            assert request.headers["X-Djaploy-Signature"] == expected
        return [request.json() for request in self.webhook.requests]

    def remote(self, env: str, command: str) -> str:
        from djaploy.sandbox import Sandbox

        result = Sandbox(name=SANDBOX_NAME).run(self.hosts[env], command)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def version_file(self, env: str) -> dict[str, str]:
        text = self.remote(env, f"cat {APP}/current/VERSION")
        return dict(line.split("=", 1) for line in text.splitlines())

    def origin_tags(self) -> list[str]:
        return subprocess.run(["git", "-C", self.origin, "tag", "--list"], capture_output=True, text=True,
                              check=True).stdout.split()

    def release(self, version: str, subject: str) -> None:
        self.project.set_version(version)
        self.project.commit(subject)


@pytest.fixture(scope="module")
def setup(project: Project, sandbox_hosts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    origin = str(tmp_path_factory.mktemp("origin") / "ledger.git")
    subprocess.run(["git", "init", "-q", "--bare", origin], check=True)
    project.git("remote", "add", "origin", origin)
    project.write("infra/config.py", CONFIG)
    project.write("infra/inventory/production.py", INVENTORY.format(index=0, name="web"))
    project.write("infra/inventory/staging.py", INVENTORY.format(index=1, name="stage"))
    project.commit("versioned inventory")
    with local_server(200, "ok") as webhook, local_server(200, "ok") as slack:
        project.env.update(DEPLOY_WEBHOOK_URL=f"{webhook.url}/deploys", DEPLOY_WEBHOOK_SECRET=SECRET,
                           SLACK_WEBHOOK_URL=f"{slack.url}/services/T0/B0/e2e-token")
        for env in ("production", "staging"):
            project.manage("configureserver", "--env", env, check=True)
        yield Setup(project, {"production": sandbox_hosts[0], "staging": sandbox_hosts[1]}, origin, webhook, slack)


def served(setup: Setup, env: str) -> str:
    status, body = http_get(f"http://{setup.hosts[env].address}/version/")
    assert status == 200, body
    return body.strip()


def test_two_production_deploys_tag_and_push_v0_1_0_then_v0_1_1(setup: Setup) -> None:
    project = setup.project
    setup.release("100", "add CSV export")
    first = project.manage("deploy", "--env", "production", "--latest", check=True)
    assert "version: v0.1.0 tagged on" in first.stdout and "pushed to origin" in first.stdout
    setup.release("101", "fix totals")
    second = project.manage("deploy", "--env", "production", "--latest", check=True)
    assert "version: v0.1.1 tagged on" in second.stdout
    assert setup.origin_tags() == ["v0.1.0", "v0.1.1"]
    notes = project.git("for-each-ref", "refs/tags/v0.1.1", "--format=%(contents)")
    assert "- fix totals" in notes and "add CSV export" not in notes
    assert "- add CSV export" in project.git("for-each-ref", "refs/tags/v0.1.0", "--format=%(contents)")
    events = setup.events()
    assert [(e["event"], e["environment"], e["version"], e["tagged"]) for e in events] == [
        ("deploy.succeeded", "production", "v0.1.0", True), ("deploy.succeeded", "production", "v0.1.1", True)]
    assert events[1]["changelog"] == "- fix totals" and events[1]["hosts"] == ["web"]
    assert events[1]["commit"] == project.git("rev-parse", "HEAD").strip()
    assert "v0.1.1" in setup.slack.requests[-1].json()["text"] and "fix totals" in setup.slack.requests[-1].json()["text"]
    assert served(setup, "production") == "101"
    version = setup.version_file("production")
    assert (version["VERSION"], version["COMMIT"], version["ENVIRONMENT"]) == ("v0.1.1", events[1]["commit"], "production")
    assert 'DJAPLOY_VERSION="v0.1.1"' in setup.remote("production", f"cat {APP}/current/.djaploy-env")
    assert "live version: v0.1.1" in project.manage("status", "--env", "production", check=True).stdout


def test_staging_announces_its_version_and_tags_nothing_and_a_tagged_commit_reuses_its_changelog(setup: Setup) -> None:
    project = setup.project
    before = len(setup.webhook.requests)
    setup.release("102", "try a new report")
    project.manage("deploy", "--env", "staging", "--latest", check=True)
    project.manage("deploy", "--env", "staging", "--release", "v0.1.1", check=True)
    staged, redeployed = setup.events()[before:]
    assert (staged["environment"], staged["version"], staged["tagged"]) == ("staging", "v0.1.2", False)
    assert staged["changelog"] == "- try a new report"
    assert "v0.1.2" not in project.git("tag", "--list").split() and "v0.1.2" not in setup.origin_tags()
    annotation = project.git("for-each-ref", "refs/tags/v0.1.1", "--format=%(contents)")
    assert (redeployed["version"], redeployed["tagged"]) == ("v0.1.1", False)
    assert redeployed["changelog"] == annotation.split("\n\n", 1)[1].strip()
    assert setup.version_file("staging")["VERSION"] == "v0.1.1" and served(setup, "staging") == "101"


def test_rollback_serves_and_shows_the_previous_version(setup: Setup) -> None:
    project = setup.project
    project.manage("rollback", "--env", "production", check=True)
    assert served(setup, "production") == "100" and setup.version_file("production")["VERSION"] == "v0.1.0"
    assert "live version: v0.1.0" in project.manage("status", "--env", "production", check=True).stdout
    event = setup.events()[-1]
    assert (event["event"], event["version"]) == ("rollback.succeeded", "v0.1.0")
    annotation = project.git("for-each-ref", "refs/tags/v0.1.0", "--format=%(contents)")
    assert event["changelog"] == annotation.split("\n\n", 1)[1].strip()
    assert event["changelog"].startswith("- add CSV export\n")  # the first version lists every commit


def test_a_failing_release_is_announced_with_host_and_step_and_tags_nothing(setup: Setup) -> None:
    project = setup.project
    views = project.root / "entries/views.py"
    original = views.read_text()
    views.write_text(original.replace("def health(request):\n",
                                      "def health(request):\n    return HttpResponse('broken', status=500)\n", 1))
    project.commit("break the health check")
    try:
        failed = project.manage("deploy", "--env", "production", "--latest")
    finally:
        project.git("reset", "-q", "--hard", "HEAD~1")
    assert failed.returncode != 0 and "HTTP 500" in failed.stderr
    event = setup.events()[-1]
    assert (event["event"], event["failed_host"], event["version"]) == ("deploy.failed", "web", "v0.1.2")
    assert "health gate" in event["failed_step"] and "500" in event["error"]
    assert "FAILED on web" in setup.slack.requests[-1].json()["text"]
    assert "v0.1.2" not in project.git("tag", "--list").split() and setup.origin_tags() == ["v0.1.0", "v0.1.1"]
    assert served(setup, "production") == "100"  # the rolled-back release still serves


def test_a_refused_push_fails_the_command_while_the_release_serves(setup: Setup) -> None:
    project = setup.project
    hook = f"{setup.origin}/hooks/pre-receive"
    with open(hook, "w") as handle:
        handle.write("#!/bin/sh\necho 'tags are frozen during the audit' >&2\nexit 1\n")
    subprocess.run(["chmod", "755", hook], check=True)
    setup.release("103", "ship the report")
    result = project.manage("deploy", "--env", "production", "--latest")
    assert result.returncode != 0
    assert "tags are frozen during the audit" in result.stderr
    assert f"retry: git -C {project.root} push origin refs/tags/v0.1.2" in result.stderr
    assert "[web] ok" in result.stdout and "TAG NOT PUSHED" in result.stdout
    assert served(setup, "production") == "103" and setup.version_file("production")["VERSION"] == "v0.1.2"
    assert "v0.1.2" in project.git("tag", "--list").split() and "v0.1.2" not in setup.origin_tags()
