"""The tailscale module's options: module_options["tailscale"] of one host, checked into
`Settings` before anything touches the host; errors name config.py, the host and the option."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from djaploy.config import Target
from djaploy.modules.options import (
    ENV_PREFIX,
    check_bool,
    check_option_names,
    env_variable,
    module_options,
    option_error,
)

NAME = "tailscale"
OPTION_NAMES = ("auth_key", "ssh", "tags", "hostname", "restrict_ssh", "install", "repository", "key_url")
DEFAULT_REPOSITORY = "https://pkgs.tailscale.com/stable"
TAG_RE = re.compile(r"tag:[a-z0-9][a-z0-9-]*")
HOSTNAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
URL_RE = re.compile(r"https://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~/%+-]*)?")


@dataclass(frozen=True)
class Settings:
    """One host's tailnet settings. `auth_key` is the key itself once read from the environment
    (the variable's name when checked without it)."""

    auth_key: str = field(repr=False)
    ssh: bool = False
    tags: tuple[str, ...] = ()
    hostname: str = ""
    restrict_ssh: bool = False
    install: bool = True
    repository: str = DEFAULT_REPOSITORY  # + /<os id>: debian, ubuntu
    key_url: str = ""  # default: <repository>/<os id>/<codename>.noarmor.gpg


def settings_for(target: Target, config_dir: Path | None, environ: Mapping[str, str] | None = os.environ) -> Settings:
    """Check the host's tailscale options; `environ` None checks the auth key's form only."""
    options = module_options(target, NAME)

    def fail(key: str, message: str) -> NoReturn:
        raise option_error(target, config_dir, NAME, key, message)

    check_option_names(options, OPTION_NAMES, fail)
    raw_key = options.get("auth_key")
    variable = env_variable(raw_key) if isinstance(raw_key, str) else None
    if not variable:
        fail("auth_key", f"expected {ENV_PREFIX}NAME: the auth key is read from your environment variable NAME, "
                         "never written in the repository")
    auth_key = variable
    if environ is not None:
        auth_key = environ.get(variable, "")
        if not auth_key:
            fail("auth_key", f"reads ${variable}, which is not set in your environment")
        if "\n" in auth_key.strip():
            fail("auth_key", f"${variable} holds more than one line; give the auth key only")
    tags = options.get("tags", ())
    if isinstance(tags, str) or not all(isinstance(tag, str) and TAG_RE.fullmatch(tag) for tag in tags):
        fail("tags", f"expected a list of tags like ['tag:web'], got {tags!r}")
    hostname = options.get("hostname", "")
    if not isinstance(hostname, str) or (hostname and not HOSTNAME_RE.fullmatch(hostname)):
        fail("hostname", f"expected a host name (lower case letters, digits, -), got {hostname!r}")
    urls = {}
    for key, default in (("repository", DEFAULT_REPOSITORY), ("key_url", "")):
        value = options.get(key, default)
        if not isinstance(value, str) or (value and not URL_RE.fullmatch(value)):
            fail(key, f"expected an https:// URL, got {value!r}")
        urls[key] = value.rstrip("/")
    return Settings(auth_key.strip(), check_bool(options, "ssh", False, fail), tuple(tags), hostname,
                    check_bool(options, "restrict_ssh", False, fail), check_bool(options, "install", True, fail), **urls)
