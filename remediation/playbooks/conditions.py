"""Conditions of a playbook's or a step's `when`: parsed and compiled at load, tested per Signal.

A condition is `{field: <path>, <op>: <value>}` with exactly one op of `equals`, `in`, `glob`
(fnmatch, case-sensitive) or `regex` (re.search), or `{not: <condition>}`. A condition on an absent
field is false, so `not` of it is true. Patterns are compiled here so a bad regex is a load error
and matching (in `matcher`) does no parsing. Field paths come from `paths`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from remediation.playbooks.errors import Problems, at, item
from remediation.playbooks.paths import Getter, UnknownPath, compile_path
from remediation.playbooks.schema import kind_of
from remediation.signals.model import Severity, Signal, Source

OPS = ("equals", "in", "glob", "regex")


class Condition(Protocol):
    def test(self, signal: Signal) -> bool: ...


@dataclass(frozen=True, slots=True)
class Equals:
    path: str
    value: str
    get: Getter = field(repr=False, compare=False)

    def test(self, signal: Signal) -> bool:
        found = self.get(signal)
        return bool(found) and found == self.value


@dataclass(frozen=True, slots=True)
class In:
    path: str
    values: frozenset[str]
    get: Getter = field(repr=False, compare=False)

    def test(self, signal: Signal) -> bool:
        found = self.get(signal)
        return bool(found) and found in self.values


@dataclass(frozen=True, slots=True)
class Matches:
    """`glob` and `regex` both end here: a glob is translated to an anchored regex at load."""

    path: str
    pattern: re.Pattern[str]
    anchored: bool  # glob: the whole value must match; regex: a match anywhere (re.search)
    get: Getter = field(repr=False, compare=False)

    def test(self, signal: Signal) -> bool:
        found = self.get(signal)
        if not found:
            return False
        return (self.pattern.match(found) if self.anchored else self.pattern.search(found)) is not None


@dataclass(frozen=True, slots=True)
class Not:
    inner: Condition

    def test(self, signal: Signal) -> bool:
        return not self.inner.test(signal)


def all_hold(conditions: tuple[Condition, ...], signal: Signal) -> bool:
    return all(condition.test(signal) for condition in conditions)


def parse_conditions(raw: Any, path: str, problems: Problems) -> tuple[Condition, ...]:
    """A `when` list; each bad condition is reported and left out."""
    if not isinstance(raw, list) or not raw:
        problems.add(path, f"expected a non-empty list of conditions, got {kind_of(raw)}")
        return ()
    parsed = (parse_condition(entry, item(path, index), problems) for index, entry in enumerate(raw))
    return tuple(condition for condition in parsed if condition is not None)


def parse_condition(raw: Any, path: str, problems: Problems) -> Condition | None:
    if isinstance(raw, dict) and "not" in raw:
        if len(raw) != 1:
            problems.add(path, "'not' stands alone: expected {not: <condition>}")
            return None
        inner = parse_condition(raw["not"], at(path, "not"), problems)
        return Not(inner) if inner is not None else None
    if not isinstance(raw, dict):
        problems.add(
            path, f"expected a condition {{field: ..., equals|in|glob|regex: ...}} or {{not: ...}}, got {kind_of(raw)}"
        )
        return None
    for key in raw:
        if key not in ("field", *OPS):
            problems.add(at(path, str(key)), f"unknown key (expected field, one of {', '.join(OPS)}, or not)")
    ops = [op for op in OPS if op in raw]
    if len(ops) != 1:
        problems.add(path, f"expected exactly one of {', '.join(OPS)}, got {len(ops)}")
    get = _field(raw, path, problems)
    if len(ops) != 1 or get is None:
        return None
    return _compile(str(raw["field"]), get, ops[0], raw[ops[0]], at(path, ops[0]), problems)


def _field(raw: Mapping[str, Any], path: str, problems: Problems) -> Getter | None:
    value = raw.get("field")
    if not isinstance(value, str):
        problems.add(at(path, "field"), f"expected a Signal field path, got {kind_of(value)}")
        return None
    try:
        return compile_path(value)
    except UnknownPath as problem:
        problems.add(at(path, "field"), str(problem))
        return None


def _compile(name: str, get: Getter, op: str, value: Any, path: str, problems: Problems) -> Condition | None:
    if op == "in":
        if not isinstance(value, list) or not value:
            problems.add(path, f"expected a non-empty list of strings, got {kind_of(value)}")
            return None
        values = [_operand(name, entry, item(path, index), problems) for index, entry in enumerate(value)]
        return In(name, frozenset(v for v in values if v is not None), get) if None not in values else None
    if op == "equals":
        operand = _operand(name, value, path, problems)
        return Equals(name, operand, get) if operand is not None else None
    if not isinstance(value, str) or not value:
        problems.add(path, f"expected a {op} pattern string, got {kind_of(value)}")
        return None
    try:
        pattern = re.compile(fnmatch.translate(value) if op == "glob" else value)
    except re.error as problem:
        problems.add(path, f"invalid regular expression {value!r}: {problem}")
        return None
    return Matches(name, pattern, op == "glob", get)


def _operand(name: str, value: Any, path: str, problems: Problems) -> str | None:
    """A value to compare with; severities and sources are checked against their names."""
    if not isinstance(value, str) or not value:
        problems.add(path, f"expected a string (quote numbers and booleans), got {kind_of(value)}")
        return None
    if name == "severity":
        severity = Severity.parse(value)
        if severity is None:
            problems.add(path, f"unknown severity {value!r} (expected one of {', '.join(s.label for s in Severity)})")
            return None
        return severity.label
    if name == "source" and value not in {s.value for s in Source}:
        problems.add(path, f"unknown source {value!r} (expected one of {', '.join(s.value for s in Source)})")
        return None
    return value
