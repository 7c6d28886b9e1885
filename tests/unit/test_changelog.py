"""Changelog writers: simple, an OpenAI-compatible endpoint served locally (one answering, one failing,
which falls back to simple without showing the key), and a user's generator by dotted path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from djaploy.changelog import Commit, simple, write_changelog
from djaploy.errors import ConfigError
from djaploy.release_settings import ChangelogSettings
from tests.local_http import local_server

COMMITS = [Commit("c3", "fixup! add export"), Commit("c2", "Merge branch 'x'", merge=True),
           Commit("c1", "add export"), Commit("c0", "start")]
API_KEY = "sk-test-very-secret-key"


def test_simple_folds_fixups_leaves_out_merges_and_is_bounded() -> None:
    assert simple(COMMITS) == "- add export\n- start"
    many = [Commit(str(n), f"change {n}") for n in range(7)]
    assert simple(many, max_commits=3).splitlines() == ["- change 0", "- change 1", "- change 2", "- … and 4 more"]
    assert simple([]) == "- no changes since the previous version"


def test_llm_answer_is_the_changelog_and_the_request_is_a_chat_completion() -> None:
    answer = {"choices": [{"message": {"role": "assistant", "content": "- Export your ledger as CSV\n"}}]}
    with local_server(200, answer) as server:
        settings = ChangelogSettings("llm", url=f"{server.url}/v1", model="tiny", api_key=API_KEY, timeout=5,
                                     prompt="Notes for {project} {version}:\n{commits}")
        changelog = write_changelog(settings, COMMITS, version="v1.2.0", project="ledger")
    assert changelog.text == "- Export your ledger as CSV" and changelog.warnings == ()
    request = server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    body = request.json()
    assert body["model"] == "tiny"
    assert body["messages"][0]["content"] == "Notes for ledger v1.2.0:\n- add export\n- start"


@pytest.mark.parametrize("status, answer", [(500, {"error": "overloaded"}), (200, {"unexpected": True})])
def test_a_failing_llm_falls_back_to_simple_with_a_warning_without_the_key(status: int, answer: dict) -> None:
    with local_server(status, answer) as server:
        settings = ChangelogSettings("llm", url=f"{server.url}/v1/chat/completions", model="m", api_key=API_KEY)
        changelog = write_changelog(settings, COMMITS, version="v1", project="p")
    assert len(server.requests) == 1 and server.requests[0].path == "/v1/chat/completions"
    assert changelog.text == "- add export\n- start"
    assert len(changelog.warnings) == 1 and "used the simple changelog" in changelog.warnings[0]
    assert API_KEY not in changelog.warnings[0]


def test_an_unreachable_llm_falls_back_too() -> None:
    with local_server() as server:
        url = server.url  # closed once the block ends: nothing listens there any more
    changelog = write_changelog(ChangelogSettings("llm", url=url, model="m", timeout=2), COMMITS, version="v1", project="p")
    assert changelog.text == "- add export\n- start" and "cannot reach it" in changelog.warnings[0]


def test_a_users_generator_by_dotted_path(tmp_path: Path, forget_new_modules: None) -> None:
    package = tmp_path / "infra"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "notes.py").write_text("def write(commits):\n    return ' / '.join(c.subject for c in commits)\n")
    changelog = write_changelog(ChangelogSettings("infra.notes.write"), COMMITS[:1], version="v1", project="p",
                                root=str(tmp_path))
    assert changelog.text == "fixup! add export"
    assert str(tmp_path) not in sys.path
    with pytest.raises(ConfigError, match="has no callable 'nope'"):
        write_changelog(ChangelogSettings("infra.notes:nope"), COMMITS, version="v1", project="p", root=str(tmp_path))
