from djaploy.status import format_status, parse_status
from djaploy.strategies.bluegreen import other
from djaploy.strategies.zero_downtime import _unique_name, releases_to_prune, rollback_target


def _state(order, current, rolled_back=()):
    return {
        "strategy": "zero_downtime",
        "current": current,
        "order": list(order),
        "releases": {name: {"commit": "c" * 40, "rolled_back": name in rolled_back} for name in order},
    }


def test_rollback_target_is_the_previous_release_not_rolled_back() -> None:
    assert rollback_target(_state(["a", "b", "c"], "c")) == "b"
    assert rollback_target(_state(["a", "b", "c"], "c", rolled_back={"b"})) == "a"
    assert rollback_target(_state(["a", "b", "c"], "b", rolled_back={"c"})) == "a"
    assert rollback_target(_state(["a"], "a")) is None
    assert rollback_target(_state([], None)) is None


def test_prune_keeps_newest_live_and_rollback_target_and_removes_leftovers() -> None:
    state = _state(["a", "b", "c", "d", "e"], "e")
    assert releases_to_prune(state, 2, ["a", "b", "c", "d", "e", "half-extracted"]) == ["a", "b", "c", "half-extracted"]
    # After a rollback to b, the live release and its rollback target survive any keep value.
    rolled = _state(["a", "b", "c", "d", "e"], "b", rolled_back={"c", "d", "e"})
    assert releases_to_prune(rolled, 2, ["a", "b", "c", "d", "e"]) == ["c"]


def test_a_redeployed_tag_gets_its_own_folder() -> None:
    assert _unique_name("v1", set()) == "v1"
    assert _unique_name("v1", {"v1"}) == "v1-r2"
    assert _unique_name("v1", {"v1", "v1-r2"}) == "v1-r3"


def test_bluegreen_other_slot() -> None:
    assert other("blue") == "green" and other("green") == "blue" and other(None) == "blue"


def test_status_sections_parse_and_format() -> None:
    output = "\n".join([
        "==state", '{"strategy": "bluegreen", "active": "green", "previous": "blue", "switched_at": "T",',
        ' "slots": {"green": {"state": "active", "release": "v2", "commit": "abcdef123", "deployed_at": "D"}}}',
        "==lock", '{"by": "me@box", "since": "S", "action": "deploy", "release": "v3"}',
        "==audit", '{"at": "A", "action": "activate", "release": "v2", "by": "me@box", "result": "ok", "seconds": 0.4}',
        "==releases",
        "==services", "ledger-blue active", "ledger-green active",
    ])
    status = parse_status(output)
    assert status["state"]["active"] == "green"
    assert status["lock"]["by"] == "me@box"
    assert status["services"] == {"ledger-blue": "active", "ledger-green": "active"}
    status["configured_strategy"] = "bluegreen"
    text = "\n".join(format_status("web", status))
    assert "active slot: green" in text and "green: active release v2 commit abcdef12" in text
    assert "blue: empty" in text and "lock: held by me@box since S (deploy v3)" in text
    assert "activate v2 by me@box: ok" in text


def test_clean_up_retires_exactly_the_other_strategies_services_in_one_command() -> None:
    from djaploy.layout import AppPaths
    from djaploy.strategies.common import _services_of
    from djaploy.system_services import retire_units_command

    paths = AppPaths(app_name="ledger", app_user="ledger")
    assert [s.name for s in _services_of(paths, "zero_downtime")] == ["ledger-a", "ledger-b"]
    assert [s.name for s in _services_of(paths, "bluegreen")] == ["ledger-blue", "ledger-green"]
    command = retire_units_command([paths.service_for("bluegreen", "blue"), paths.service_for("bluegreen", "green")])
    assert "disable --now ledger-blue.service ledger-blue.socket" in command
    assert "disable --now ledger-green.service ledger-green.socket" in command
    assert "ledger.service" not in command
    assert command.count("daemon-reload") == 1  # once, and only if something was retired
