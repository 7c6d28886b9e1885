"""Batch sizes for rolling deploys: `--batch-size 2` (hosts per batch) or `--batch-size 25%` (of the web
hosts, rounded up, at least one). Pure: config.py checks the setting with it, the rollout splits with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TypeVar

Item = TypeVar("Item")

BATCH_SIZE_RE = re.compile(r"([1-9][0-9]*)(%?)")


def batch_size_problem(value: object) -> str | None:
    """Why `value` is not a batch size (an int >= 1, or a string like '2' or '25%'), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return f"expected a number of hosts like 2 or a share like '25%', got {value!r}"
    match = BATCH_SIZE_RE.fullmatch(str(value).strip())
    if not match:
        return f"{value!r} is not a batch size: a number of hosts (1 or more) like 2, or a share like '25%'"
    if match.group(2) and int(match.group(1)) > 100:
        return f"{value!r} is more than 100% of the hosts"
    return None


def hosts_per_batch(size: int | str, hosts: int) -> int:
    """How many of `hosts` go in each batch."""
    problem = batch_size_problem(size)
    if problem:
        raise ValueError(problem)
    match = BATCH_SIZE_RE.fullmatch(str(size).strip())
    assert match
    number = int(match.group(1))
    if match.group(2):
        return max(1, math.ceil(hosts * number / 100))
    return number


def split_batches(items: Sequence[Item], size: int | str | None) -> list[list[Item]]:
    """`items` in order, in batches of `size`; None: one batch holding all (no rolling)."""
    if not items:
        return []
    per_batch = len(items) if size is None else hosts_per_batch(size, len(items))
    return [list(items[start:start + per_batch]) for start in range(0, len(items), per_batch)]


__all__ = ["batch_size_problem", "hosts_per_batch", "split_batches"]
