"""configure_server's interpreter: choose the provider, install (or find) it, record it for deploys.

Every step asks first: a second configureserver changes nothing. A source build runs on the
first host that needs it; every other host, in this run (it waits for the build) or a later one,
gets the packed build from the deploying machine's cache instead (its steps say so).
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from djaploy.errors import RemoteError
from djaploy.python import choice, source, uv
from djaploy.python.cache import CachedBuild, building
from djaploy.python.naming import (
    BUILDS_DIR,
    PYTHON_ROOT,
    Interpreter,
    build_name,
    executable,
    install_dir,
)
from djaploy.python.record import record_path, record_text
from djaploy.python.settings import PythonSettings, python_settings

if TYPE_CHECKING:
    from djaploy.context import HostContext


def facts(output: str) -> dict[str, str]:
    """key=value lines."""
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def apt_has(ctx: HostContext, version: str) -> bool:
    """Whether the OS carries python3.X: installed already, or in its apt sources."""
    return facts(ctx.plan.query(choice.apt_has_command(version)).stdout).get("apt") == "yes"


def provider_for(ctx: HostContext, settings: PythonSettings) -> str:
    if settings.provider != "auto":
        return settings.provider
    return choice.choose("auto", apt_has(ctx, settings.version))


def provide_python(ctx: HostContext) -> Interpreter | None:
    """Make the app's interpreter present and record it; None in a dry run that cannot know it yet."""
    settings = python_settings(ctx.target)
    provider = provider_for(ctx, settings)
    ctx.plan.directory(f"python: directory {PYTHON_ROOT}", PYTHON_ROOT, mode="755")
    interpreter = {"system": _system, "uv": _uv, "source": _source}[provider](ctx, settings)
    if interpreter is not None:
        ctx.plan.put_text(f"python: record the app's interpreter (Python {interpreter.version}, {provider})",
                          record_path(ctx.paths.meta_dir), record_text(interpreter), mode="644")
    return interpreter


def _system(ctx: HostContext, settings: PythonSettings) -> Interpreter | None:
    version = settings.version
    if settings.provider == "system" and not apt_has(ctx, version):
        raise RemoteError(ctx.target.name, "python: check the OS has python" + version,
                          hint=f"this host's OS has no python{version} package (python_provider='system'); set "
                          "python_provider='uv' or 'source' (docs/python.md), or python_version to the OS's Python")
    ctx.plan.packages(f"python: python{version} from the OS (system)", choice.system_packages(version))
    full = ctx.plan.query(choice.system_version_command(version)).stdout.strip()
    if not full:
        if ctx.plan.dry_run:
            return None
        raise RemoteError(ctx.target.name, f"python: python{version} from the OS",
                          hint=f"/usr/bin/python{version} is missing after installing its package")
    return Interpreter("system", full, executable("system", full))


def _found(output: str) -> tuple[str, str] | None:
    found = facts(output)
    return (found["version"], found["python"]) if found.get("version") and found.get("python") else None


def _uv(ctx: HostContext, settings: PythonSettings) -> Interpreter | None:
    uv_bin = ctx.paths.uv_bin
    found = _found(ctx.plan.query(uv.find_command(uv_bin, settings)).stdout)
    if found is None:
        result = ctx.plan.run(f"python: uv python install {settings.version} (into {PYTHON_ROOT})",
                              uv.install_command(uv_bin, settings))
        found = _found(result.stdout)
        if found is None:
            if ctx.plan.dry_run:
                return None
            raise RemoteError(ctx.target.name, f"python: uv python install {settings.version}", result.stdout[-2000:],
                              hint=f"uv installed Python {settings.version} but cannot find it afterwards")
    version, python = found
    link = install_dir("uv", version)
    ctx.plan.link(f"python: {link} (uv's Python {version})", link, uv.tree_of(python))
    return Interpreter("uv", version, executable("uv", version))


def _source(ctx: HostContext, settings: PythonSettings) -> Interpreter:
    release = settings.source
    assert release  # python_settings refuses "source" without python_source
    prefix = install_dir("source", release.version)
    interpreter = Interpreter("source", release.version, executable("source", release.version))
    host = facts(ctx.plan.query(source.probe_command(prefix)).stdout)
    if host.get("installed") == "yes":
        return interpreter
    name = build_name(release.version, host.get("os", "unknown"), host.get("machine", "unknown"), settings.build_digest)
    cached = CachedBuild.named(name)
    with building(name):
        if cached.exists():
            _install_cached(ctx, cached, release.version, prefix)
        else:
            _build(ctx, settings, cached, prefix)
    return interpreter


def _install_cached(ctx: HostContext, cached: CachedBuild, version: str, prefix: str) -> None:
    plan = ctx.plan
    packages = cached.packages()
    if packages:
        plan.packages("python: libraries the cached build links against", packages)
    plan.directory(f"python: directory {BUILDS_DIR}", BUILDS_DIR, mode="700")
    upload = posixpath.join(BUILDS_DIR, f"{cached.name}.tar.gz")
    plan.put_file(f"python: upload the cached build {cached.name} (no compile on this host)", str(cached.archive),
                  upload, mode="600")
    plan.run(f"python: install the cached build into {prefix}", source.install_packed_command(version, upload, prefix))


def _build(ctx: HostContext, settings: PythonSettings, cached: CachedBuild, prefix: str) -> None:
    plan, release = ctx.plan, settings.source
    assert release
    work = source.work_dir(cached.name)
    archive = posixpath.join(BUILDS_DIR, f"{cached.name}.tar.gz")
    packages_file = posixpath.join(BUILDS_DIR, f"{cached.name}.packages")
    plan.directory(f"python: directory {BUILDS_DIR}", BUILDS_DIR, mode="700")
    # The checksum first: a mismatch stops before a package is installed or a line is compiled.
    plan.run(f"python: download {release.url} and check its sha256",
             source.download_command(release.url, release.sha256, work))
    plan.packages("python: build dependencies", source.BUILD_PACKAGES)
    flags = " ".join(settings.build_flags) or "no optimisation flags"
    plan.run(f"python: compile CPython {release.version} ({flags}; takes minutes)",
             source.build_command(release.version, work, prefix, settings.build_flags))
    plan.run(f"python: install CPython {release.version} into {prefix} and pack it",
             source.install_built_command(release.version, work, prefix, archive, packages_file))
    if plan.dry_run:
        return
    incoming = cached.incoming()
    plan.fetch_file(f"python: keep the build in the local cache ({cached.folder})", archive, str(incoming))
    packages = plan.query(f"cat {source.q_join(packages_file)}").stdout.split()
    cached.keep(incoming, packages)
    plan.run("python: remove the packed build from the host", f"rm -f {source.q_join(archive)} {source.q_join(packages_file)}")
