"""Any Python on a Debian 12 host (issue 11): a Django 6.0 project (it needs Python 3.12+; Debian 12
has 3.11) deploys on CPython 3.13 compiled from the release tarball in Debian's archive, checked
against its sha256; the second host gets the build from the deploying machine's cache (no compile
on it); uv installs the same build from a downloads JSON this test serves; a wrong sha256 stops
configureserver before anything is built while the live release keeps serving.

The build cache persists across runs ($DJAPLOY_PYTHON_CACHE, else /var/cache/djaploy-test/python),
so only the first run pays the compile (about 6.5 minutes here with the fast flag set below).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import tarfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import SANDBOX_NAME, http_get

ENV = "sandbox"
URL = "http://deb.debian.org/debian/pool/main/p/python3.13/python3.13_3.13.5.orig.tar.xz"  # via the sandbox proxy
SHA256 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"  # fleet-notes.md
CACHE = os.environ.get("DJAPLOY_PYTHON_CACHE") or "/var/cache/djaploy-test/python"

FILES = {
    "manage.py": '''
        import os
        import sys

        if __name__ == "__main__":
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pyapp.settings")
            from django.core.management import execute_from_command_line

            execute_from_command_line(sys.argv)
    ''',
    "requirements.txt": "Django>=6.0,<6.1\ngunicorn\n",
    ".gitignore": "__pycache__/\n*.sqlite3\n",
    "pyapp/__init__.py": "",
    "pyapp/settings.py": '''
        import importlib.util
        import os
        from pathlib import Path

        BASE_DIR = Path(__file__).resolve().parent.parent
        SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "local-only")
        DEBUG = False
        ALLOWED_HOSTS = ["*"]
        INSTALLED_APPS = ["django.contrib.staticfiles"]
        if importlib.util.find_spec("djaploy"):  # the deploying machine only
            INSTALLED_APPS.append("djaploy")
        ROOT_URLCONF = "pyapp.urls"
        WSGI_APPLICATION = "pyapp.wsgi.application"
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                                 "NAME": Path(os.environ.get("DJAPLOY_DATA_DIR", BASE_DIR)) / "db.sqlite3"}}
        STATIC_URL = "static/"
        STATIC_ROOT = os.environ.get("DJAPLOY_STATIC_ROOT", str(BASE_DIR / "staticfiles"))
    ''',
    "pyapp/urls.py": '''
        import sys

        import django
        from django.http import HttpResponse
        from django.urls import path


        def index(request):
            text = f"{sys.version.split()[0]}|{sys.base_prefix}|django {django.get_version()}|{sys.version}"
            return HttpResponse(text, content_type="text/plain")


        urlpatterns = [path("", index)]
    ''',
    "pyapp/wsgi.py": '''
        import os

        from django.core.wsgi import get_wsgi_application

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pyapp.settings")
        application = get_wsgi_application()
    ''',
    # What the test varies between runs comes from the environment: which hosts, which provider.
    "infra/config.py": '''
        import os

        from djaploy.config import DjaployConfig

        source = {"url": os.environ["PY_E2E_URL"], "sha256": os.environ["PY_E2E_SHA256"]}
        config = DjaployConfig(
            project_name="pyapp",
            secrets={"DJANGO_SECRET_KEY": "env:PYAPP_SECRET_KEY"},
            python_version="3.13",
            python_provider=os.environ["PY_E2E_PROVIDER"],
            python_source=source,
            python_build_flags=[],  # the fast build: no PGO, no LTO (CI)
            python_downloads_json_url=os.environ.get("PY_E2E_DOWNLOADS_JSON") or None,
        )
    ''',
    "infra/inventory/sandbox.py": '''
        import os

        from djaploy.config import HostConfig
        from djaploy.sandbox import sandbox_hosts

        vms = sandbox_hosts()
        hosts = [HostConfig(vm.name, ssh_host=vm.address, ssh_key=vm.key_path,
                            ssh_known_hosts_file=vm.known_hosts_path, domains=[vm.address])
                 for index, vm in enumerate(vms, 1) if str(index) in os.environ["PY_E2E_HOSTS"].split(",")]
    ''',
}


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "DJAPLOY_SANDBOX_NAME": SANDBOX_NAME, "PYAPP_SECRET_KEY": "py-e2e-" + "s" * 40,
                    "DJAPLOY_PYTHON_CACHE": CACHE, "PYTHONUNBUFFERED": "1", "PY_E2E_URL": URL,
                    "PY_E2E_SHA256": SHA256, "PY_E2E_PROVIDER": "source", "PY_E2E_HOSTS": "1"}
        self.env.pop("DJANGO_SETTINGS_MODULE", None)

    def manage(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=self.root, env={**self.env, **env},
                                check=False, capture_output=True, text=True, timeout=3600)
        print(f"$ manage.py {' '.join(args)} {env} -> {result.returncode}\n{result.stdout}\n{result.stderr}")
        if check:
            assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result


def run_on(host, command: str) -> str:
    from djaploy.sandbox import Sandbox

    result = Sandbox(name=SANDBOX_NAME).run(host, command)
    assert result.returncode == 0, f"{command!r} on {host.name} failed: {result.stdout}{result.stderr}"
    return result.stdout


def page(host) -> str:
    status, body = http_get(f"http://{host.address}/", host=host.address)
    assert status == 200, body[:500]
    return body


def steps(output: str, host) -> list[str]:
    """The changed (or failed) steps the command printed for one host."""
    return re.findall(rf"^\[{re.escape(host.name)}\] (.+): (?:changed|FAILED) \(", output, re.MULTILINE)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sandbox_hosts) -> Project:
    root = tmp_path_factory.mktemp("pyapp") / "pyapp"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    Path(CACHE).mkdir(parents=True, exist_ok=True)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=e2e@djaploy.invalid", "-c", "user.name=e2e", "commit", "-q", "-m", "pyapp"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return Project(root)


def test_a_django_6_project_runs_on_cpython_3_13_built_from_source(project: Project, sandbox_hosts) -> None:
    first = sandbox_hosts[0]
    configured = project.manage("configureserver", "--env", ENV)
    done = steps(configured.stdout, first)
    built = any(step.startswith("python: compile CPython 3.13.5") for step in done)
    uploaded = any(step.startswith("python: upload the cached build") for step in done)
    assert built != uploaded, done  # compiled here (the cache's first run) or uploaded from the cache
    if built:
        assert done.index(f"python: download {URL} and check its sha256") < done.index("python: build dependencies")
    assert any(path.name.startswith("cpython-3.13.5-debian-12-") for path in Path(CACHE).glob("*.tar.gz"))
    assert run_on(first, "ls /opt/djaploy/python/source-3.13.5/lib/python3.13/test 2>/dev/null; "
                         "command -v python3.13 || echo not-on-path").strip() == "not-on-path"
    assert run_on(first, "python3 -c 'import sys; print(sys.version_info[:2])'").strip() == "(3, 11)"  # untouched

    project.manage("deploy", "--env", ENV, "--latest")
    version, prefix, django, _ = page(first).split("|", 3)
    assert version == "3.13.5" and prefix == "/opt/djaploy/python/source-3.13.5" and django.startswith("django 6.0")
    venvs = run_on(first, "ls -d /home/pyapp/apps/pyapp/shared/venv-*").split()
    assert len(venvs) == 1 and venvs[0].endswith("-py3.13.5-source"), venvs

    again = project.manage("configureserver", "--env", ENV)
    assert [step for step in steps(again.stdout, first) if step.startswith("python:")] == []


def test_the_second_host_gets_the_cached_build_and_serves_the_same_python(project: Project, sandbox_hosts) -> None:
    first, second = sandbox_hosts[:2]
    configured = project.manage("configureserver", "--env", ENV, PY_E2E_HOSTS="1,2")
    done = steps(configured.stdout, second)
    assert any(step.startswith("python: upload the cached build cpython-3.13.5-debian-12-") for step in done), done
    assert not any(step.startswith(("python: compile", "python: build dependencies")) for step in done), done
    assert [step for step in steps(configured.stdout, first) if step.startswith("python:")] == []
    project.manage("deploy", "--env", ENV, "--latest", PY_E2E_HOSTS="1,2")
    assert page(second) == page(first)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def downloads(tmp_path: Path, sandbox_hosts) -> Iterator[str]:
    """uv's downloads JSON and a python-build-standalone-style install_only archive (python/bin/...)
    made from the cached source build, served to the sandbox hosts from this machine."""
    built = next(Path(CACHE).glob("cpython-3.13.5-debian-12-*.tar.gz"))
    archive = tmp_path / "cpython-3.13.5+20250101-x86_64-unknown-linux-gnu-install_only.tar.gz"
    with tarfile.open(built) as source, tarfile.open(archive, "w:gz") as target:
        for member in source.getmembers():
            name = member.name.removeprefix("./").strip("/")
            member.name = f"python/{name}" if name else "python"
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        for alias in ("python3", "python"):
            link = tarfile.TarInfo(f"python/bin/{alias}")
            link.type, link.linkname = tarfile.SYMTYPE, "python3.13"
            target.addfile(link)
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    base = f"http://{sandbox_hosts[1].host_side_address}:{server.server_address[1]}"
    (tmp_path / "downloads.json").write_text(json.dumps({"cpython-3.13.5-linux-x86_64-gnu": {
        "name": "cpython", "arch": {"family": "x86_64", "variant": None}, "os": "linux", "libc": "gnu",
        "major": 3, "minor": 13, "patch": 5, "prerelease": "", "url": f"{base}/{archive.name}",
        "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(), "variant": None, "build": "20250101"}}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{base}/downloads.json"
    finally:
        server.shutdown()
        server.server_close()


def test_uv_installs_python_from_a_downloads_json_and_the_app_runs_on_it(project: Project, sandbox_hosts,
                                                                          downloads: str) -> None:
    second = sandbox_hosts[1]
    uv = {"PY_E2E_HOSTS": "2", "PY_E2E_PROVIDER": "uv", "PY_E2E_DOWNLOADS_JSON": downloads}
    verified = project.manage("verify", "--env", ENV, "--remote", check=False, **uv)
    assert "python: uv (uv's newest CPython 3.13 from " + downloads in verified.stdout + verified.stderr
    configured = project.manage("configureserver", "--env", ENV, **uv)
    assert "python: uv python install 3.13 (into /opt/djaploy/python)" in steps(configured.stdout, second)
    project.manage("deploy", "--env", ENV, "--latest", **uv)
    version, prefix, django, _ = page(second).split("|", 3)
    assert version == "3.13.5" and prefix == "/opt/djaploy/python/uv-3.13.5" and django.startswith("django 6.0")
    assert run_on(second, "readlink /opt/djaploy/python/uv-3.13.5").strip().startswith("/opt/djaploy/python/.uv/")
    assert run_on(second, "ls ~/.local/bin 2>/dev/null | grep -c python || true").strip() == "0"  # on no PATH
    again = project.manage("configureserver", "--env", ENV, **uv)
    assert [step for step in steps(again.stdout, second) if step.startswith("python:")] == []


def test_a_wrong_sha256_stops_before_building_and_the_live_release_keeps_serving(project: Project,
                                                                                 sandbox_hosts) -> None:
    second = sandbox_hosts[1]
    serving = page(second)  # uv's interpreter, from the test above (its live release never used this folder)
    run_on(second, "rm -rf /opt/djaploy/python/source-3.13.5")
    wrong = "0" * 64
    failed = project.manage("configureserver", "--env", ENV, check=False, PY_E2E_HOSTS="2", PY_E2E_SHA256=wrong)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "python_source['sha256'] does not match" in output and wrong in output and SHA256 in output, output
    done = steps(failed.stdout, second)
    assert done[-1] == f"python: download {URL} and check its sha256", done
    assert not any(step.startswith(("python: compile", "python: build dependencies")) for step in done)
    assert run_on(second, "ls /opt/djaploy/python/").split().count("source-3.13.5") == 0
    assert page(second) == serving
