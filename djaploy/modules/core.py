"""core: the app user, its directories, Python, the virtualenv, the env file, migrations.

configure_server makes a bare Debian/Ubuntu host ready for the app (installs uv, and the app's
interpreter with djaploy.python; a host with only db or lb roles gets the base packages only);
prepare_release installs a release's pinned dependencies (with uv, else pip) and runs its
migrations (unless a fleet's primary runs them once) and collectstatic before it serves; verify
requires the site to answer its health check through the web server (web hosts).
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

from djaploy import shell
from djaploy.context import HostContext
from djaploy.deploy_files import install_deploy_files
from djaploy.fast_paths import unsettled_directories
from djaploy.fleet import is_app_host
from djaploy.layout import VENV_COMPLETE_MARKER, VENV_LINK_NAME
from djaploy.modules.base import BaseModule
from djaploy.python.provide import provide_python
from djaploy.python.settings import python_settings
from djaploy.timings import timed_into

if TYPE_CHECKING:
    from djaploy.config import Target


class Module(BaseModule):
    name = "core"
    option_names = ()  # deploy_files/ has its own key: module_options["deploy_files"]
    #: python3 runs djaploy's own tools (uv); the app's interpreter is djaploy.python's
    apt_packages = ("python3", "python3-venv", "sudo", "curl", "ca-certificates", "tar", "gzip")

    def check_target(self, target: Target, config_dir: Path | None) -> None:
        super().check_target(target, config_dir)
        python_settings(target)  # a source tarball of another version, or "source" without one

    def configure_server(self, ctx: HostContext) -> None:
        plan, paths, user = ctx.plan, ctx.paths, ctx.target.app_user
        plan.packages("core: install python and tools", self.apt_packages)
        if not is_app_host(ctx.target):
            return  # a db or lb host runs no release: no app user, folders or uv
        plan.user("core: app user (no sudo rights)", user, home=paths.home)
        # nginx (www-data) must traverse into shared/ for static and media files.
        wanted = [(path, user, "755") for path in (paths.home, paths.apps_dir, paths.app_root, paths.shared,
                                                   paths.static_root, paths.media_root)]
        wanted += [(path, user, "750") for path in (paths.data_dir, paths.meta_dir, paths.uploads_dir)]
        for path, owner, mode in unsettled_directories(plan, wanted):  # one round trip when all are there
            plan.directory(f"core: directory {path}", path, owner=owner, mode=mode)
        self._install_uv(ctx)
        provide_python(ctx)  # after uv: the uv provider installs with it

    def _install_uv(self, ctx: HostContext) -> None:
        """uv installs each release's pinned requirements (fast, one cache); only once per host."""
        paths = ctx.paths
        if ctx.plan.query(f"test -x {shell.q(paths.uv_bin)}").ok:
            return
        ctx.plan.run(f"core: install uv ({paths.tools_venv})", shell.install_uv(paths.tools_venv, paths.uv_bin, "python3"))

    def prepare_release(self, ctx: HostContext) -> None:
        plan, target = ctx.plan, ctx.target
        install_deploy_files(ctx)
        assert ctx.release and ctx.code_dir
        # The pinned list sits beside the project's lock file: relative paths in it resolve there.
        requirements = posixpath.join(ctx.code_dir, ctx.release.requirements_path)
        venv_link = f"{ctx.code_dir}/{VENV_LINK_NAME}"
        with timed_into(ctx.timings, "install"):
            plan.run(
                "core: virtualenv and requirements",
                shell.ensure_venv(ctx.venv_dir, ctx.python, requirements, VENV_COMPLETE_MARKER,
                                  uv=ctx.paths.uv_bin, cwd=posixpath.dirname(requirements))
                + f" && ln -sfn {shell.q(ctx.venv_dir)} {shell.q(venv_link)}",
                as_user=target.app_user,
            )
        plan.put_text("core: env file", ctx.env_file, shell.render_env_file(ctx.app_environment()),
                      owner=target.app_user, mode="600")
        if ctx.runs_migrations:  # a fleet's primary migrates once, after every host staged (djaploy.rollout)
            with timed_into(ctx.timings, "migrate"):
                ctx.manage("core: migrate", "migrate", "--noinput")
        with timed_into(ctx.timings, "collectstatic"):
            ctx.manage("core: collectstatic", "collectstatic", "--noinput", "-v", "0")

    def verify(self, ctx: HostContext) -> None:
        if "web" not in ctx.target.roles:
            return  # a worker host serves no site
        ctx.plan.run(
            f"core: health check {ctx.target.health_check_path}",
            shell.http_check(ctx.health_host, ctx.target.health_check_path),
        )
