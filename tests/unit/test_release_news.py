"""The options' rules, and the order around a command (ReleaseNews): versions decided first, the tag
created and pushed only when every host serves, the announcement after; real git, a real bare
origin (and one that refuses), real local HTTP servers."""

from __future__ import annotations

import io
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from djaploy.artifact import RefSpec, Release
from djaploy.config import DjaployConfig
from djaploy.errors import ConfigError, RemoteError
from djaploy.output import Reporter
from djaploy.release_news import ReleaseNews
from djaploy.release_settings import notifications_for, resolve_env_values, versioning_for
from djaploy.session import RunFailed, RunResult, Session
from djaploy.summary import summary_lines
from tests.unit.conftest import git, make_ctx, make_target
from tests.local_http import local_server

HOOK_SECRET = "hook-secret-value"


# --- the options ----------------------------------------------------------------------------------


def config_problem(**options: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        DjaployConfig(project_name="shop", **options)
    return str(caught.value)


def test_unknown_keys_suggest_the_closest() -> None:
    assert "did you mean 'tag_environments'" in config_problem(versioning={"tag_enviroments": ["production"]})
    assert "did you mean 'notify_on_failure'" in config_problem(notifications={"notify_on_failur": True})
    assert "did you mean 'webhook_url'" in config_problem(notifications={"slack": {"webhok_url": "x"}})
    assert "did you mean 'minor'" in config_problem(versioning={"increment": "minr"})
    assert "needs 'url'" in config_problem(notifications={"webhook": {"secret": "s"}})
    assert "versioning['environments']['staging']" in config_problem(
        versioning={"environments": {"staging": {"push_tag": False}}})


def test_the_1x_names_are_the_same_options() -> None:
    config = DjaployConfig(project_name="shop", versioning_conf={"increment": "minor"},
                           notifications_conf={"notify_on_failure": False})
    assert config.versioning == {"increment": "minor"} and config.notifications == {"notify_on_failure": False}
    assert "give either 'versioning' or 'versioning_conf'" in config_problem(versioning={}, versioning_conf={})


def test_per_environment_settings_and_defaults() -> None:
    value = {"increment": "minor", "environments": {"staging": {"push_tags": False, "increment": "patch"}}}
    production, staging = versioning_for(value, "production"), versioning_for(value, "staging")
    assert production and staging
    assert (production.increment, production.remote, production.tag_environments) == ("minor", "origin", ("production",))
    assert (staging.increment, staging.remote) == ("patch", None)
    assert versioning_for(None, "production") is None  # no `versioning`: releases are not versioned
    notes = {"slack": {"webhook_url": "env:SLACK"}, "environments": {"staging": {"slack": None}}}
    assert notifications_for(notes, "production").slack_webhook_url == "env:SLACK"
    assert not notifications_for(notes, "staging").any


def test_env_values_are_read_from_the_deployers_environment_and_never_shown() -> None:
    settings = notifications_for({"webhook": {"url": "env:HOOK_URL", "secret": "env:HOOK_SECRET"}}, "production")
    resolved = resolve_env_values(settings, {"HOOK_URL": "https://hooks.example/x", "HOOK_SECRET": HOOK_SECRET},
                                  where="notifications")
    assert (resolved.webhook_url, resolved.webhook_secret) == ("https://hooks.example/x", HOOK_SECRET)
    with pytest.raises(ConfigError, match=r"webhook_secret reads \$HOOK_SECRET, which is not set"):
        resolve_env_values(settings, {"HOOK_URL": "https://hooks.example/x"}, where="notifications")
    with pytest.raises(ConfigError, match=r"webhook_secret reads \$HOOK_SECRET, whose value is 3 characters long"):
        resolve_env_values(settings, {"HOOK_URL": "https://hooks.example/x", "HOOK_SECRET": "abc"}, where="notifications")
    config = DjaployConfig(project_name="shop", notifications={"webhook": {"url": "https://hooks.example/T0KEN"}})
    assert "T0KEN" not in repr(config)


# --- the order around a command ---------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.invalid")
    git(root, "config", "user.name", "dev")
    (root / "app.py").write_text("print('hi')\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first feature")
    return root


def origin(repo: Path, tmp_path: Path, refuse: bool = False) -> Path:
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    if refuse:
        (bare / "hooks" / "pre-receive").write_text("#!/bin/sh\necho 'no pushes here' >&2\nexit 1\n")
        (bare / "hooks" / "pre-receive").chmod(0o755)
    git(repo, "remote", "add", "origin", str(bare))
    return bare


def news_for(repo: Path, hook_url: str, env: str = "production", action: str = "deploy", **versioning: Any) -> ReleaseNews:
    config = DjaployConfig(project_name="shop", versioning={"tag_environments": ["production"], **versioning},
                           notifications={"webhook": {"url": "env:HOOK_URL", "secret": "env:HOOK_SECRET"}})
    target = replace(make_target(), env=env)
    session = Session(repo / "infra", env, [target], {target.name: []}, Reporter(out=io.StringIO()), config)
    return ReleaseNews(session, repo, action, environ={"HOOK_URL": hook_url, "HOOK_SECRET": HOOK_SECRET})


def deployed(news: ReleaseNews, repo: Path, *, serves: bool = True) -> RunResult:
    """As actions.deploy does it: decide, stamp the release, run (here: record what the host serves)."""
    commit = git(repo, "rev-parse", "HEAD").strip()
    version = news.decide(commit, RefSpec("latest"), None)
    release = news.stamp(Release("r1", "HEAD", commit, Path("/dev/null"), "", "h"))
    assert version and release.version == version.name and release.version_file == "VERSION"
    ctx = make_ctx(release=release)
    ctx.state = {"strategy": "zero_downtime", "current": "r1",
                 "releases": {"r1": {"release": "r1", "commit": commit if serves else "0" * 40, "version": version.name}}}
    news.record_serving(ctx)
    return RunResult("deploy", news.session.env, False, release=release)


def tags(where: Path) -> list[str]:
    return subprocess.run(["git", "-C", str(where), "tag", "--list"], capture_output=True, text=True, check=True).stdout.split()


def test_production_deploy_tags_pushes_then_announces(repo: Path, tmp_path: Path) -> None:
    bare = origin(repo, tmp_path)
    with local_server() as hook:
        news = news_for(repo, hook.url)
        result = news.succeeded(deployed(news, repo))
    assert tags(repo) == ["v0.1.0"] and tags(bare) == ["v0.1.0"]
    payload = hook.requests[0].json()
    assert (payload["event"], payload["version"], payload["changelog"], payload["tagged"]) == (
        "deploy.succeeded", "v0.1.0", "- first feature", True)
    assert "version: v0.1.0 tagged on" in "\n".join(result.notes) and "pushed to origin" in "\n".join(result.notes)
    assert "notified: deploy.succeeded" in result.notes


def test_staging_announces_the_version_and_tags_nothing(repo: Path, tmp_path: Path) -> None:
    bare = origin(repo, tmp_path)
    with local_server() as hook:
        news = news_for(repo, hook.url, env="staging")
        result = news.succeeded(deployed(news, repo))
    assert tags(repo) == [] and tags(bare) == []
    assert hook.requests[0].json()["version"] == "v0.1.0" and hook.requests[0].json()["tagged"] is False
    assert "version: v0.1.0 (staging is not in tag_environments)" in result.notes


def test_a_release_that_does_not_serve_yet_is_neither_tagged_nor_announced(repo: Path, tmp_path: Path) -> None:
    origin(repo, tmp_path)
    with local_server() as hook:
        news = news_for(repo, hook.url)
        result = news.succeeded(deployed(news, repo, serves=False))  # bluegreen: staged, traffic stays
    assert tags(repo) == [] and hook.requests == []
    assert any("staged; `activate` tags and announces it" in note for note in result.notes)


def test_a_refused_push_fails_the_command_keeps_the_tag_local_and_still_summarises(repo: Path, tmp_path: Path) -> None:
    origin(repo, tmp_path, refuse=True)
    with local_server() as hook:
        news = news_for(repo, hook.url)
        with pytest.raises(RunFailed) as caught:
            news.succeeded(deployed(news, repo))
    assert tags(repo) == ["v0.1.0"]
    assert "no pushes here" in str(caught.value) and "push origin refs/tags/v0.1.0" in str(caught.value)
    assert caught.value.result.ok  # every host serves: the summary says so
    assert hook.requests[0].json()["tagged"] is False
    lines = summary_lines(caught.value.result)
    assert any("TAG NOT PUSHED" in line for line in lines)


def test_a_failed_deploy_is_announced_with_host_and_step_and_tags_nothing(repo: Path, tmp_path: Path) -> None:
    origin(repo, tmp_path)
    with local_server() as hook:
        news = news_for(repo, hook.url)
        result = deployed(news, repo)
        result.errors["web1"] = RemoteError("web1", "health gate /health/", f"HTTP 500\nkey={HOOK_SECRET}")
        news.failed(RunFailed(result, "deploy failed"))
    payload = hook.requests[0].json()
    assert (payload["event"], payload["failed_host"], payload["failed_step"]) == ("deploy.failed", "web1", "health gate /health/")
    assert "HTTP 500" in payload["error"] and HOOK_SECRET not in payload["error"]
    assert hook.requests[0].headers["X-Djaploy-Signature"].startswith("sha256=")
    assert tags(repo) == []


def test_a_failure_before_the_hosts_names_the_phase(repo: Path) -> None:
    with local_server() as hook:
        news = news_for(repo, hook.url)
        news.phase = "build the release"
        news.failed(ConfigError("prepare() failed"))
    payload = hook.requests[0].json()
    assert (payload["failed_host"], payload["failed_step"], payload["error"]) == (None, "build the release", "prepare() failed")


def test_an_unreachable_webhook_never_fails_the_deploy(repo: Path, tmp_path: Path) -> None:
    origin(repo, tmp_path)
    with local_server() as hook:
        url = hook.url
    news = news_for(repo, url)
    result = news.succeeded(deployed(news, repo))
    assert result.ok and tags(repo) == ["v0.1.0"]
    assert any(note.startswith("notification: webhook failed (cannot reach it") for note in result.notes)


def test_activate_tags_the_version_the_host_recorded(repo: Path, tmp_path: Path) -> None:
    bare = origin(repo, tmp_path)
    commit = git(repo, "rev-parse", "HEAD").strip()
    with local_server() as hook:
        news = news_for(repo, hook.url, action="activate")
        ctx = make_ctx()
        ctx.state = {"strategy": "bluegreen", "active": "green",
                     "slots": {"green": {"state": "active", "release": "r1", "commit": commit, "version": "v0.1.0"}}}
        news.record_serving(ctx)
        news.succeeded(RunResult("activate", "production", False))
    assert tags(bare) == ["v0.1.0"]
    assert (hook.requests[0].json()["event"], hook.requests[0].json()["changelog"]) == ("activate.succeeded", "- first feature")


def test_a_rollback_goes_on_without_the_notification_variables_and_says_so(repo: Path) -> None:
    config = DjaployConfig(project_name="shop", notifications={"webhook": {"url": "env:HOOK_URL"}})
    target = make_target()
    session = Session(repo / "infra", "production", [target], {target.name: []}, Reporter(out=io.StringIO()), config)
    with pytest.raises(ConfigError, match=r"reads \$HOOK_URL"):
        ReleaseNews(session, repo, "deploy", environ={})
    news = ReleaseNews(session, repo, "rollback", environ={})  # an emergency rollback must not wait for it
    ctx = make_ctx()
    ctx.state = {"strategy": "zero_downtime", "current": "r1", "releases": {"r1": {"release": "r1", "commit": "c"}}}
    news.record_serving(ctx)
    result = news.succeeded(RunResult("rollback", "production", False))
    assert any(note.startswith("not notified: ") and "HOOK_URL" in note for note in result.notes), result.notes


def test_a_dry_run_writes_the_simple_changelog_and_calls_no_llm(repo: Path) -> None:
    with local_server() as llm:
        config = DjaployConfig(project_name="shop", versioning={"changelog": {
            "generator": "llm", "url": f"{llm.url}/v1", "model": "tiny"}})
        target = make_target()
        session = Session(repo / "infra", "production", [target], {target.name: []}, Reporter(out=io.StringIO()), config)
        news = ReleaseNews(session, repo, "deploy", environ={})
        version = news.decide(git(repo, "rev-parse", "HEAD").strip(), RefSpec("latest"), None, dry_run=True)
    assert version and version.changelog == "- first feature"
    assert llm.requests == []
