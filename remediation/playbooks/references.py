"""References in step parameters: `${targets.rbac_name}` (required) and `${targets.namespace?}` (optional).

A parameter that is exactly one reference takes the Signal field's value; a reference inside a
longer string is interpolated. Absent required fields become `MissingParam`s in the plan (see
`resolve`); an absent optional one leaves the parameter out, or interpolates as "" inside text.
`$${` writes a literal `${`. Parsed at load, with paths checked by `paths`, so a typo is a load
error rather than a silently missing value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from remediation.playbooks.errors import Problems
from remediation.playbooks.paths import Getter, UnknownPath, compile_path
from remediation.signals.model import Signal

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}")


@dataclass(frozen=True, slots=True)
class Ref:
    path: str
    optional: bool
    get: Getter = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Template:
    """Text with references inside it."""

    parts: tuple[str | Ref, ...]

    def refs(self) -> tuple[Ref, ...]:
        return tuple(part for part in self.parts if isinstance(part, Ref))

    def render(self, signal: Signal) -> tuple[str, list[Ref]]:
        """The text, and the required references that were absent (the text is unusable if any)."""
        out: list[str] = []
        absent: list[Ref] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = part.get(signal)
            if value:
                out.append(str(value))
            elif not part.optional:
                absent.append(part)
        return "".join(out), absent


Value = Ref | Template | Any
"""A parameter value as loaded: a Ref, a Template, or a literal validated against the action."""

INVALID: Any = object()
"""What `parse_value` returns for a value whose references were bad (already reported)."""


def parse_value(raw: Any, path: str, problems: Problems) -> Value:
    """A literal, a Ref or a Template; bad references are reported and INVALID returned."""
    if not isinstance(raw, str) or "${" not in raw:
        return raw
    parts: list[str | Ref] = []
    position = 0
    for token in _TOKEN.finditer(raw):
        parts.append(raw[position : token.start()])
        position = token.end()
        if token.group(1) is None:
            parts.append("${")  # the $${ escape
            continue
        ref = _ref(token.group(1), path, problems)
        if ref is None:
            return INVALID
        parts.append(ref)
    tail = raw[position:]
    if "${" in tail:
        problems.add(path, f"unterminated reference in {raw!r}: expected ${{field}} or ${{field?}}")
        return INVALID
    parts.append(tail)
    return _simplest([part for part in parts if part != ""])


def _ref(inner: str, path: str, problems: Problems) -> Ref | None:
    text = inner.strip()
    optional = text.endswith("?")
    field_path = text[:-1].strip() if optional else text
    if not field_path:
        problems.add(path, "empty reference: expected ${field} or ${field?}")
        return None
    try:
        return Ref(field_path, optional, compile_path(field_path))
    except UnknownPath as problem:
        problems.add(path, f"bad reference ${{{inner}}}: {problem}")
        return None


def _simplest(pieces: list[str | Ref]) -> Value:
    parts: list[str | Ref] = []
    for piece in pieces:  # join the text an escape split, so a Template alternates text and references
        if parts and isinstance(piece, str) and isinstance(parts[-1], str):
            parts[-1] += piece
        else:
            parts.append(piece)
    if len(parts) == 1 and isinstance(parts[0], Ref):
        return parts[0]
    if all(isinstance(part, str) for part in parts):
        return "".join(str(part) for part in parts)  # only escapes: plain text
    return Template(tuple(parts))


def refs_of(value: Value) -> tuple[Ref, ...]:
    if isinstance(value, Ref):
        return (value,)
    if isinstance(value, Template):
        return value.refs()
    return ()
