"""Intake: dedup each Signal by its id, hand the new ones on, and account for every event.

Neighbours: `remediation.signals` produces the Outcomes; an `EventLedger` (the `events` table in
`remediation.store.events`, or `MemoryLedger` for the CLI and benchmarks) remembers delivered ids;
a `SignalSink` (the playbook engine) takes the new Signals of a batch. Triggers in `functions/`
call `Intake.process` once per batch and turn its report into a binding result.

A batch costs the ledger two writes however large it is: its Signals are claimed together before
they are handled (`claim_all`), and completed together as the sink reports each part of the batch
durably handled (`complete_all`, once per part: one per incident a batch folds into). A failure
while handling releases the claims not completed yet and propagates, so the host's retry handles
them again; a crash between claim and completion leaves a lease that a redelivery may take over
once it has expired. A delivery whose id is claimed but not yet completed is not a duplicate to
drop: the batch ends with `DeliveryInProgress`, so the host delivers it again later, when it is
either done (a duplicate) or its lease has expired.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from remediation import telemetry
from remediation.signals import Outcome, Rejection, Signal, Skip

logger = logging.getLogger(__name__)

CLAIM_LEASE_SECONDS = 300.0


class Claim(enum.StrEnum):
    """What a delivery of an id found in the ledger."""

    CLAIMED = "claimed"  # this caller handles it
    DONE = "done"  # handled already: a duplicate delivery
    IN_FLIGHT = "in_flight"  # claimed by another caller whose lease has not run out


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

    def claim_all(self, keys: Sequence[str]) -> dict[str, Claim]:
        """`claim` for distinct `keys` at once, each with what its delivery found."""
        ...

    def complete_all(self, keys: Sequence[str]) -> None:
        """`complete` for distinct `keys` at once."""
        ...

    def release_all(self, keys: Sequence[str]) -> None:
        """`release` for distinct `keys` at once."""
        ...


class DeliveryInProgress(RuntimeError):
    """Some events of a batch are being handled elsewhere right now: deliver them again later."""

    def __init__(self, event_ids: list[str]) -> None:
        super().__init__(f"{len(event_ids)} event(s) claimed but not completed yet: {', '.join(event_ids[:5])}")
        self.event_ids = event_ids


Handled = Callable[[Sequence[Signal]], None]


class SignalSink(Protocol):
    def handle_all(self, signals: Sequence[Signal], *, handled: Handled) -> None:
        """Take every Signal of `signals`, calling `handled` with each part once it is durably
        handled (every Signal exactly once); raise to have the rest delivered again."""
        ...


class DiscardingSink:
    """Takes Signals and does nothing more: intake on its own, as the benchmarks measure it."""

    def handle_all(self, signals: Sequence[Signal], *, handled: Handled) -> None:
        handled(signals)


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

    def claim_all(self, keys: Sequence[str]) -> dict[str, Claim]:
        return {key: claim_one(self, key) for key in keys}

    def complete_all(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.complete(key)

    def release_all(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.release(key)


def claim_one(ledger: EventLedger, key: str) -> Claim:
    """`claim`, and for a refused claim whether the id is done or still in flight elsewhere."""
    if ledger.claim(key):
        return Claim.CLAIMED
    return Claim.DONE if ledger.is_done(key) else Claim.IN_FLIGHT


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
        signals: list[Signal] = []
        for outcome in outcomes:
            if isinstance(outcome, Signal):
                signals.append(outcome)
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
        if signals:
            self._signals(signals, report)
        logger.info("batch done", extra={"trigger": trigger, **report.counts()})
        if report.in_flight:
            raise DeliveryInProgress([signal.id for signal in report.in_flight])
        return report

    def _signals(self, signals: list[Signal], report: IntakeReport) -> None:
        """Claim the batch's Signals at once, hand the claimed ones on, complete them as handled."""
        first: dict[str, Signal] = {}
        for signal in signals:
            if signal.id in first:  # the same event twice in one batch: the first delivery handles it
                self._outcome(signal, report, "duplicate")
            else:
                first[signal.id] = signal
        claims = self._ledger.claim_all(list(first))
        mine = []
        for key, signal in first.items():
            claim = claims[key]
            if claim is Claim.CLAIMED:
                mine.append(dataclasses.replace(signal, route=report.trigger))
            else:
                self._outcome(signal, report, "duplicate" if claim is Claim.DONE else "in_flight")
        if not mine:
            return
        completed: set[str] = set()

        def handled(part: Sequence[Signal]) -> None:
            fresh = [signal for signal in part if signal.id not in completed]
            if not fresh:
                return
            self._ledger.complete_all([signal.id for signal in fresh])
            for signal in fresh:
                completed.add(signal.id)
                self._outcome(signal, report, "accepted")

        try:
            self._sink.handle_all(mine, handled=handled)
            handled(mine)  # what the sink had nothing to do for
        except BaseException:
            unfinished = [signal for signal in mine if signal.id not in completed]
            for _ in unfinished:
                _count(report.trigger, "failed")
            self._release(unfinished, report)
            raise

    def _release(self, signals: list[Signal], report: IntakeReport) -> None:
        """Forget the claims of Signals whose handling failed, so the host's retry claims them again.
        Where storage refuses that too, their leases run out instead (a redelivery takes them over)."""
        try:
            self._ledger.release_all([signal.id for signal in signals])
        except Exception as problem:
            logger.warning(
                "claims not released: a retry takes them over when their lease runs out: %s",
                problem,
                extra={"trigger": report.trigger, "events": len(signals)},
            )

    def _outcome(self, signal: Signal, report: IntakeReport, outcome: str) -> None:
        """Account for one delivered Signal: the report, the count, its journey, one log line."""
        attributes = {"trigger": report.trigger, "event_id": signal.id, "signal_type": signal.type, "outcome": outcome}
        with telemetry.journey_span("intake.signal", key=signal.id, attributes=attributes):
            pass
        _count(report.trigger, outcome)
        if outcome == "accepted":
            report.accepted.append(signal)
            if logger.isEnabledFor(logging.INFO):
                logger.info("signal accepted", extra={"trigger": report.trigger, **_log_fields(signal)})
        elif outcome == "duplicate":
            report.duplicates.append(signal)
            logger.info("duplicate delivery", extra={"trigger": report.trigger, "event_id": signal.id})
        else:
            report.in_flight.append(signal)
            logger.warning("delivery in progress elsewhere", extra={"trigger": report.trigger, "event_id": signal.id})


def _count(trigger: str, outcome: str) -> None:
    """`remediation.events`: every event once, by trigger and outcome (accepted, duplicate, in_flight,
    skipped, rejected; failed when handling it raised, so the host delivers it again)."""
    telemetry.EVENTS.add(1, {"trigger": trigger, "outcome": outcome})


def _log_fields(signal: Signal) -> dict[str, object]:
    targets = {name: value for name, value in signal.targets.as_dict().items() if value}
    return {"event_id": signal.id, "signal_type": signal.type, "severity": signal.severity.label, "targets": targets}
