"""One host's interpreter settings, resolved and checked together (the fields are checked one by
one in config.py; here what needs two of them: a source tarball of the configured version)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from djaploy.errors import ConfigError, display_path
from djaploy.python.naming import minor_of, version_in_url

if TYPE_CHECKING:
    from djaploy.config import Target


@dataclass(frozen=True)
class SourceRelease:
    """A CPython release tarball and the sha256 it must have."""

    url: str
    sha256: str
    version: str  # full, from the tarball's name


@dataclass(frozen=True)
class PythonSettings:
    version: str  # 3.X, as configured
    provider: str  # auto, system, uv, source
    source: SourceRelease | None
    build_flags: tuple[str, ...]
    install_mirror: str | None
    downloads_json_url: str | None

    @property
    def build_digest(self) -> str:
        """What else makes two source builds of one version differ: the tarball and the flags."""
        assert self.source
        text = "\n".join([self.source.sha256, *self.build_flags])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def python_settings(target: Target) -> PythonSettings:
    """The host's settings; a ConfigError naming the inventory file and the field when they disagree."""
    source = None
    if target.python_source is not None:
        url = target.python_source["url"]
        version = version_in_url(url) or ""
        if minor_of(version) != target.python_version:
            raise ConfigError(f"host {target.name}: python_source's url is CPython {version}, but python_version "
                              f"is {target.python_version!r}; give a {target.python_version}.x tarball or change "
                              "python_version", file=display_path(target.source_file), field="python_source")
        source = SourceRelease(url, target.python_source["sha256"], version)
    elif target.python_provider == "source":
        raise ConfigError(f"host {target.name}: python_provider 'source' needs python_source={{'url': "
                          "'https://.../Python-3.13.5.tar.xz', 'sha256': '...'}} (the release tarball and its "
                          "sha256)", file=display_path(target.source_file), field="python_source")
    return PythonSettings(target.python_version, target.python_provider, source, tuple(target.python_build_flags),
                          target.python_install_mirror, target.python_downloads_json_url)
