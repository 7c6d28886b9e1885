import subprocess

import pytest

from djaploy import shell


def test_env_file_round_trips_through_sh(tmp_path) -> None:
    tricky = {"PLAIN": "abc", "QUOTES": 'a "b" \'c\'', "DOLLAR": "$HOME and `id` and \\n", "EMPTY": ""}
    env_file = tmp_path / "env"
    env_file.write_text(shell.render_env_file(tricky))
    out = subprocess.run(
        ["sh", "-c", shell.with_env_file(str(env_file), "env -0")], capture_output=True, text=True, check=True
    ).stdout
    seen = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    for name, value in tricky.items():
        assert seen[name] == value


def test_env_file_refuses_newlines_and_bad_names() -> None:
    with pytest.raises(ValueError, match="newline"):
        shell.render_env_file({"A": "x\ny"})
    with pytest.raises(ValueError, match="invalid"):
        shell.render_env_file({"1A": "x"})


def test_manage_py_loads_env_and_quotes_paths() -> None:
    command = shell.manage_py("/a b/env", "/srv/my app", "/srv/venv", ["migrate", "--noinput"])
    assert command == "set -a && . '/a b/env' && set +a && cd '/srv/my app' && exec /srv/venv/bin/python manage.py migrate --noinput"


def test_ensure_venv_reuses_only_a_finished_venv(tmp_path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "half-installed").write_text("")
    requirements = tmp_path / "req.txt"
    requirements.write_text("")  # nothing to install: fast and offline
    command = shell.ensure_venv(str(venv), "python3", str(requirements), ".done")
    first = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    assert "venv created" in first.stdout
    assert not (venv / "half-installed").exists()  # an unfinished venv is rebuilt, not trusted
    assert (venv / ".done").exists()
    second = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    assert "venv reused" in second.stdout


def test_replace_dir_swaps_code(tmp_path) -> None:
    live, new = tmp_path / "code", tmp_path / "code.new"
    live.mkdir(); (live / "old.txt").write_text("old")
    new.mkdir(); (new / "new.txt").write_text("new")
    subprocess.run(["sh", "-c", shell.replace_dir(str(new), str(live))], check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code"]
    assert (live / "new.txt").exists() and not (live / "old.txt").exists()


def test_http_check_requires_2xx_or_3xx() -> None:
    command = shell.http_check("app.example.com", "/health/", attempts=3)
    assert "-H 'Host: app.example.com'" in command
    assert "http://127.0.0.1/health/" in command
    assert "2??|3??" in command
