"""Bounded re-checks of an image's findings: a `registry-findings` queue message per attempt, delayed.

Neighbours: `push_policy.PushPolicy` schedules the first re-check when a push has no findings yet;
the queue trigger `functions/registry_findings.py` hands each message to `FindingsRecheck.run`,
which looks again and either returns a new Signal for intake or schedules the next attempt (with a
longer visibility delay) until the attempts run out. No function ever waits for Defender.

The Signal is synthetic: type `Microsoft.ContainerRegistry.ImageScanned` (Azure sends no such
event), id `<push signal id>:findings`, the push's targets and actor, and the findings in
`extended_properties`; `raw` says `synthetic: true` and names the push.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, Self

from remediation.push_policy.findings import FindingsSummary
from remediation.signals.acr import IMAGE_SCANNED
from remediation.signals.model import Severity, Signal, Source, Targets

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

    from remediation.store.clients import StorageAccess

logger = logging.getLogger(__name__)

QUEUE = "registry-findings"
DEFAULT_DELAYS = (120, 300, 600)  # seconds before attempt 1, 2, 3


@dataclass(frozen=True, slots=True)
class Recheck:
    push_id: str
    registry: str
    repository: str
    digest: str
    tag: str | None = None
    actor: str | None = None
    attempt: int = 1

    def to_text(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_text(cls, text: str) -> Recheck:
        """ValueError (or TypeError/KeyError, wrapped) for anything that is not a re-check message."""
        try:
            data = json.loads(text)
            return cls(**data)
        except (TypeError, KeyError, json.JSONDecodeError) as error:
            raise ValueError(f"not a findings re-check message: {error}") from error


class FindingsSource(Protocol):
    def lookup(self, *, digest: str) -> FindingsSummary | None: ...


class RecheckQueue:
    """Sends re-checks with a visibility delay; refuses once the attempts are used up."""

    def __init__(self, *, queue: QueueClient, delays: Sequence[int] = DEFAULT_DELAYS) -> None:
        self._queue = queue
        self.delays = tuple(delays)

    @classmethod
    def from_storage(cls, storage: StorageAccess | str, *, queue_name: str = QUEUE, **kwargs: Any) -> Self:
        from remediation.store.clients import base64_queue

        delays = kwargs.pop("delays", DEFAULT_DELAYS)
        return cls(queue=base64_queue(storage, queue_name=queue_name, **kwargs), delays=delays)

    @classmethod
    def from_connection_string(cls, conn_str: str, **kwargs: Any) -> Self:
        """`from_storage` on a connection string (local runs, Azurite, tests)."""
        return cls.from_storage(conn_str, **kwargs)

    def schedule(self, recheck: Recheck) -> bool:
        if recheck.attempt > len(self.delays):
            return False
        delay = self.delays[recheck.attempt - 1]
        self._queue.send_message(recheck.to_text().encode(), visibility_timeout=delay)
        logger.info(
            "findings re-check scheduled",
            extra={"event_id": recheck.push_id, "digest": recheck.digest, "attempt": recheck.attempt, "delay": delay},
        )
        return True


class FindingsRecheck:
    def __init__(
        self,
        *,
        findings: FindingsSource,
        queue: RecheckQueue,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._findings = findings
        self._queue = queue
        self._clock = clock

    def run(self, recheck: Recheck) -> Signal | None:
        """A Signal when the findings have arrived; otherwise the next attempt is scheduled (or not)."""
        summary = self._findings.lookup(digest=recheck.digest)
        if summary is not None:
            return self.signal(recheck, summary)
        if not self._queue.schedule(replace(recheck, attempt=recheck.attempt + 1)):
            logger.info(
                "no findings after the last re-check",
                extra={"event_id": recheck.push_id, "digest": recheck.digest, "attempts": recheck.attempt},
            )
        return None

    def signal(self, recheck: Recheck, summary: FindingsSummary) -> Signal:
        name = f"{recheck.repository}:{recheck.tag}" if recheck.tag else f"{recheck.repository}@{recheck.digest}"
        return Signal(
            source=Source.REGISTRY,
            type=IMAGE_SCANNED,
            id=f"{recheck.push_id}:findings",
            time=self._clock(),
            severity=_severity(summary),
            targets=Targets(
                registry_login_server=recheck.registry,
                repository=recheck.repository,
                tag=recheck.tag,
                digest=recheck.digest,
                image=f"{recheck.registry}/{name}",
            ),
            title=f"ImageScanned {name}",
            actor=recheck.actor,
            extended_properties=summary.properties(),
            raw={"synthetic": True, "push_id": recheck.push_id, "attempt": recheck.attempt},
        )


def _severity(summary: FindingsSummary) -> Severity:
    for name in ("critical", "high", "medium", "low"):
        if getattr(summary, name):
            return Severity[name.upper()]
    return Severity.INFORMATIONAL
