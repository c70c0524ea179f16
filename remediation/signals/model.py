"""The typed Signal every input becomes, and the outcome types of normalising one.

Normalisers in `remediation.signals.acr` and `remediation.signals.defender` build these;
`remediation.intake` dedups and routes them; playbooks read their fields by name.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any


class Source(enum.StrEnum):
    REGISTRY = "registry"
    DEFENDER = "defender"


class Severity(enum.IntEnum):
    """Ordered, so a playbook's minimum severity is a comparison."""

    INFORMATIONAL = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: object) -> Severity | None:
        if not isinstance(text, str):
            return None
        return _SEVERITY_BY_NAME.get(text.strip().lower())

    @property
    def label(self) -> str:
        return self.name.lower()


_SEVERITY_BY_NAME = {s.name.lower(): s for s in Severity} | {"info": Severity.INFORMATIONAL}


@dataclass(frozen=True, slots=True)
class Targets:
    """What a signal points at; every field is optional because senders omit freely."""

    registry_login_server: str | None = None
    registry_resource_id: str | None = None
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None
    cluster_resource_id: str | None = None
    namespace: str | None = None
    pod: str | None = None
    container: str | None = None
    image: str | None = None
    node: str | None = None
    rbac_kind: str | None = None
    rbac_name: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


TARGET_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Targets))


@dataclass(frozen=True, slots=True)
class Signal:
    """One security event, whatever shape it arrived in.

    `id` is the dedup key: the same delivery seen twice carries the same id.
    """

    source: Source
    type: str
    id: str
    time: datetime
    severity: Severity
    targets: Targets
    title: str = ""
    description: str = ""
    link: str | None = None
    actor: str | None = None
    extended_properties: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """The JSON-ready view used by the CLI, logs and notifiers (raw left out)."""
        return {
            "source": self.source.value,
            "type": self.type,
            "id": self.id,
            "severity": self.severity.label,
            "time": self.time.isoformat(),
            "title": self.title,
            "link": self.link,
            "actor": self.actor,
            "targets": self.targets.as_dict(),
            "extended_properties": dict(self.extended_properties),
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one event could not become a Signal. `event_id` is set when it was readable."""

    reason: str
    event_id: str | None = None
    index: int | None = None


@dataclass(frozen=True, slots=True)
class Skip:
    """An event that is well formed but not ours to act on (a recommendation, a validation event)."""

    kind: str
    event_id: str | None = None


class InvalidEvent(ValueError):
    """Raised inside normalisers for bad input; turned into a Rejection at the boundary."""


Outcome = Signal | Rejection | Skip
