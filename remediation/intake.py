"""Intake: dedup each Signal by its id, hand the new ones on, and account for every event.

Neighbours: `remediation.signals` produces the Outcomes; an `EventLedger` (the `events` table in
`remediation.store.events`, or `MemoryLedger` for the CLI and benchmarks) remembers delivered ids;
a `SignalSink` (the playbook engine) takes each new Signal. Triggers in `functions/` call
`Intake.process` once per batch and turn its report into a binding result.

A delivery is claimed before it is handled and completed after, so a failure while handling
releases the claim and the host's retry handles it again; a crash between claim and completion
leaves a lease that a redelivery may take over once it has expired. A delivery whose id is claimed
but not yet completed is not a duplicate to drop: the batch ends with `DeliveryInProgress`, so the
host delivers it again later, when it is either done (a duplicate) or its lease has expired.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from remediation import telemetry
from remediation.signals import Outcome, Rejection, Signal, Skip

logger = logging.getLogger(__name__)

CLAIM_LEASE_SECONDS = 300.0


class EventLedger(Protocol):
    """Remembers which delivered ids have been claimed, atomically across instances."""

    def claim(self, key: str) -> bool:
        """True for the one caller that may handle `key`; False for a duplicate delivery."""
        ...

    def complete(self, key: str) -> None:
        """Mark `key` handled: every later delivery is a duplicate."""
        ...

    def release(self, key: str) -> None:
        """Forget a claim whose handling failed, so a retry may claim it again."""
        ...

    def is_done(self, key: str) -> bool:
        """True once `key` was completed; False while it is only claimed (or unknown)."""
        ...


class DeliveryInProgress(RuntimeError):
    """Some events of a batch are being handled elsewhere right now: deliver them again later."""

    def __init__(self, event_ids: list[str]) -> None:
        super().__init__(f"{len(event_ids)} event(s) claimed but not completed yet: {', '.join(event_ids[:5])}")
        self.event_ids = event_ids


class SignalSink(Protocol):
    def handle(self, signal: Signal) -> None: ...


class DiscardingSink:
    """Takes Signals and does nothing more: intake on its own, as the benchmarks measure it."""

    def handle(self, signal: Signal) -> None:
        pass


class MemoryLedger:
    """An in-process EventLedger with the table's semantics (claims, leases, completion)."""

    def __init__(self, *, lease_seconds: float = CLAIM_LEASE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._lease = lease_seconds
        self._clock = clock
        self._claims: dict[str, float | None] = {}  # key -> lease start, None once complete
        self._lock = threading.Lock()

    def claim(self, key: str) -> bool:
        with self._lock:
            if key in self._claims:
                started = self._claims[key]
                if started is None or self._clock() - started < self._lease:
                    return False
            self._claims[key] = self._clock()
            return True

    def complete(self, key: str) -> None:
        with self._lock:
            self._claims[key] = None

    def release(self, key: str) -> None:
        with self._lock:
            self._claims.pop(key, None)

    def is_done(self, key: str) -> bool:
        with self._lock:
            return key in self._claims and self._claims[key] is None


@dataclass
class IntakeReport:
    """What became of every event of one batch; nothing leaves a batch unaccounted for."""

    trigger: str
    accepted: list[Signal] = field(default_factory=list)
    duplicates: list[Signal] = field(default_factory=list)
    in_flight: list[Signal] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "accepted": len(self.accepted),
            "duplicates": len(self.duplicates),
            "in_flight": len(self.in_flight),
            "skipped": len(self.skipped),
            "rejected": len(self.rejected),
        }


class Intake:
    def __init__(self, *, ledger: EventLedger, sink: SignalSink) -> None:
        self._ledger = ledger
        self._sink = sink

    def process(self, outcomes: Iterable[Outcome], *, trigger: str) -> IntakeReport:
        """Dedup and hand on every Signal; log and count every Skip and Rejection.

        Storage failures from the ledger, and failures of the sink, propagate so the host retries
        the batch; claims already completed make that retry a no-op for the events before it.
        Raises DeliveryInProgress, after the whole batch, for ids claimed elsewhere but not completed.
        """
        report = IntakeReport(trigger=trigger)
        for outcome in outcomes:
            if isinstance(outcome, Signal):
                self._one(outcome, report)
            elif isinstance(outcome, Skip):
                report.skipped.append(outcome)
                _count(trigger, "skipped")
                logger.info(
                    "event skipped",
                    extra={"trigger": trigger, "event_id": outcome.event_id, "kind": outcome.kind},
                )
            else:
                report.rejected.append(outcome)
                _count(trigger, "rejected")
                logger.warning(
                    "event rejected: %s",
                    outcome.reason,
                    extra={"trigger": trigger, "event_id": outcome.event_id, "reason": outcome.reason},
                )
        logger.info("batch done", extra={"trigger": trigger, **report.counts()})
        if report.in_flight:
            raise DeliveryInProgress([signal.id for signal in report.in_flight])
        return report

    def _one(self, signal: Signal, report: IntakeReport) -> None:
        # Every delivery of one event, and the incident it opens, share the journey of its id.
        attributes = {"trigger": report.trigger, "event_id": signal.id, "signal_type": signal.type}
        with telemetry.journey_span("intake.signal", key=signal.id, attributes=attributes) as span:
            outcome = self._claimed(signal, report)
            span.set_attribute("outcome", outcome)
        _count(report.trigger, outcome)

    def _claimed(self, signal: Signal, report: IntakeReport) -> str:
        if not self._ledger.claim(signal.id):
            if self._ledger.is_done(signal.id):
                report.duplicates.append(signal)
                logger.info("duplicate delivery", extra={"trigger": report.trigger, "event_id": signal.id})
                return "duplicate"
            report.in_flight.append(signal)
            logger.warning("delivery in progress elsewhere", extra={"trigger": report.trigger, "event_id": signal.id})
            return "in_flight"
        try:
            self._sink.handle(dataclasses.replace(signal, route=report.trigger))
        except BaseException:
            self._ledger.release(signal.id)
            _count(report.trigger, "failed")
            raise
        self._ledger.complete(signal.id)
        report.accepted.append(signal)
        if logger.isEnabledFor(logging.INFO):
            logger.info("signal accepted", extra={"trigger": report.trigger, **_log_fields(signal)})
        return "accepted"


def _count(trigger: str, outcome: str) -> None:
    """`remediation.events`: every event once, by trigger and outcome (accepted, duplicate, in_flight,
    skipped, rejected; failed when handling it raised, so the host delivers it again)."""
    telemetry.EVENTS.add(1, {"trigger": trigger, "outcome": outcome})


def _log_fields(signal: Signal) -> dict[str, object]:
    targets = {name: value for name, value in signal.targets.as_dict().items() if value}
    return {"event_id": signal.id, "signal_type": signal.type, "severity": signal.severity.label, "targets": targets}
