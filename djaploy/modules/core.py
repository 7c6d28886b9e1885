"""core: the app user, its directories, Python, the virtualenv, the env file, migrations.

configure_server makes a bare Debian/Ubuntu host ready for the app (and installs uv);
prepare_release installs a release's pinned dependencies (with uv, else pip) and runs its
migrations and collectstatic before it serves; verify requires the site to answer its health
check through the web server.
"""

from __future__ import annotations

import posixpath

from djaploy import shell
from djaploy.context import HostContext
from djaploy.deploy_files import install_deploy_files
from djaploy.errors import RemoteError
from djaploy.fast_paths import unsettled_directories
from djaploy.layout import VENV_COMPLETE_MARKER, VENV_LINK_NAME
from djaploy.modules.base import BaseModule
from djaploy.timings import timed_into


class Module(BaseModule):
    name = "core"
    option_names = ()  # deploy_files/ has its own key: module_options["deploy_files"]
    apt_packages = ("python3", "python3-venv", "sudo", "curl", "ca-certificates", "tar", "gzip")

    def configure_server(self, ctx: HostContext) -> None:
        plan, paths, user = ctx.plan, ctx.paths, ctx.target.app_user
        plan.packages("core: install python and tools", self.apt_packages)
        self._require_python(ctx)
        plan.user("core: app user (no sudo rights)", user, home=paths.home)
        # nginx (www-data) must traverse into shared/ for static and media files.
        wanted = [(path, user, "755") for path in (paths.home, paths.apps_dir, paths.app_root, paths.shared,
                                                   paths.static_root, paths.media_root)]
        wanted += [(path, user, "750") for path in (paths.data_dir, paths.meta_dir, paths.uploads_dir)]
        for path, owner, mode in unsettled_directories(plan, wanted):  # one round trip when all are there
            plan.directory(f"core: directory {path}", path, owner=owner, mode=mode)
        self._install_uv(ctx)

    def _install_uv(self, ctx: HostContext) -> None:
        """uv installs each release's pinned requirements (fast, one cache); only once per host."""
        paths = ctx.paths
        if ctx.plan.query(f"test -x {shell.q(paths.uv_bin)}").ok:
            return
        ctx.plan.run(f"core: install uv ({paths.tools_venv})", shell.install_uv(paths.tools_venv, paths.uv_bin, ctx.python))

    def _require_python(self, ctx: HostContext) -> None:
        if ctx.plan.dry_run:
            return
        found = ctx.plan.query(f"command -v {shell.q(ctx.python)}")
        if not found.ok:
            raise RemoteError(
                ctx.target.name,
                "core: check python",
                hint=f"{ctx.python} is not available on this host after installing python3; set "
                f"python_version in config.py to the host's Python (Debian 12: 3.11, Ubuntu 24.04: 3.12)",
            )

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
        with timed_into(ctx.timings, "migrate"):
            ctx.manage("core: migrate", "migrate", "--noinput")
        with timed_into(ctx.timings, "collectstatic"):
            ctx.manage("core: collectstatic", "collectstatic", "--noinput", "-v", "0")

    def verify(self, ctx: HostContext) -> None:
        ctx.plan.run(
            f"core: health check {ctx.target.health_check_path}",
            shell.http_check(ctx.health_host, ctx.target.health_check_path),
        )
