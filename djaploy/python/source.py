"""The source provider's commands: download and check a CPython tarball, build it, pack the
installed tree for the cache, install a packed build. Pure: every value is quoted (unit tested).

The build host installs the build dependencies; a host that gets the packed build installs only
the shared libraries the build links against (listed by the build host from ldd and dpkg).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from djaploy import shell
from djaploy.python.naming import BUILDS_DIR, COMPLETE_MARKER, minor_of

#: what CPython's optional modules need (ssl sqlite3 ctypes lzma bz2 readline uuid curses dbm tkinter)
BUILD_PACKAGES = ("build-essential", "curl", "xz-utils", "libssl-dev", "zlib1g-dev", "libbz2-dev", "libreadline-dev",
                  "libsqlite3-dev", "libffi-dev", "liblzma-dev", "libncurses-dev", "libgdbm-dev", "uuid-dev", "tk-dev")
#: the modules a good build has (a missing -dev package silently drops one): checked before packing and after installing
REQUIRED_MODULES = ("ssl", "sqlite3", "ctypes", "lzma", "bz2", "zlib", "readline", "uuid", "venv", "ensurepip")
#: lines of the build log an error quotes
LOG_TAIL_LINES = 30


def probe_command(prefix: str) -> str:
    """Prints installed=yes|no, the OS release (debian-12) and the machine (x86_64): one round trip."""
    marker = shell.q(posixpath.join(prefix, COMPLETE_MARKER))
    return (f"if [ -f {marker} ]; then echo installed=yes; else echo installed=no; fi; "
            "if [ -r /etc/os-release ]; then . /etc/os-release; fi; "
            'echo "os=${ID:-unknown}-${VERSION_ID:-unknown}"; echo "machine=$(uname -m)"')


def work_dir(build: str) -> str:
    """Where one build downloads, compiles and logs (kept after a failure, for its log)."""
    return posixpath.join(BUILDS_DIR, build + ".work")


def download_command(url: str, sha256: str, work: str) -> str:
    """Download the tarball and check its sha256 before anything else happens with it."""
    tarball = q_join(work, "source.tar")
    return (
        f"rm -rf {shell.q(work)} && mkdir -p {shell.q(work)} && "
        f"curl -fsSL --retry 3 -o {tarball} {shell.q(url)} && "
        f"actual=$(sha256sum {tarball} | cut -d' ' -f1) && "
        f"if [ \"$actual\" != {shell.q(sha256)} ]; then "
        f"echo \"python_source['sha256'] does not match the download of \"{shell.q(url)}\": "
        f"expected \"{shell.q(sha256)}\", the download has $actual; nothing was built\" >&2; "
        f"rm -f {tarball}; exit 1; fi; echo \"sha256 ok: $actual\""
    )


def build_command(version: str, work: str, prefix: str, flags: Sequence[str]) -> str:
    """Configure, make and install into a staging folder under `work`, logging to work/build.log.

    A failure prints the log's tail and where the full log is, and exits 1."""
    log = posixpath.join(work, "build.log")
    stage = posixpath.join(work, "stage")
    # test/ is dropped from the packed tree anyway: not building it saves minutes of install and bytecode
    configure = shell.join(["./configure", f"--prefix={prefix}", "--with-ensurepip=install", "--disable-test-modules",
                            *flags])
    steps = (f"cd {shell.q(work)} && mkdir -p src && tar -xf source.tar -C src --strip-components=1 && cd src && "
             f"{configure} && make -j\"$(nproc)\" && make altinstall DESTDIR={shell.q(stage)}")
    return (
        f"( {steps} ) > {shell.q(log)} 2>&1 || {{ tail -n {LOG_TAIL_LINES} {shell.q(log)}; "
        f"echo {shell.q(f'building CPython {version} failed; the full log is on the host: {log}')}; exit 1; }}"
    )


def _imports_check(python: str) -> str:
    return f"{shell.q(python)} -c {shell.q('import ' + ', '.join(REQUIRED_MODULES))}"


def _runtime_libraries(prefix: str, version: str, out: str) -> str:
    """The OS packages of the shared libraries the build links against (tkinter's X11 left out)."""
    lib = posixpath.join(prefix, "lib", f"python{minor_of(version)}", "lib-dynload")
    binary = posixpath.join(prefix, "bin", f"python{minor_of(version)}")
    return (
        f"for f in {shell.q(binary)} {shell.q(lib)}/*.so; do case \"$f\" in *_tkinter*) continue;; esac; ldd \"$f\"; "
        "done 2>/dev/null | awk '$2 == \"=>\" && $3 ~ /^\\// {print $3}' | sort -u | "
        "while read -r l; do dpkg -S \"$l\" 2>/dev/null || dpkg -S \"$(readlink -f \"$l\")\" 2>/dev/null; done | "
        f"cut -d: -f1 | sort -u > {shell.q(out)}"
    )


def install_built_command(version: str, work: str, prefix: str, archive: str, packages_file: str) -> str:
    """Move the staged tree into place, drop test/ and __pycache__, pack it for the cache, check it,
    list its runtime libraries, then compile the standard library and mark the install complete."""
    minor = minor_of(version)
    staged = shell.q(posixpath.join(work, "stage") + prefix)
    stdlib = posixpath.join(prefix, "lib", f"python{minor}")
    python = posixpath.join(prefix, "bin", f"python{minor}")
    return (
        f"rm -rf {shell.q(prefix)} && mv {staged} {shell.q(prefix)} && "
        f"rm -rf {shell.q(stdlib + '/test')} {shell.q(stdlib + '/idlelib/idle_test')} && "
        f"find {shell.q(prefix)} -name __pycache__ -type d -prune -exec rm -rf {{}} + && "
        f"{_imports_check(python)} && find {shell.q(prefix)} -name __pycache__ -type d -prune -exec rm -rf {{}} + && "
        f"tar -czf {shell.q(archive + '.tmp')} -C {shell.q(prefix)} . && mv -f {shell.q(archive + '.tmp')} {shell.q(archive)} && "
        f"{_runtime_libraries(prefix, version, packages_file)} && "
        f"{_finish(python, stdlib, prefix)} && rm -rf {shell.q(work)}"
    )


def install_packed_command(version: str, upload: str, prefix: str) -> str:
    """A host that gets the cached build: extract, check it runs with its modules, finish."""
    minor = minor_of(version)
    python = posixpath.join(prefix, "bin", f"python{minor}")
    return (
        f"rm -rf {shell.q(prefix)} && mkdir -p {shell.q(prefix)} && "
        f"tar -xzf {shell.q(upload)} -C {shell.q(prefix)} --no-same-owner && rm -f {shell.q(upload)} && "
        f"{_imports_check(python)} && {_finish(python, posixpath.join(prefix, 'lib', f'python{minor}'), prefix)}"
    )


def _finish(python: str, stdlib: str, prefix: str) -> str:
    """Bytecode for the standard library (the app user cannot write it later), then the marker."""
    return (f"{{ {shell.q(python)} -m compileall -q -j0 -x '/(test|idle_test)/' {shell.q(stdlib)} >/dev/null || true; }} && "
            f"touch {shell.q(posixpath.join(prefix, COMPLETE_MARKER))}")


def q_join(*parts: str) -> str:
    return shell.q(posixpath.join(*parts))
