"""Signal field paths: the names playbooks use to read a Signal, compiled once into getters.

Conditions (`conditions`), references (`references`) and group-by keys (`parse`) all name fields
this way: `source`, `type`, `id`, `severity`, `title`, `description`, `actor`,
`targets.<a Targets field>` and `extended_properties.<any key, spaces allowed>`. A getter returns
the field's text, or None/"" when the Signal lacks it; matching treats both as absent.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from remediation.playbooks.errors import did_you_mean
from remediation.signals.model import TARGET_FIELDS, Severity, Signal

Getter = Callable[[Signal], Any]
"""Returns str | None; typed Any because attrgetter is, and callers only test truth and compare."""

_SEVERITY_LABEL = {severity: severity.label for severity in Severity}

_TOP: dict[str, Getter] = {
    "source": attrgetter("source"),  # a StrEnum: compares and serialises as its value
    "type": attrgetter("type"),
    "id": attrgetter("id"),
    "severity": lambda signal: _SEVERITY_LABEL[signal.severity],
    "title": attrgetter("title"),
    "description": attrgetter("description"),
    "actor": attrgetter("actor"),
}

KNOWN_PATHS = (*_TOP, "targets.<field>", "extended_properties.<key>")


class UnknownPath(ValueError):
    pass


def compile_path(path: str) -> Getter:
    """The getter for `path`; UnknownPath (with what is allowed) for anything else."""
    if path in _TOP:
        return _TOP[path]
    head, dot, rest = path.partition(".")
    if head == "targets" and dot:
        if rest in TARGET_FIELDS:
            return attrgetter(path)
        hint = did_you_mean(rest, TARGET_FIELDS)
        raise UnknownPath(f"unknown target field {rest!r} (expected one of {', '.join(TARGET_FIELDS)}){hint}")
    if head == "extended_properties" and dot and rest:
        return _extended_property(rest)
    hint = did_you_mean(path, _TOP)
    raise UnknownPath(f"unknown Signal field {path!r} (expected one of {', '.join(KNOWN_PATHS)}){hint}")


def _extended_property(key: str) -> Getter:
    def get(signal: Signal) -> str | None:
        value = signal.extended_properties.get(key)
        return value if isinstance(value, str) else None

    return get
