"""The release carries its version: a VERSION file in its own folder (written by a real sh),
DJAPLOY_VERSION in its environment, the version in state.json and in `status`."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

from djaploy.status import format_status
from djaploy.strategies.common import release_info, upload_and_extract, version_file_command
from tests.unit.conftest import RecordingPlan, make_ctx


def versioned_ctx(plan: RecordingPlan | None = None, version: str | None = "v1.4.2"):
    ctx = make_ctx(plan=plan)
    assert ctx.release
    ctx.release = replace(ctx.release, version=version, version_file="VERSION" if version else None)
    return ctx


def test_the_version_file_says_version_commit_time_and_environment(tmp_path: Path) -> None:
    ctx = versioned_ctx()
    info = release_info(ctx)
    command = version_file_command(ctx, str(tmp_path / "it's a release"), info)
    (tmp_path / "it's a release").mkdir()
    subprocess.run(["sh", "-c", "true" + command], check=True)
    text = (tmp_path / "it's a release" / "VERSION").read_text()
    assert text == (f"VERSION=v1.4.2\nCOMMIT={ctx.release.commit}\nDEPLOYED_AT={info['deployed_at']}\n"
                    "ENVIRONMENT=production\n")
    assert info["version"] == "v1.4.2"


def test_the_extract_step_writes_it_and_an_unversioned_release_has_none() -> None:
    plan = RecordingPlan()
    upload_and_extract(versioned_ctx(plan), "/srv/releases/r1")
    assert "/srv/releases/r1/VERSION" in plan.commands[-1]
    plan = RecordingPlan()
    ctx = versioned_ctx(plan, version=None)
    upload_and_extract(ctx, "/srv/releases/r1")
    assert "VERSION" not in plan.commands[-1] and "version" not in release_info(ctx)


def test_the_environment_gets_djaploy_version() -> None:
    assert versioned_ctx().app_environment()["DJAPLOY_VERSION"] == "v1.4.2"
    assert versioned_ctx(version=None).app_environment()["DJAPLOY_VERSION"] == ""


def test_status_shows_the_version_that_serves() -> None:
    state = {"strategy": "zero_downtime", "current": "r2", "order": ["r1", "r2"],
             "releases": {"r1": {"commit": "a" * 40, "version": "v0.1.0"}, "r2": {"commit": "b" * 40, "version": "v0.1.1"}}}
    status = {"state": state, "configured_strategy": "zero_downtime", "services": {}, "lock": None, "audit": []}
    lines = format_status("web1", status)
    assert "  live version: v0.1.1" in lines
    assert any(line.startswith("  release r1 version v0.1.0 commit aaaaaaaa") for line in lines)
    rolled_back = {**status, "state": {**state, "current": "r1"}}
    assert "  live version: v0.1.0" in format_status("web1", rolled_back)
    bluegreen = {"strategy": "bluegreen", "active": "blue",
                 "slots": {"blue": {"state": "active", "release": "r3", "version": "v0.2.0", "commit": "c" * 40}}}
    lines = format_status("web1", {**status, "state": bluegreen, "configured_strategy": "bluegreen"})
    assert "  live version: v0.2.0" in lines and any("release r3 version v0.2.0" in line for line in lines)
