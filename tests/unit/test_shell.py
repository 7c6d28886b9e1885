"""Every command builder of shell.py runs in a real `sh`, against temp folders and recording
stand-ins for the programs it calls (tests/unit/recording_shell.py)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from djaploy import shell
from tests.unit.recording_shell import HOSTILE, RecordingShell


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




@pytest.fixture
def rsh(tmp_path: Path) -> RecordingShell:
    return RecordingShell(tmp_path)


# --- health checks ------------------------------------------------------------------------------


def curl_urls(run) -> list[str]:
    return [argv[-1] for argv in run.argv_of("curl")]


def test_health_check_passes_on_2xx_and_sends_the_host_to_the_local_server(rsh) -> None:
    rsh.answers({"http://app.example.com/health/": [(200, "")]})
    run = rsh.run(shell.http_check("app.example.com", "/health/", attempts=3))
    assert run.returncode == 0, run.stderr
    assert "HTTP 200" in run.stdout
    (argv,) = run.argv_of("curl")
    assert argv[argv.index("--resolve") + 1] == "app.example.com:80:127.0.0.1"  # Host and SNI = the domain
    assert "--noproxy" in argv


def test_health_check_fails_at_once_on_a_500(rsh) -> None:
    rsh.answers({"*": [(500, ""), (200, "")]})  # a release that fails every other request
    run = rsh.run(shell.http_check("app.example.com", "/health/", attempts=20))
    assert run.returncode == 1
    assert "HTTP 500" in run.stderr
    assert len(run.argv_of("curl")) == 1  # a 5xx is an answer: not retried


@pytest.mark.parametrize("not_ready", [0, 502, 503, 504])
def test_health_check_retries_only_not_ready_answers(rsh, not_ready: int) -> None:
    rsh.answers({"*": [(not_ready, ""), (not_ready, ""), (200, "")]})
    run = rsh.run(shell.health_check("app.example.com", "/h/", attempts=5, interval=0))
    assert run.returncode == 0, run.stderr
    assert len(run.argv_of("curl")) == 3


def test_health_check_gives_up_after_its_attempts(rsh) -> None:
    rsh.answers({"*": [(503, "")]})
    run = rsh.run(shell.health_check("app.example.com", "/h/", attempts=4, interval=0))
    assert run.returncode == 1
    assert len(run.argv_of("curl")) == 4
    assert "after 4 attempts" in run.stderr and "HTTP 503" in run.stderr


def test_health_check_follows_http_to_https_and_append_slash_on_the_same_host(rsh) -> None:
    rsh.answers({
        "http://app.example.com/health": [(301, "https://app.example.com/health")],
        "https://app.example.com/health": [(301, "https://app.example.com/health/")],
        "https://app.example.com/health/": [(200, "")],
    })
    run = rsh.run(shell.http_check("app.example.com", "/health", attempts=3))
    assert run.returncode == 0, run.stderr
    assert curl_urls(run) == ["http://app.example.com/health", "https://app.example.com/health",
                              "https://app.example.com/health/"]
    assert "--resolve" in run.argv_of("curl")[1] and "app.example.com:443:127.0.0.1" in run.argv_of("curl")[1]


def test_health_check_refuses_a_redirect_to_a_login_page_unless_that_is_the_path(rsh) -> None:
    rsh.answers({
        "http://app.example.com/health/": [(302, "http://app.example.com/accounts/login/?next=/health/")],
        "http://app.example.com/accounts/login/?next=/health/": [(200, "")],
        "http://app.example.com/accounts/login/": [(200, "")],
    })
    refused = rsh.run(shell.http_check("app.example.com", "/health/", attempts=3))
    assert refused.returncode == 1
    assert "redirects to http://app.example.com/accounts/login/" in refused.stderr
    accepted = rsh.run(shell.http_check("app.example.com", "/accounts/login/", attempts=3))
    assert accepted.returncode == 0, accepted.stderr


def test_health_check_does_not_follow_another_host_or_a_loop(rsh) -> None:
    rsh.answers({"http://app.example.com/h/": [(302, "http://evil.example.net/h/")]})
    other = rsh.run(shell.http_check("app.example.com", "/h/"))
    assert other.returncode == 1 and "another host" in other.stderr
    assert curl_urls(other) == ["http://app.example.com/h/"]
    rsh.answers({"*": [(301, "http://app.example.com/h/")]})
    loop = rsh.run(shell.http_check("app.example.com", "/h/"))
    assert loop.returncode == 1 and "redirect loop" in loop.stderr
    assert len(loop.argv_of("curl")) == 6


def test_socket_check_follows_an_https_redirect_on_the_socket_as_the_web_server_would(rsh) -> None:
    rsh.answers({"http://localhost/h/": [(301, "https://localhost/h/"), (200, "")]})
    run = rsh.run(shell.http_check("localhost", "/h/", unix_socket="/run/app/app.sock"))
    assert run.returncode == 0, run.stderr
    first, second = run.argv_of("curl")
    assert first[first.index("--unix-socket") + 1] == "/run/app/app.sock"
    assert "X-Forwarded-Proto: https" not in first and "X-Forwarded-Proto: https" in second
    assert curl_urls(run) == ["http://localhost/h/", "http://localhost/h/"]


def test_https_check_starts_on_https_with_the_domain_resolved_locally(rsh) -> None:
    rsh.answers({"https://app.example.com/h/": [(200, "")]})
    run = rsh.run(shell.https_check("app.example.com", "/h/"))
    assert run.returncode == 0, run.stderr
    assert "HTTPS check /h/" in run.stdout
    assert "-k" in run.argv_of("curl")[0]


def test_health_check_leaves_no_temporary_file(rsh, tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    rsh.answers({"*": [(500, "")]})
    run = rsh.run(f"TMPDIR={shell.q(tmpdir)} && export TMPDIR && " + shell.http_check("a.example.com", "/"))
    assert run.returncode == 1
    assert "body of" in run.stderr  # the body was kept for the error, in a mktemp file
    assert list(tmpdir.iterdir()) == []
    assert "/tmp/djaploy" not in shell.http_check("a.example.com", "/")


@pytest.mark.parametrize("value", HOSTILE)
def test_health_check_values_arrive_byte_for_byte(rsh, value: str) -> None:
    """Config validation refuses these in a path or domain; the builder must be safe anyway."""
    rsh.answers({"*": [(200, "")]})
    path = "/" + value
    run = rsh.run(shell.health_check(value, path, unix_socket=value, attempts=1, label=value))
    assert rsh.injected() == []
    assert run.returncode == 0, run.stderr
    (argv,) = run.argv_of("curl")
    assert argv[-1] == f"http://{value}{path}"
    assert argv[argv.index("--unix-socket") + 1] == value


# --- the health gate's watch on the gunicorn being checked ------------------------------------------


def test_health_check_fails_at_once_when_the_watched_gunicorn_is_gone(rsh) -> None:
    """A lane's socket is held by systemd: a connection to a dead gunicorn waits, so the check
    must notice the process is gone instead of retrying until its attempts run out."""
    rsh.answers({"*": [(0, "")] * 50})
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True).stdout.strip()
    run = rsh.run(shell.health_check("a.example.com", "/h/", unix_socket="/run/a/a.sock", attempts=50, interval=0.01,
                                     pid=f"$(echo {dead})"))
    assert run.returncode == 1
    assert "did not start: gunicorn exited" in run.stderr
    assert len(run.argv_of("curl")) <= 1


@pytest.mark.parametrize("main_pid", ["0", ""])
def test_health_check_of_a_service_without_a_main_process_fails_at_once(rsh, main_pid: str) -> None:
    """systemd's MainPID is 0 once the service exited (and `kill -0 0` would signal our own group)."""
    rsh.answers({"*": [(0, "")] * 5})
    run = rsh.run(shell.health_check("a.example.com", "/h/", unix_socket="/run/a/a.sock", attempts=5, interval=0.01,
                                     pid=f"$(printf %s '{main_pid}')"))
    assert run.returncode == 1 and "did not start: gunicorn exited" in run.stderr
    assert run.argv_of("curl") == []


def test_health_check_with_a_live_gunicorn_waits_for_its_answer(rsh) -> None:
    rsh.answers({"*": [(0, ""), (502, ""), (200, "")]})
    run = rsh.run(shell.health_check("a.example.com", "/h/", unix_socket="/run/a/a.sock", attempts=5, interval=0.01,
                                     pid="$$"))
    assert run.returncode == 0, run.stderr
    assert len(run.argv_of("curl")) == 3


def test_health_gate_refuses_a_release_that_answers_500(rsh) -> None:
    rsh.answers({"*": [(500, "")]})
    run = rsh.run(shell.health_check("a.example.com", "/h/", unix_socket="/run/a/a.sock", pid="$$"))
    assert run.returncode == 1 and "HTTP 500" in run.stderr
    assert len(run.argv_of("curl")) == 1  # a 500 is an answer, not "not ready": no retry


# --- links, locks, files ----------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_switch_symlink_is_atomic_and_quoted(rsh, tmp_path: Path, value: str) -> None:
    old, new = tmp_path / f"old {value}", tmp_path / f"new {value}"
    old.mkdir(); new.mkdir()
    link = tmp_path / f"live {value}"
    link.symlink_to(old)
    run = rsh.run(shell.switch_symlink(str(link), str(new)))
    assert run.returncode == 0, run.stderr
    assert os.readlink(link) == str(new)
    assert rsh.injected() == []


def test_lock_is_taken_once_and_released_with_the_audit_line(rsh, tmp_path: Path) -> None:
    lock = tmp_path / "meta $(touch MARKER)" / "lock"
    info = json.dumps({"by": "it's me `touch MARKER`"})
    first = rsh.run(shell.acquire_lock(str(lock), info))
    second = rsh.run(shell.acquire_lock(str(lock), info))
    assert first.stdout.strip() == "acquired"
    assert second.stdout.splitlines() == ["held", info]
    audit = tmp_path / "audit 'log'.jsonl"
    line = json.dumps({"result": "ok $(touch MARKER)"})
    rsh.run(shell.release_lock(str(lock), str(audit), line))
    assert not lock.exists() and audit.read_text() == line + "\n"
    assert rsh.run(shell.acquire_lock(str(lock), info)).stdout.strip() == "acquired"
    assert rsh.injected() == []


@pytest.mark.parametrize("value", HOSTILE)
def test_write_file_atomically_writes_the_content_exactly(rsh, tmp_path: Path, value: str) -> None:
    target = tmp_path / f"state {value}.json"
    run = rsh.run(shell.write_file_atomically(str(target), value))
    assert run.returncode == 0, run.stderr
    assert target.read_text() == value + "\n"
    assert rsh.injected() == []


def test_remove_unused_venvs_keeps_linked_ones(rsh, tmp_path: Path) -> None:
    shared = tmp_path / "shared 'x'"
    for name in ("venv-used", "venv-unused"):
        (shared / name).mkdir(parents=True)
    release = tmp_path / "releases" / "r1"
    release.mkdir(parents=True)
    (release / ".djaploy-venv").symlink_to(shared / "venv-used")
    run = rsh.run(shell.remove_unused_venvs(str(shared), f"{shell.q(tmp_path / 'releases')}/*/.djaploy-venv"))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in shared.iterdir()) == ["venv-used"]


def test_extract_tarball_replaces_a_leftover(rsh, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text("x")
    tarball = tmp_path / "release $(touch MARKER).tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(source), "."], check=True)
    destination = tmp_path / "releases" / "v1 `touch MARKER`"
    destination.mkdir(parents=True)
    (destination / "half-extracted").write_text("")
    run = rsh.run(shell.extract_tarball(str(tarball), str(destination)))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in destination.iterdir()) == ["app.py"]
    assert rsh.injected() == []


@pytest.mark.parametrize("value", HOSTILE)
def test_systemctl_quotes_every_unit(rsh, value: str) -> None:
    run = rsh.run(shell.systemctl("restart", value, "app.socket", flags=["--no-block"]))
    assert run.argv_of("systemctl") == [["restart", "--no-block", value, "app.socket"]]
    assert rsh.injected() == []


@pytest.mark.parametrize("value", HOSTILE)
def test_manage_py_passes_arguments_and_paths_intact(rsh, tmp_path: Path, value: str) -> None:
    project, venv = tmp_path / f"p {value}", tmp_path / f"v {value}"
    project.mkdir(); (venv / "bin").mkdir(parents=True)
    (project / "manage.py").write_text("")
    python = venv / "bin" / "python"
    python.write_text('#!/bin/sh\nprintf "%s\\n" "$PWD" "$@" "$APP_VALUE"\n')
    python.chmod(0o755)
    env_file = tmp_path / f"env {value}"
    env_file.write_text(shell.render_env_file({"APP_VALUE": value}))
    run = rsh.run(shell.manage_py(str(env_file), str(project), str(venv), ["shell", "-c", value]))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [str(project), "manage.py", "shell", "-c", value, value]
    assert rsh.injected() == []


@pytest.mark.parametrize("value", HOSTILE)
def test_install_private_never_exposes_the_file_and_replaces_it_atomically(rsh, tmp_path: Path, value: str) -> None:
    import getpass
    import stat

    staged = tmp_path / "stage" / "upload"
    staged.parent.mkdir()
    staged.write_text("SECRET=s3cr3t\n")
    target = tmp_path / f"env {value}"
    target.write_text("old\n")
    owner = getpass.getuser()
    # A chown stand-in records the mode the file has at the moment ownership changes (before the rename).
    (rsh.bin / "chown").write_text('#!/bin/sh\nstat -c "%a" "$2" > "$RECORD_LOG.mode"; exec /bin/chown "$@"\n')
    (rsh.bin / "chown").chmod(0o755)
    run = rsh.run(shell.install_private(str(staged), str(target), owner, "600"))
    assert run.returncode == 0, run.stderr
    assert target.read_text() == "SECRET=s3cr3t\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert (tmp_path / "calls.jsonl.mode").read_text().strip() == "600"  # private from its creation
    assert not list(tmp_path.glob("*.djaploy-new"))
    assert rsh.injected() == []
