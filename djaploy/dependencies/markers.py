"""Poetry's conditions as PEP 508 markers: `extra` clauses resolved, python constraints translated.

Used by the Poetry graph walk, which combines the markers of every edge on a path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from packaging.markers import InvalidMarker, Marker
from packaging.utils import canonicalize_name

from djaploy.errors import ArtifactError


def constraint_marker(constraint: Mapping[str, Any], extras: frozenset[str], source: str) -> str | bool:
    """The condition of one dependency edge: its markers, python and platform keys, extras resolved."""
    parts: list[str] = []
    if constraint.get("markers"):
        marker = rewrite_marker(constraint["markers"], extras, source)
        if marker is False:
            return False
        if marker is not True:
            parts.append(marker)
    if constraint.get("python"):
        python = python_marker(constraint["python"], source)
        if python:
            parts.append(python)
    if constraint.get("platform"):
        parts.append(f'sys_platform == "{constraint["platform"]}"')
    return " and ".join(f"({part})" if " or " in part else part for part in parts)


def all_of(left: str, right: str) -> str:
    """Both markers ("" = always)."""
    if not left or not right:
        return left or right
    return f"({left}) and ({right})" if " or " in left + right else f"{left} and {right}"


def any_of(markers: set[str]) -> str:
    """Any of the markers ("" = always)."""
    if "" in markers:
        return ""
    ordered = sorted(markers)
    return ordered[0] if len(ordered) == 1 else " or ".join(f"({marker})" for marker in ordered)


def rewrite_marker(text: str, extras: frozenset[str], source: str = "poetry.lock") -> str | bool:
    """Resolve `extra == "x"` clauses (true when x is requested) and keep every other clause."""
    try:
        parsed = Marker(text)._markers
    except InvalidMarker as error:
        raise ArtifactError(f"{source}: invalid marker {text!r}: {error}") from None
    wanted = {canonicalize_name(extra) for extra in extras}
    return _rewrite_nodes(parsed, wanted)


def _rewrite_nodes(nodes: list[Any], extras: set[str]) -> str | bool:
    groups: list[list[str | bool]] = [[]]
    for node in nodes:
        if node == "or":
            groups.append([])
        elif node != "and":
            groups[-1].append(_rewrite_node(node, extras))
    alternatives: list[str] = []
    for group in groups:
        if False in group:
            continue
        terms = [term for term in group if term is not True]
        if not terms:
            return True
        alternatives.append(" and ".join(f"({t})" if " or " in t else t for t in terms))  # type: ignore[misc]
    if not alternatives:
        return False
    return alternatives[0] if len(alternatives) == 1 else " or ".join(alternatives)


def _rewrite_node(node: Any, extras: set[str]) -> str | bool:
    if isinstance(node, list):
        return _rewrite_nodes(node, extras)
    left, op, right = node
    if "extra" in (left.value if type(left).__name__ == "Variable" else None,
                   right.value if type(right).__name__ == "Variable" else None):
        value = right.value if type(left).__name__ == "Variable" else left.value
        hit = canonicalize_name(value) in extras
        return hit if op.value == "==" else not hit
    return f"{left.serialize()} {op.serialize()} {right.serialize()}"


_CONSTRAINT_RE = re.compile(r"^(\^|~=|~|==|!=|>=|<=|>|<|=)?\s*([0-9][0-9a-zA-Z.*+!-]*)$")


def python_marker(constraint: str, source: str = "poetry.lock") -> str:
    """A Poetry python constraint ("^3.8", ">=3.6,<4", "3.9.*", "~3.7 || >=3.10") as a PEP 508 marker."""
    alternatives = []
    for alternative in constraint.split("||"):
        terms = []
        for part in re.split(r"\s*,\s*|\s+(?=[\^~<>=!])", alternative.strip()):
            if part in ("", "*"):
                continue
            match = _CONSTRAINT_RE.match(part)
            if not match:
                raise ArtifactError(f"{source}: cannot read the python constraint {constraint!r}")
            terms += _python_terms(match.group(1) or "==", match.group(2))
        if not terms:
            return ""
        alternatives.append(" and ".join(terms))
    return alternatives[0] if len(alternatives) == 1 else " or ".join(f"({a})" for a in alternatives)


def _python_terms(op: str, version: str) -> list[str]:
    def term(operator: str, value: str) -> str:
        return f'python_full_version {operator} "{value}"'

    numbers = [int(n) for n in version.split(".") if n.isdigit()]
    if op == "^":
        first = next((i for i, n in enumerate(numbers) if n), len(numbers) - 1)
        upper = numbers[: first + 1]
        upper[-1] += 1
        return [term(">=", version), term("<", ".".join(map(str, upper)))]
    if op == "~":
        upper = numbers[:2] if len(numbers) > 1 else numbers[:1]
        upper[-1] += 1
        return [term(">=", version), term("<", ".".join(map(str, upper)))]
    return [term("==" if op == "=" else op, version)]
