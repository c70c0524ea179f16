"""The typed Signal every input becomes, and the outcome types of normalising one.

Normalisers in `remediation.signals.acr` and `remediation.signals.defender` build these;
`remediation.intake` dedups and routes them; playbooks read their fields by name.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, final

_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
"""Lower case, no ':' or '/': a source prefixes dedup ids and names an events-table partition."""


class _SourceKind(type):
    """Iterating `Source` lists the registered sources, in registration order, as an enum would."""

    _known: dict[str, Source]

    def __iter__(cls) -> Iterator[Source]:
        return iter(tuple(cls._known.values()))

    def __len__(cls) -> int:
        return len(cls._known)

    def __contains__(cls, value: object) -> bool:
        return isinstance(value, str) and value in cls._known


@final
class Source(str, metaclass=_SourceKind):
    """Where a Signal came from: an open set of names, one per intake source.

    A Source is its name (a `str`: it compares, hashes, formats and serialises as the bare name),
    and each name has exactly one instance, so `signal.source is Source.REGISTRY` holds.
    `Source("registry")` returns that instance and refuses names no one registered; a new intake
    source calls `Source.register` (through `remediation.signals.sources.register`).
    """

    __slots__ = ()
    _known: ClassVar[dict[str, Source]] = {}
    REGISTRY: ClassVar[Source]
    DEFENDER: ClassVar[Source]

    def __new__(cls, value: object) -> Source:
        known = cls._known.get(value) if isinstance(value, str) else None
        if known is None:
            raise ValueError(f"{value!r} is not a known source (known: {', '.join(cls._known)})")
        return known

    @classmethod
    def register(cls, name: str) -> Source:
        """The Source called `name`, created on first registration; registering twice is harmless."""
        if not isinstance(name, str) or not _SOURCE_NAME.fullmatch(name):
            raise ValueError(f"a source name is 1-32 of a-z, 0-9 and '-', starting with a letter; got {name!r}")
        known = cls._known.get(name)
        if known is not None:
            return known
        source = str.__new__(cls, name)
        cls._known[name] = source
        return source

    @classmethod
    def _forget(cls, source: Source) -> None:
        """Undo `register` (tests, and plug-ins unloaded); the well-known sources stay."""
        if source is cls.REGISTRY or source is cls.DEFENDER:
            raise ValueError(f"the built-in source {source.value!r} cannot be unregistered")
        cls._known.pop(source.value, None)

    @property
    def value(self) -> str:
        """The bare name, as stored in tables and shown in summaries (as `Enum.value` was)."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"Source({self.value!r})"

    def __reduce__(self) -> tuple[type[Source], tuple[str]]:
        return (Source, (self.value,))

    def __copy__(self) -> Source:
        return self

    def __deepcopy__(self, memo: object) -> Source:
        return self


Source.REGISTRY = Source.register("registry")
Source.DEFENDER = Source.register("defender")


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
    route: str | None = field(default=None, compare=False)  # the trigger it arrived by, set by intake

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
            "description": self.description,
            "route": self.route,
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
