"""The small framework config.py's dataclasses are validated with: a field declares its type and its rules once.

`setting(kind, default, check=...)` declares a dataclass field whose metadata says which Python type
it takes (a `Kind`) and which rule its value must follow (a `Check`); `Validated`'s constructor
derives its checks from that, so a typo or a wrong type is a ``ConfigError`` naming the field
instead of a bare ``TypeError``. The check combinators (`matches`, `all_of`, `each`, ...) build
rules from smaller ones. Nothing here knows what a deployment is: config.py says that.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path, PurePath
from typing import Any, ClassVar

from djaploy.errors import ConfigError
from djaploy.modules.options import did_you_mean

#: a rule on an already type-checked value: returns what is wrong with it, or None if it is fine
Check = Callable[[Any], "str | None"]


# --- types: what Python type a field accepts, worded for "expected ..., got ..." --------------


def _got(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} ({text if len(text) <= 40 else text[:37] + '...'})"


@dataclass(frozen=True)
class Kind:
    """A field's accepted Python type; `problem` returns "got ..." when a value is not of it."""

    label: str
    problem: Callable[[Any], str | None]
    normalize: Callable[[Any], Any] = lambda value: value


def _instance_of(*types: type) -> Callable[[Any], str | None]:
    """bool is refused unless asked for: True is an int to Python but never a port number."""

    def problem(value: Any) -> str | None:
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            return f"got {_got(value)}"
        return None

    return problem


def _list_problem(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)):
        return f"got {_got(value)}"
    bad = next((item for item in value if not isinstance(item, str)), None)
    return None if bad is None else f"got a {type(value).__name__} containing {_got(bad)}"


def _dict_of(value_type: type) -> Callable[[Any], str | None]:
    def problem(value: Any) -> str | None:
        if not isinstance(value, Mapping):
            return f"got {_got(value)}"
        for key, item in value.items():
            if not isinstance(key, str):
                return f"got a dict with key {_got(key)}"
            if not isinstance(item, value_type):
                return f"got {_got(item)} for key {key!r}"
        return None

    return problem


STR = Kind("str", _instance_of(str))
INT = Kind("int", _instance_of(int))
BOOL = Kind("bool", _instance_of(bool))
DIR = Kind("str or Path", _instance_of(str, PurePath), Path)
FILE = Kind("str or Path", _instance_of(str, PurePath), str)
#: a path inside the project (like manage.py's), kept in POSIX form: it names a file in the release too
RELATIVE_PATH = Kind("str or Path", _instance_of(str, PurePath), lambda value: PurePath(value).as_posix())
STR_LIST = Kind("list of str", _list_problem, list)
STR_DICT = Kind("dict of str to str", _dict_of(str), dict)
MAPPING = Kind("dict", _instance_of(Mapping), dict)
OPTIONS = Kind("dict of module name to dict", _dict_of(Mapping), lambda v: {k: dict(o) for k, o in v.items()})


# --- value rules ------------------------------------------------------------------------------


def matches(regex: str | re.Pattern[str], problem: str) -> Check:
    """`problem` is a format string; {v!r} is the offending value."""
    compiled = re.compile(regex)
    return lambda value: None if compiled.fullmatch(value) else problem.format(v=value)


def all_of(*checks: Check) -> Check:
    return lambda value: next((p for check in checks if (p := check(value))), None)


def each(check: Check) -> Check:
    return lambda items: next((p for item in items if (p := check(item))), None)


def each_key(check: Check) -> Check:
    return lambda mapping: each(check)(list(mapping))


def each_value(check: Check) -> Check:
    return lambda mapping: each(check)(list(mapping.values()))


def unique(what: str) -> Check:
    def check(items: Sequence[str]) -> str | None:
        twice = sorted({item for item in items if items.count(item) > 1})
        return f"{what} {', '.join(map(repr, twice))} listed more than once" if twice else None

    return check


def at_least(minimum: int) -> Check:
    return lambda value: None if value >= minimum else f"must be at least {minimum}, got {value}"


def one_of(choices: Sequence[str], what: str) -> Check:
    def check(value: str) -> str | None:
        if value in choices:
            return None
        return f"unknown {what} {value!r}{did_you_mean(value, choices)}; valid: {', '.join(choices)}"

    return check


not_empty = matches(r".+", "must not be empty")


# --- fields -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    kind: Kind
    check: Check | None = None
    optional: bool = False


def setting(kind: Kind, default: Any = MISSING, *, check: Check | None = None, factory: Any = MISSING,
            secret: bool = False) -> Any:
    """Declare a validated field; a None default makes None an accepted value."""
    metadata = {"spec": Spec(kind, check, optional=default is None), "secret": secret}
    return field(default=default, default_factory=factory, metadata=metadata)


def repr_hiding_secrets(obj: Any) -> str:
    """Like the dataclass repr, but secret values print as '***' so logs and tracebacks never leak them."""
    parts = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get("secret") and isinstance(value, Mapping):
            parts.append(f"{f.name}={{{', '.join(f'{key!r}: ***' for key in value)}}}")
        else:
            parts.append(f"{f.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"


class Validated:
    """Constructor shared by the config dataclasses: binds, type-checks and rule-checks each field."""

    _positional: ClassVar[tuple[str, ...]] = ()
    #: alternative keyword -> field name
    _aliases: ClassVar[Mapping[str, str]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given = self._bind(args, kwargs)
        for f in fields(self):  # type: ignore[arg-type]
            setattr(self, f.name, self._value(f, given))
        self._check()

    __repr__ = repr_hiding_secrets

    def _check(self) -> None:
        """Rules spanning several fields; each field's own rules have already passed."""

    def _error(self, message: str, name: str | None = None) -> ConfigError:
        cls = type(self).__name__
        return ConfigError(message, field=f"{cls}.{name}" if name else cls)

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Map arguments to field names, refusing unknown, aliased-twice and surplus positional ones."""
        if len(args) > len(self._positional):
            allowed = ", ".join(self._positional) or "none"
            raise self._error(f"positional arguments allowed: {allowed}; pass the other fields as field=value")
        given = dict(zip(self._positional, args))
        spelled = {name: name for name in given}
        names = [f.name for f in fields(self)]  # type: ignore[arg-type]
        for key, value in kwargs.items():
            name = self._aliases.get(key, key)
            if name not in names:
                hint = did_you_mean(key, [*names, *self._aliases]) or f"; valid fields: {', '.join(names)}"
                raise self._error(f"unknown field {key!r}{hint}")
            if name in given:
                raise self._error(f"give either {spelled[name]!r} or {key!r}, not both"
                                  if spelled[name] != key else f"{key!r} is given twice")
            given[name], spelled[name] = value, key
        return given

    def _value(self, f: Field[Any], given: dict[str, Any]) -> Any:
        spec: Spec = f.metadata["spec"]
        if f.name not in given:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
            raise self._error(f"missing required field {f.name!r}")
        value = given[f.name]
        if value is None and spec.optional:
            return None
        got = spec.kind.problem(value)
        if got:
            raise self._error(f"expected {spec.kind.label}{' or None' if spec.optional else ''}, {got}", f.name)
        value = spec.kind.normalize(value)
        problem = spec.check(value) if spec.check else None
        if problem:
            raise self._error(problem, f.name)
        return value
