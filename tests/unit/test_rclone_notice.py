"""The rclone module's failed-backup notice: what configureserver writes (nothing without Slack or
a webhook; the channels only into a 0600 file of root's), and the host program itself, run for
real against local HTTP servers, sending exactly what djaploy.notify would send for the event."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from djaploy.config import DjaployConfig, HostConfig, Target
from djaploy.context import HostContext
from djaploy.errors import ConfigError
from djaploy.inventory import resolve_targets
from djaploy.modules.rclone import Module
from djaploy.modules.rclone.failure_notice import hide
from djaploy.modules.rclone.files import backup_units
from djaploy.modules.rclone.notice import NOTICE_SCRIPT
from djaploy.modules.rclone.options import settings_for
from djaploy.notify import slack, webhook
from djaploy.notify.event import BackupEvent
from djaploy.render import render
from tests.local_http import local_server
from tests.unit.conftest import RecordingPlan

MODULES = ["djaploy.modules.core", "djaploy.modules.nginx", "djaploy.modules.systemd", "djaploy.modules.rclone"]
OPTIONS = {"remote": {"type": "s3", "provider": "Other", "endpoint": "https://s3.example.com",
                      "access_key_id": "env:BACKUP_KEY_ID", "secret_access_key": "env:BACKUP_SECRET"},
           "path": "shop-backups/production"}
KEY_ID, SECRET = "AKIA-backup-key-id-value", "backup-secret-access-key-value"
SLACK_URL, HOOK_URL, HOOK_SECRET = "https://hooks.slack.test/services/T0/B0/t0ken", "https://hooks.test/backups/t0ken", "signing-secret-value"
CHANNELS = {"slack": {"webhook_url": "env:SLACK_URL"}, "webhook": {"url": "env:HOOK_URL", "secret": "env:HOOK_SECRET"}}
NOTIFY_JSON, NOTICE_PROGRAM = "/etc/rclone-shop-notify.json", "/usr/local/lib/djaploy/backup-shop-failed.py"
FAILED_UNIT = "/etc/systemd/system/shop-backup-failed.service"
#: the failure unit djaploy wrote before the notice existed, byte for byte
LOG_ONLY_UNIT = """\
# Written by djaploy for shop (production). Changes are overwritten on configureserver.
# Started by shop-backup.service when a backup fails (OnFailure=): says so loudly in the journal and
# syslog, at priority "crit", with the failed run's last lines. `manage.py backup --env production --list`
# shows the last run's result too.
[Unit]
Description=Report a failed backup of shop (djaploy production)

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'journalctl -u shop-backup.service -n 20 --no-pager -o cat | logger -p daemon.crit -t shop-backup; \
logger -p daemon.crit -t shop-backup "BACKUP FAILED: shop-backup.service did not complete; the last complete backups are kept. \
See: journalctl -u shop-backup.service"'
"""


def target(notifications: dict[str, Any] | None) -> Target:
    config = DjaployConfig(project_name="shop", modules=MODULES, module_options={"rclone": OPTIONS},
                           notifications=notifications)
    return resolve_targets(config, [HostConfig("web1", ssh_host="203.0.113.10")], "production", environ={},
                           source_file="/infra/inventory/production.py")[0]


def configured(notifications: dict[str, Any] | None, monkeypatch: pytest.MonkeyPatch, plan: RecordingPlan | None = None,
               **environ: str) -> RecordingPlan:
    """configure_server's plan, with the deployer's environment `environ` (and the backup's keys)."""
    for name, value in {"BACKUP_KEY_ID": KEY_ID, "BACKUP_SECRET": SECRET, **environ}.items():
        monkeypatch.setenv(name, value)
    plan = plan or RecordingPlan()
    Module().configure_server(HostContext(env="production", target=target(notifications), plan=plan))  # type: ignore[arg-type]
    return plan


# --- what configureserver writes -------------------------------------------------------------------


@pytest.mark.parametrize("notifications", [None, {"notifiers": ["infra.notify.send"]},
                                           {**CHANNELS, "notify_on_failure": False},
                                           {**CHANNELS, "environments": {"production": {"slack": None, "webhook": None}}}])
def test_without_slack_or_a_webhook_nothing_is_written_and_the_failure_unit_only_logs(
        notifications: dict[str, Any] | None, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = configured(notifications, monkeypatch)
    assert NOTIFY_JSON not in plan.files and NOTICE_PROGRAM not in plan.files
    assert ("absent", "rclone: no failure notice channels") in plan.calls  # a former notice's tokens go
    assert plan.files[FAILED_UNIT][0] == LOG_ONLY_UNIT  # as before the notice existed: such hosts see no change


def test_slack_and_a_webhook_go_into_a_file_only_root_reads_and_the_failure_unit_sends_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    plan = configured(CHANNELS, monkeypatch, SLACK_URL=SLACK_URL, HOOK_URL=HOOK_URL, HOOK_SECRET=HOOK_SECRET)
    text, owner, mode = plan.files[NOTIFY_JSON]
    assert (owner, mode) == ("root", "600")
    assert json.loads(text) == {
        "project": "shop", "environment": "production", "host": "web1", "service": "shop-backup.service",
        "slack_webhook_url": SLACK_URL, "webhook_url": HOOK_URL, "webhook_secret": HOOK_SECRET, "timeout": 10.0,
        "hide": sorted([KEY_ID, SECRET])}
    assert plan.files[NOTICE_PROGRAM] == (NOTICE_SCRIPT, "root", "644")
    unit = plan.files[FAILED_UNIT][0]
    crit, notice = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert "logger -p daemon.crit" in crit  # logged first: a notice that fails hides nothing
    assert notice == f"ExecStart=/usr/bin/python3 {NOTICE_PROGRAM} {NOTIFY_JSON}"
    secrets = (SLACK_URL, HOOK_URL, HOOK_SECRET, KEY_ID, SECRET)
    for path, (content, _, file_mode) in plan.files.items():
        if file_mode != "600":
            assert not [secret for secret in secrets if secret in content], path
    assert not [command for command in plan.commands for secret in secrets if secret in command]


def test_the_channels_are_secret_values_read_leniently(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"BACKUP_KEY_ID": KEY_ID, "BACKUP_SECRET": SECRET, "SLACK_URL": SLACK_URL,
                        "HOOK_URL": HOOK_URL}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    hidden = Module().secret_values(target(CHANNELS), None)
    assert {KEY_ID, SECRET, SLACK_URL, HOOK_URL} <= set(hidden)  # HOOK_SECRET unset: `status` still works
    literal = Module().secret_values(target({"webhook": {"url": HOOK_URL}}), None)
    assert HOOK_URL in literal
    assert not {SLACK_URL, HOOK_URL} & set(Module().secret_values(target({**CHANNELS, "notify_on_failure": False}), None))


def test_an_unset_channel_variable_stops_configureserver_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    with pytest.raises(ConfigError, match=r"webhook_secret reads \$HOOK_SECRET, which is not set.*reports a failed backup"):
        configured(CHANNELS, monkeypatch, SLACK_URL=SLACK_URL, HOOK_URL=HOOK_URL)


def test_a_second_configureserver_changes_nothing_and_switching_channels_off_removes_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {"SLACK_URL": SLACK_URL, "HOOK_URL": HOOK_URL, "HOOK_SECRET": HOOK_SECRET}
    plan = configured(CHANNELS, monkeypatch, **environ)
    assert plan.commands[-1] == "service shop-backup.timer daemon_reload=True"
    configured(CHANNELS, monkeypatch, plan, **environ)
    assert plan.commands[-1] == "service shop-backup.timer daemon_reload=False"  # no unit changed
    configured(None, monkeypatch, plan)
    assert plan.commands[-1] == "service shop-backup.timer daemon_reload=True"
    assert plan.calls[-3:-1] == [("absent", "rclone: no failure notice channels"), ("absent", "rclone: no failure notice program")]


def test_the_unit_template_renders_the_notice_only_when_asked() -> None:
    ctx = HostContext(env="production", target=target(None), plan=RecordingPlan())  # type: ignore[arg-type]
    settings = settings_for(ctx.target, None, {"BACKUP_KEY_ID": KEY_ID, "BACKUP_SECRET": SECRET})
    with_notice = backup_units(ctx, settings, notice=True)["shop-backup-failed.service"]
    assert with_notice.count("ExecStart=") == 2 and NOTIFY_JSON in with_notice
    assert backup_units(ctx, settings)["shop-backup-failed.service"].count("ExecStart=") == 1
    assert render("rclone-backup-failed.service.j2", None, project="p", env="e", service="s", notice_script="",
                  notice_settings="").count("ExecStart=") == 1


# --- the program on the host, for real --------------------------------------------------------------


JOURNAL = ["backup 20260130T030012Z: database copied (8192 bytes)", f"rclone: AccessDenied for key {KEY_ID}",
           "backup failed: rclone copy exited with 1"]


def run_notice(tmp_path: Path, notice: dict[str, Any], **environ: str) -> subprocess.CompletedProcess[str]:
    """The program as the failure unit runs it: a clean environment (systemd's), a `journalctl`
    that prints the failed run's lines and records how it was asked."""
    script, settings, bin_dir = tmp_path / "notice.py", tmp_path / "notify.json", tmp_path / "bin"
    script.write_text(NOTICE_SCRIPT)
    settings.write_text(json.dumps(notice))
    bin_dir.mkdir(exist_ok=True)
    journalctl = bin_dir / "journalctl"
    journalctl.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path}/journalctl.argv\n"
                          + "".join(f"echo {json.dumps(line)}\n" for line in JOURNAL))
    journalctl.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **environ}
    return subprocess.run([sys.executable, str(script), str(settings)], capture_output=True, text=True, env=env, timeout=60)


def test_the_host_program_sends_what_djaploy_notify_would_send(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with local_server(200, "ok") as slack_server, local_server(204, b"") as hook_server:
        environ = {"SLACK_URL": f"{slack_server.url}/services/T/B/X", "HOOK_URL": f"{hook_server.url}/backups",
                   "HOOK_SECRET": HOOK_SECRET}
        plan = configured(CHANNELS, monkeypatch, **environ)
        notice = json.loads(plan.files[NOTIFY_JSON][0])  # the file configureserver wrote
        sent = run_notice(tmp_path, notice, MONITOR_INVOCATION_ID="0123abcd",
                          http_proxy="http://127.0.0.1:9", no_proxy="127.0.0.1")  # a proxy, but not for these
    assert sent.returncode == 0, sent.stderr
    assert "sent backup.failed for shop-backup.service" in sent.stdout
    asked = (tmp_path / "journalctl.argv").read_text().split()
    assert asked[:3] == ["_SYSTEMD_INVOCATION_ID=0123abcd", "+", "INVOCATION_ID=0123abcd"]  # that run's lines only

    [hook] = hook_server.requests
    received = hook.json()
    assert hook.path == "/backups" and KEY_ID not in hook.body.decode()  # the backup's credentials stay hidden
    event = BackupEvent(project="shop", environment="production", failed_host="web1", failed_step="shop-backup.service",
                        error=hide("\n".join(JOURNAL), [KEY_ID]), at=received["at"])
    assert hook.body == webhook.body(event)  # byte for byte: the host and djaploy cannot drift apart
    expected_headers = webhook.headers(event, hook.body, HOOK_SECRET)
    assert {name: hook.headers[name] for name in expected_headers} == expected_headers
    assert hook.headers["X-Djaploy-Signature"] == webhook.signature(hook.body, HOOK_SECRET)
    assert sorted(received) == ["at", "environment", "error", "event", "failed_host", "failed_step", "hosts", "project"]
    assert received["event"] == "backup.failed" and received["hosts"] == ["web1"]

    [message] = slack_server.requests
    assert message.path == "/services/T/B/X"
    assert message.body == json.dumps(slack.backup_message(event)).encode()
    text = message.json()["text"]
    assert "*shop* backup FAILED on *production* (host web1" in text and "rclone copy exited with 1" in text


def test_a_channel_that_fails_is_logged_without_its_url_and_the_next_still_runs(tmp_path: Path) -> None:
    with local_server(500, "no") as slack_server, local_server(200, "ok") as hook_server:
        notice = {"project": "shop", "environment": "production", "host": "web1", "service": "shop-backup.service",
                  "slack_webhook_url": f"{slack_server.url}/services/T/B/SECRETPATH", "webhook_url": hook_server.url,
                  "webhook_secret": None, "timeout": 5, "hide": []}
        sent = run_notice(tmp_path, notice)
        unreachable = run_notice(tmp_path, {**notice, "slack_webhook_url": None},
                                 http_proxy="http://127.0.0.1:9")  # the environment's proxy is used: refused
    assert sent.returncode == 1 and "slack failed (HTTP 500)" in sent.stderr and "SECRETPATH" not in sent.stderr
    assert len(hook_server.requests) == 1 and "X-Djaploy-Signature" not in hook_server.requests[0].headers
    assert (tmp_path / "journalctl.argv").read_text().split()[:2] == ["-u", "shop-backup.service"]  # no run id given
    assert unreachable.returncode == 1 and "webhook failed (cannot reach it" in unreachable.stderr
