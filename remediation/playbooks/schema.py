"""Typed readers for the YAML of one playbook: each checks one value and records what was expected.

Used by `parse`, `steps` and `conditions`; problems go to the file's `Problems` and the reader
returns None, so parsing carries on and every error of a file is found in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from remediation.playbooks.errors import Problems, at, did_you_mean

_DURATION = re.compile(r"^(?:\d+[smhd])+$")
_DURATION_PART = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def kind_of(value: Any) -> str:
    """How a YAML value reads to its author, for 'expected X, got Y' messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"{value} (a number)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    return "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else type(value).__name__


def mapping(
    value: Any, path: str, problems: Problems, *, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Mapping[str, Any] | None:
    """`value` as a mapping with only the allowed keys and every required one; None if not a mapping."""
    if not isinstance(value, dict):
        problems.add(path, f"expected a mapping, got {kind_of(value)}")
        return None
    allowed = (*required, *optional)
    for key in value:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            problems.add(at(path, str(key)), f"unknown key (expected one of {', '.join(allowed)}){hint}")
    for key in required:
        if key not in value:
            problems.add(at(path, key), "missing required key")
    return value


def text(
    obj: Mapping[str, Any],
    key: str,
    path: str,
    problems: Problems,
    *,
    pattern: re.Pattern[str] | None = None,
    expected: str = "a string",
) -> str | None:
    """The non-empty string at `key` (None when absent); `pattern` must match when given."""
    value = obj.get(key)
    if key not in obj:
        return None
    if not isinstance(value, str) or not value or (pattern is not None and not pattern.fullmatch(value)):
        problems.add(at(path, key), f"expected {expected}, got {kind_of(value)}")
        return None
    return value


def texts(
    obj: Mapping[str, Any],
    key: str,
    path: str,
    problems: Problems,
    *,
    pattern: re.Pattern[str] | None = None,
    expected: str = "a string",
) -> list[str] | None:
    """The list of non-empty strings at `key` (None when absent); each bad item is reported by index."""
    if key not in obj:
        return None
    value = obj[key]
    if not isinstance(value, list):
        problems.add(at(path, key), f"expected a list, each item {expected}, got {kind_of(value)}")
        return None
    found = []
    for index, entry in enumerate(value):
        if isinstance(entry, str) and entry and (pattern is None or pattern.fullmatch(entry)):
            found.append(entry)
        else:
            problems.add(f"{at(path, key)}[{index}]", f"expected {expected}, got {kind_of(entry)}")
    return found


def choice(obj: Mapping[str, Any], key: str, path: str, problems: Problems, options: tuple[str, ...]) -> str | None:
    value = obj.get(key)
    if key not in obj:
        return None
    if value not in options:
        problems.add(at(path, key), f"expected one of {', '.join(options)}, got {kind_of(value)}")
        return None
    return str(value)


def duration(obj: Mapping[str, Any], key: str, path: str, problems: Problems) -> timedelta | None:
    """`30s`, `15m`, `2h`, `1d` or a sum such as `1h30m`; must be longer than zero."""
    if key not in obj:
        return None
    value = obj[key]
    if isinstance(value, str) and _DURATION.fullmatch(value):
        seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(value))
        if seconds > 0:
            return timedelta(seconds=seconds)
    problems.add(at(path, key), f"expected a duration such as 30s, 15m, 2h, 1d or 1h30m, got {kind_of(value)}")
    return None


def positive_int(obj: Mapping[str, Any], key: str, path: str, problems: Problems) -> int | None:
    value = obj.get(key)
    if key not in obj:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.add(at(path, key), f"expected a whole number of at least 1, got {kind_of(value)}")
        return None
    return value
