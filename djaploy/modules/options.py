"""Reading and checking a module's options: the helpers the built-in modules use, public for yours.

A module's options are ``module_options[KEY]`` in config.py, updated key by key by a host's own
``module_options``. KEY is the module's ``name``, its dotted path in ``modules``, or that path's
last part; `module_options` merges every spelling, so a module sees its options however the
user keyed them. Check them in the module's ``check_target`` (it runs before any connection),
and raise the ConfigError of `option_error`, which names config.py, the host and the option:

    def check_target(self, target, config_dir):
        options = module_options(target, self)

        def fail(key: str, message: str) -> NoReturn:
            raise option_error(target, config_dir, self.name, key, message)

        check_option_names(options, ("schedule",), fail)

A module whose options need no more than their names checked sets ``option_names`` instead:
BaseModule's ``check_target`` then refuses any other name, under every spelling of its key
(`checked_options`). This file imports nothing of djaploy but its errors, so any module can
use it.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, Protocol
from urllib.parse import urlsplit

from djaploy.errors import ConfigError, display_path

__all__ = [
    "MIN_SECRET_LENGTH",
    "ENV_NAME_RE",
    "ENV_PREFIX",
    "env_variable",
    "Fail",
    "check_bool",
    "check_email",
    "check_option_names",
    "checked_options",
    "check_url",
    "did_you_mean",
    "is_ip_address",
    "module_options",
    "option_error",
    "option_keys",
    "read_ca_pem",
]

#: a value "env:NAME" is read from the deployer's environment variable NAME at command time
#: (secrets, webhook URLs, DNS credentials): the repository never holds it
ENV_PREFIX = "env:"
#: shorter secrets are refused: replacing every occurrence in output would make it unreadable
MIN_SECRET_LENGTH = 4
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
HOSTNAME_RE = re.compile(r"[A-Za-z0-9.:-]+")  # urlsplit's hostname: IPv6 without brackets

def env_variable(value: str) -> str | None:
    """The variable an "env:NAME" value names (None for a literal value)."""
    return value[len(ENV_PREFIX):] if value.startswith(ENV_PREFIX) else None


#: raises the ConfigError for (option, what is wrong with it)
Fail = Callable[[str, str], NoReturn]


class Host(Protocol):
    """What these helpers read of a host: a `djaploy.config.Target` (not imported: this file is a leaf)."""

    @property
    def name(self) -> str: ...

    @property
    def modules(self) -> Sequence[str]: ...

    @property
    def module_options(self) -> Mapping[str, Mapping[str, Any]]: ...


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' — typos are the commonest config error."""
    choices = list(choices)
    matches = difflib.get_close_matches(word, choices, n=1)
    if not matches and len(word) >= 3:  # abbreviations score low with difflib: 'prod' for 'production'
        matches = [choice for choice in choices if choice.startswith(word)][:1]
    return f" (did you mean {matches[0]!r}?)" if matches else ""


# --- reading ------------------------------------------------------------------------------------


def option_keys(target: Host, module: str | object) -> list[str]:
    """Every key `module`'s options may be given under, lowest precedence first: its dotted
    paths, their last parts, its name. `module` is the module (or its class), or its name;
    by name, a dotted path counts when its last part is the name ('djaploy.modules.nginx')."""
    if isinstance(module, str):
        name = module
        paths = [f"djaploy.modules.{name}", *(path for path in target.modules if path.rpartition(".")[2] == name)]
    else:
        cls = module if isinstance(module, type) else type(module)
        name = getattr(cls, "name", "")
        own = {cls.__module__, f"{cls.__module__}.{cls.__qualname__}"}
        paths = [path for path in target.modules if path in own]
    keys = [*paths, *(path.rpartition(".")[2] for path in paths), name]
    return list(dict.fromkeys(key for key in keys if key))


def module_options(target: Host, module: str | object) -> dict[str, Any]:
    """The module's options under every spelling of its key, merged (its name wins)."""
    merged: dict[str, Any] = {}
    for key in option_keys(target, module):
        merged.update(target.module_options.get(key, {}))
    return merged


# --- checking -----------------------------------------------------------------------------------


def option_error(target: Host, config_dir: Path | None, module: str, key: str, message: str) -> ConfigError:
    """A ConfigError naming config.py, the host and the option."""
    where = display_path(Path(config_dir) / "config.py") if config_dir else "config.py"
    return ConfigError(f"host {target.name}: {message} (set in config.py or the host's entry in its inventory file)",
                       file=where, field=f"module_options[{module!r}][{key!r}]")


def check_option_names(options: Mapping[str, Any], allowed: Sequence[str], fail: Fail) -> None:
    """Refuse an unknown option: a typo would otherwise be silently ignored."""
    for key in options:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            fail(key, f"unknown option{hint}; valid: {', '.join(allowed)}" if allowed else
                 "unknown option; this module takes no options")


def checked_options(target: Host, config_dir: Path | None, module: str | object, allowed: Sequence[str]) -> dict[str, Any]:
    """The module's options, merged, once every spelling of its key holds only `allowed` names;
    an error names the key as the user spelled it. BaseModule.check_target calls this with the
    module's `option_names`."""
    for spelling in option_keys(target, module):
        def fail(key: str, message: str, spelling: str = spelling) -> NoReturn:
            raise option_error(target, config_dir, spelling, key, message)

        check_option_names(target.module_options.get(spelling, {}), allowed, fail)
    return module_options(target, module)


def check_bool(options: Mapping[str, Any], key: str, default: bool, fail: Fail) -> bool:
    """options[key] (or `default`) as a bool; anything else is refused (1 is not True here)."""
    value = options.get(key, default)
    if not isinstance(value, bool):
        fail(key, f"expected True or False, got {value!r}")
    return value


def check_url(value: Any, key: str, fail: Fail) -> str:
    """An http(s) URL with a host name, like an ACME directory."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if not parts or parts.scheme not in ("https", "http") or not HOSTNAME_RE.fullmatch(parts.hostname or ""):
        fail(key, f"expected an ACME directory URL like 'https://acme.example/directory', got {value!r}")
    return value


def check_email(value: Any, key: str, fail: Fail) -> str | None:
    """An email address, or None when not given."""
    if value is None:
        return None
    if not isinstance(value, str) or not EMAIL_RE.fullmatch(value):
        fail(key, f"expected an email address, got {value!r}")
    return value


def read_ca_pem(value: Any, config_dir: Path | None, key: str, fail: Fail) -> str:
    """A CA certificate given as PEM text, or as a file on the deploying machine (relative paths
    are relative to the infra folder). Refuses anything holding a private key: this file is
    installed world-readable."""
    if not isinstance(value, str) or not value.strip():
        fail(key, f"expected a PEM file path or PEM text, got {value!r}")
    if value.lstrip().startswith(PEM_CERTIFICATE):
        text = value
    else:
        path = Path(value).expanduser()
        if not path.is_absolute() and config_dir is not None:
            path = Path(config_dir) / path
        if not path.is_file():
            fail(key, f"{str(path)!r} is not a file; give the CA's PEM file (on this machine) or its PEM text")
        text = path.read_text(errors="replace")
    if PEM_CERTIFICATE not in text:
        fail(key, "holds no PEM certificate ('-----BEGIN CERTIFICATE-----')")
    if "PRIVATE KEY" in text:
        fail(key, "holds a private key; give only the CA certificate (it is installed world-readable)")
    return text if text.endswith("\n") else text + "\n"


def is_ip_address(value: str) -> bool:
    """True for an IPv4 or IPv6 address: public CAs issue certificates for names only."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
