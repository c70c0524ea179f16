"""The engine: Signals in, incidents opened or folded; people's decisions and timeouts applied.

Neighbours: `remediation.intake` hands each new Signal to `Engine.handle` (it is the intake's
SignalSink); `remediation.playbooks` decides the Plans; an `IncidentStore` from
`remediation.incidents` persists and audits every change; a `Notifier` (logging by default, Slack
from `bot/`) tells people. The bot calls `approve`, `reject` and `supply_input`; the timer calls
`on_timer`. An incident that becomes approved is put on the work queue for the executor; the timer
puts it there again if it still waits after `REDRIVE_AFTER` (a lost enqueue, a lost message).
Nothing here knows about Slack or Azure Functions.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from remediation import telemetry
from remediation.actions.catalogue import get_action
from remediation.blast_radius import Finder, measure
from remediation.clock import utcnow
from remediation.incidents import (
    ApproverDirectory,
    DecisionRefused,
    Incident,
    IncidentState,
    IncidentStore,
    StaticDirectory,
    UnknownIncident,
    approve,
    approve_undo,
    is_approver,
    is_policy_approver,
    on_timeout,
    refuse_guarded,
    reject,
    reject_undo,
    request_undo,
    supply_input,
)
from remediation.incidents.decisions import DeadlinePassed, late_refusal
from remediation.incidents.storage import deadline_order, is_due
from remediation.logcontext import incident_context
from remediation.notifier import LoggingNotifier, Notifier
from remediation.plans import ApprovalMode, Plan
from remediation.playbooks import PlaybookSet
from remediation.playbooks.explain import why_not
from remediation.playbooks.matcher import build_plan
from remediation.signals import Signal
from remediation.work import WorkQueue

logger = logging.getLogger(__name__)

REDRIVE_AFTER = timedelta(minutes=5)
FOLD_AT_ONCE = 100  # Signals of one group folded in one write: what the intake completes in one transaction
DEFAULT_RETENTION = timedelta(days=90)
PRUNE_EVERY = timedelta(days=1)
ANNOUNCE_GRACE = timedelta(minutes=2)  # longer than the Slack outbox takes when Slack is well
CATCH_UP_WINDOW = timedelta(minutes=10)
_LIVE = (
    IncidentState.OPEN,
    IncidentState.NEEDS_INPUT,
    IncidentState.AWAITING_APPROVAL,
    IncidentState.ESCALATED,
    IncidentState.APPROVED,
    IncidentState.EXECUTING,
)


class Engine:
    def __init__(
        self,
        *,
        playbooks: Callable[[], PlaybookSet],
        incidents: IncidentStore,
        notifier: Notifier | None = None,
        directory: ApproverDirectory | None = None,
        work: WorkQueue | None = None,
        enrich: Callable[[Signal], Signal] | None = None,
        previewer: Callable[[Incident], tuple[Mapping[str, Any], ...]] | None = None,
        image_finder: Finder | None = None,
        clock: Callable[[], datetime] = utcnow,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._playbooks = playbooks
        self._retention = retention
        self._pruned_at: datetime | None = None
        self.incidents = incidents
        self._work = work
        self._enrich = enrich
        self._previewer = previewer
        self._image_finder = image_finder
        self.notifier: Notifier = notifier or LoggingNotifier()
        self._directory = directory or StaticDirectory()
        self._clock = clock

    @property
    def playbooks(self) -> PlaybookSet:
        """The current playbooks; loading them is the one duty only opening incidents depends on."""
        return self._playbooks()

    def handle(self, signal: Signal) -> None:
        """Open an incident per matching playbook, or fold the Signal into the open one."""
        self.handle_all([signal], handled=lambda part: None)

    def handle_all(self, signals: Sequence[Signal], *, handled: Callable[[Sequence[Signal]], None]) -> None:
        """The intake's sink: open or fold every Signal, calling `handled` with each part once written.

        `enrich` (the registry push policy) first adds what the event alone does not say: a tag
        overwrite, a disallowed tag or pusher, Defender's findings for the digest. Signals that one
        playbook groups under one key (a storm on one node) fold together, up to `FOLD_AT_ONCE` in
        one write and one notification; any other Signal is opened or folded on its own.
        """
        playbooks = self.playbooks  # one playbook set for the whole batch
        together: dict[tuple[str, str], list[tuple[Plan, Signal]]] = {}
        for signal in signals:
            if self._enrich is not None:
                signal = self._enrich(signal)
            plans = playbooks.match(signal)
            if len(plans) == 1 and plans[0].group_key:
                together.setdefault((plans[0].playbook, plans[0].group_key), []).append((plans[0], signal))
            elif plans:
                for plan in plans:
                    self._open_or_fold(plan, [signal])
                handled([signal])
        for members in together.values():
            for start in range(0, len(members), FOLD_AT_ONCE):
                part = [signal for _, signal in members[start : start + FOLD_AT_ONCE]]
                self._open_or_fold(members[start][0], part)
                handled(part)

    def _open_or_fold(self, plan: Plan, signals: Sequence[Signal]) -> None:
        first = signals[0]
        attributes = {"playbook": plan.playbook, "event_id": first.id, "signals": len(signals)}
        with telemetry.journey_span("incident.open", key=first.id, attributes=attributes) as span:
            now = self._clock()
            if len(signals) == 1:
                incident, opened = self.incidents.open_or_fold(plan=plan, signal=first, now=now)
            else:
                incident, opened = self.incidents.open_or_fold_all(plan=plan, signals=signals, now=now)
            span.set_attributes({"incident_id": incident.id, "opened": opened})
            if not opened:
                span.update_name("incident.fold")
            with incident_context(incident.id):
                self._after_signals(incident, opened=opened, signals=signals)

    def _after_signals(self, incident: Incident, *, opened: bool, signals: Sequence[Signal]) -> None:
        opener = incident.signal.get("id")
        if opened:
            logger.info("incident opened", extra=_fields(incident, signal_id=signals[0].id, signals=len(signals)))
            telemetry.INCIDENTS_OPENED.add(1, {"playbook": incident.playbook})
            _time_to_approval(incident, previous=None, by="auto", now=self._clock())
        elif not incident.announced and any(signal.id == opener for signal in signals):
            # The opening signal again: its first handling stopped after the incident was opened
            # (a failed preview write, announcement or enqueue released the claim). Finish it.
            logger.warning("finishing an incident's opening", extra=_fields(incident, signal_id=opener))
        else:
            self.notifier.incident_updated(incident)
            return
        incident = self._measure_blast_radius(incident)
        if not incident.previews:
            incident = self._preview(incident)
        self.notifier.incident_opened(incident)
        self._dispatch(incident)

    def mark_announced(self, incident_id: str) -> Incident:
        """The notifier posted the incident's message: the timer stops asking for it."""
        current = self.incidents.get(incident_id)
        if current is None:
            raise UnknownIncident(incident_id)
        if current.announced:
            return current
        return self.incidents.update(current, lambda incident: dataclasses.replace(incident, announced=True))

    def announce_missing(self, live: Sequence[Incident] | None = None) -> list[Incident]:
        """Ask again for the message of each live incident opened over `ANNOUNCE_GRACE` ago and never
        announced (Slack was failing, or the process died between opening and announcing)."""
        stale = self._clock() - ANNOUNCE_GRACE
        missing = [i for i in self._live(live, _LIVE) if not i.announced and i.created_at <= stale]
        for incident in missing:
            with _journey("incident.announce", incident):
                logger.warning("incident never announced: announcing again", extra=_fields(incident))
                self.notifier.incident_opened(incident)
        return missing

    def is_approver(self, incident: Incident, *, user: str) -> bool:
        """May `user` decide about `incident` (approve, reject, supply its input)?"""
        return is_approver(incident, user=user, directory=self._directory)

    def approve(self, incident_id: str, *, user: str) -> Incident:
        """Record `user`'s approval (of the pending undo, on a succeeded incident); raises
        DecisionRefused with a reason to show them."""
        current = self.incidents.get(incident_id)
        if current is not None and current.state is IncidentState.SUCCEEDED:
            return self._undo_decision(current, approve_undo, user=user)

        def change(incident: Incident) -> Incident:
            return approve(incident, user=user, at=self._clock(), directory=self._directory)

        return self._decide(incident_id, change, actor=user)

    def reject(self, incident_id: str, *, user: str) -> Incident:
        """Stop a waiting incident, or withdraw the pending undo of a succeeded one."""
        current = self.incidents.get(incident_id)
        if current is not None and current.state is IncidentState.SUCCEEDED:
            return self._undo_decision(current, reject_undo, user=user)

        def change(incident: Incident) -> Incident:
            return reject(incident, user=user, at=self._clock(), directory=self._directory)

        return self._decide(incident_id, change, actor=user)

    def supply_input(self, incident_id: str, *, user: str, params: Mapping[str, Any]) -> Incident:
        """Fill parameters the Signal lacked (approvers only); the caller has validated the values.
        The incident then awaits approval, whatever the playbook's mode."""

        def change(incident: Incident) -> Incident:
            return supply_input(incident, params=params, at=self._clock(), user=user, directory=self._directory)

        return self._decide(incident_id, change, actor=user, preview=True)

    def run_manual(self, *, playbook: str, signal: Signal, requester: str) -> Incident:
        """`/remediate run`: an approver of `playbook` runs it on `signal` (built from their targets).

        The playbook's `on` and `when` must hold, as for an alert; the run always needs another
        approver's approval and is previewed like any incident. DecisionRefused says why not.
        """
        found = self.playbooks.get(playbook)
        if found is None:
            raise DecisionRefused(f"there is no playbook {playbook}")
        if not is_policy_approver(found.approval, user=requester, directory=self._directory):
            raise DecisionRefused(f"only an approver of playbook {playbook} may run it")
        refusal = why_not(found, signal)
        if refusal is not None:
            raise DecisionRefused(f"playbook {playbook} does not apply to these targets: {refusal}")
        plan = build_plan(found, signal)
        if plan is None:
            raise DecisionRefused(
                f"playbook {playbook} has no step for these targets (every step's `when` left it out)"
            )
        required = dataclasses.replace(plan.approval, mode=ApprovalMode.REQUIRED)
        return self.open_manual(plan=dataclasses.replace(plan, approval=required), signal=signal, requester=requester)

    def open_manual(self, *, plan: Plan, signal: Signal, requester: str) -> Incident:
        """A person's run of a plan: always its own incident, which `requester` may not approve,
        previewed before it is shown. Who may run what is `run_manual`'s business."""
        attributes = {"playbook": plan.playbook, "event_id": signal.id, "requester": requester}
        with telemetry.journey_span("incident.open", key=signal.id, attributes=attributes) as span:
            incident, _ = self.incidents.open_or_fold(plan=plan, signal=signal, now=self._clock(), requester=requester)
            span.set_attribute("incident_id", incident.id)
            return self._opened_manually(incident, requester=requester)

    def _opened_manually(self, incident: Incident, *, requester: str) -> Incident:
        with incident_context(incident.id):
            logger.info("manual incident opened", extra=_fields(incident, requester=requester))
            telemetry.INCIDENTS_OPENED.add(1, {"playbook": incident.playbook})
            incident = self._measure_blast_radius(incident)
            incident = self._preview(incident)
            self.notifier.incident_opened(incident)
            self._dispatch(incident)
        return incident

    def request_undo(self, incident_id: str, *, user: str) -> Incident:
        """An approver asks to undo a succeeded incident (`remediation.incidents.undo`).

        An undo that re-grants access or lifts a containment waits for the playbook's
        `min_approvals` from other approvers (asking again, as another approver, is approving);
        any other is queued at once. Steps that cannot be undone refuse it whole.
        """
        current = self.incidents.get(incident_id)
        if current is None:
            raise UnknownIncident(incident_id)
        blockers = undo_blockers(current.plan)
        if blockers:
            raise DecisionRefused("this incident cannot be undone: " + "; ".join(blockers))
        return self._undo_decision(current, request_undo, user=user)

    def _undo_decision(self, current: Incident, decide: Callable[..., Incident], *, user: str) -> Incident:
        """Apply an undo decision; the one that sets `undo_requested` puts the undo on the work queue."""
        if self._work is None:
            raise DecisionRefused("no executor queue is configured, so nothing can be undone here")
        with incident_context(current.id), _journey("incident.undo_decision", current, actor=user):

            def change(incident: Incident) -> Incident:
                return decide(incident, user=user, at=self._clock(), directory=self._directory)

            # Recorded before the enqueue: if the message is lost, or its worker dies, the timer re-drives it.
            updated = self.incidents.update(current, change, actor=user)
            logger.info("undo decision recorded", extra=_fields(updated, actor=user, queued=updated.undo_requested))
            if updated.undo_requested:
                self._work.enqueue(incident_id=updated.id, kind="undo")
            self.notifier.incident_updated(updated)
            return updated

    def on_timer(self) -> list[Incident]:
        """The minute tick: audit left pending by a crashed writer first, then timeouts."""
        pending = self.incidents.flush_pending_audit()
        if pending:
            logger.warning("appended pending audit records", extra={"incidents": pending})
        live = self.incidents.live()  # one read of the live index serves every duty of this tick
        changed = self.expire_due(live)
        self.redrive(live)
        self.announce_missing(live)
        self.catch_up(live)
        self.prune()
        return changed

    def _live(self, live: Sequence[Incident] | None, states: Iterable[IncidentState]) -> list[Incident]:
        """The live incidents in `states`, from the tick's one read, or read now."""
        if live is None:
            return self.incidents.live(states=states)
        wanted = frozenset(states)
        return [incident for incident in live if incident.state in wanted]

    def prune(self) -> int:
        """At most once a day per worker: closed incidents past the retention leave the hot table."""
        now = self._clock()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return 0
        self._pruned_at = now
        pruned = self.incidents.prune(before=now - self._retention)
        if pruned:
            logger.info("closed incidents pruned", extra={"pruned": pruned, "retention_days": self._retention.days})
        return pruned

    def catch_up(self, live: Sequence[Incident] | None = None) -> None:
        """Show recent news a notifier held back (the last folds of an alert storm inside its
        update interval): each live incident seen lately is announced again; a notifier that
        already shows its state does nothing."""
        recent = self._clock() - CATCH_UP_WINDOW
        for incident in self._live(live, _LIVE):
            if incident.last_seen >= recent:
                self.notifier.incident_updated(incident)

    def redrive(self, live: Sequence[Incident] | None = None) -> list[Incident]:
        """Enqueue again what no executor is working on: approved incidents not taken for
        `REDRIVE_AFTER`, executions and undos whose worker's lease ran out (it died, or storage failed
        between a step and its record); the executor resumes after the last recorded step."""
        now = self._clock()
        stale = now - REDRIVE_AFTER
        waiting: list[Incident] = []
        for incident in self._live(live, (IncidentState.APPROVED, IncidentState.EXECUTING, IncidentState.SUCCEEDED)):
            if incident.state is IncidentState.APPROVED and incident.updated_at <= stale:
                with _journey("incident.redrive", incident, kind="execute"):
                    logger.warning("approved incident not taken: enqueued again", extra=_fields(incident))
                    self._dispatch(incident)
            elif _abandoned(incident, now=now) and self._work is not None:
                kind = "undo" if incident.state is IncidentState.SUCCEEDED else "execute"
                with _journey("incident.redrive", incident, kind=kind):
                    logger.warning("%s abandoned by its worker: enqueued again", kind, extra=_fields(incident))
                    self._work.enqueue(incident_id=incident.id, kind=kind)
            else:
                continue
            waiting.append(incident)
        return waiting

    def expire_due(self, live: Sequence[Incident] | None = None) -> list[Incident]:
        """Apply each overdue incident's `on_timeout`: expire, escalate once, or break-glass approve."""
        changed = []
        now = self._clock()
        due = (
            self.incidents.due(now)
            if live is None
            else sorted((incident for incident in live if is_due(incident, now)), key=deadline_order)
        )
        for incident in due:
            updated = self._time_out(incident, now=now)
            if updated.state is not incident.state:
                changed.append(updated)
        return changed

    def _time_out(self, incident: Incident, *, now: datetime) -> Incident:
        """Apply one overdue incident's `on_timeout` (the timer's, or a decision that came too late)."""
        with _journey("incident.timeout", incident):
            updated = self.incidents.update(incident, lambda current: on_timeout(current, now=now))
            if updated.state is not incident.state:
                logger.info("incident timed out", extra=_fields(updated, previous=incident.state.value))
                _time_to_approval(updated, previous=incident, by="break_glass", now=now)
                self._announce(updated, previous=incident)
                self._dispatch(updated)
            return updated

    def _too_late(self, incident: Incident, late: DeadlinePassed) -> DecisionRefused:
        """A decision after the deadline is refused and the incident's `on_timeout` applies now, exactly
        as the timer would apply it: no click wins over a passed deadline, whenever the timer runs."""
        logger.info("decision after the deadline refused", extra=_fields(incident, deadline=late.deadline.isoformat()))
        try:
            outcome = self._time_out(incident, now=self._clock())
        except DecisionRefused:  # the timer, or another late decision, applied it first
            outcome = self.incidents.get(incident.id) or incident
        return DecisionRefused(late_refusal(late, outcome=outcome))

    def _decide(
        self, incident_id: str, change: Callable[[Incident], Incident], *, actor: str, preview: bool = False
    ) -> Incident:
        with incident_context(incident_id):
            return self._apply_decision(incident_id, change, actor=actor, preview=preview)

    def _apply_decision(
        self, incident_id: str, change: Callable[[Incident], Incident], *, actor: str, preview: bool
    ) -> Incident:
        current = self.incidents.get(incident_id)
        if current is None:
            raise UnknownIncident(incident_id)
        with _journey("incident.decide", current, actor=actor):
            try:
                return self._record_decision(current, change, actor=actor, preview=preview)
            except DeadlinePassed as late:
                raise self._too_late(current, late) from None

    def _record_decision(
        self, current: Incident, change: Callable[[Incident], Incident], *, actor: str, preview: bool
    ) -> Incident:
        updated = self.incidents.update(current, change, actor=actor)
        logger.info("decision recorded", extra=_fields(updated, actor=actor))
        _time_to_approval(updated, previous=current, by="people", now=self._clock())
        if preview and self._work is not None:
            # Reading the targets is slow (a cluster, a registry): it runs from the work queue, which
            # dispatches the incident afterwards, so the approval binds to what the preview read.
            self._work.enqueue(incident_id=updated.id, kind="preview")
            self._announce(updated, previous=current)
            return updated
        if preview:
            updated = self._preview(updated)
        self._announce(updated, previous=current)
        if current.state is not IncidentState.APPROVED:
            self._dispatch(updated)
        return updated

    def refresh_previews(self, incident_id: str) -> Incident:
        """The work queue's `preview` job: read each step's target after input, show it, dispatch."""
        with incident_context(incident_id):
            incident = self.incidents.get(incident_id)
            if incident is None:
                raise UnknownIncident(incident_id)
            if incident.state not in (IncidentState.AWAITING_APPROVAL, IncidentState.ESCALATED, IncidentState.APPROVED):
                return incident
            with _journey("incident.preview", incident):
                updated = self._preview(incident)
                self.notifier.incident_updated(updated)
                self._dispatch(updated)
                return updated

    def _measure_blast_radius(self, incident: Incident) -> Incident:
        """Where the incident's image runs (pods by digest on every allowed cluster), kept on the
        incident with the time it was measured; an incident about no image is left as it is.
        Measured once, at opening: approvers see what was true when they were asked."""
        if self._image_finder is None or incident.blast_radius is not None:
            return incident
        found = measure(incident.signal, self._image_finder, now=self._clock())
        if found is None:
            return incident
        logger.info("blast radius measured", extra=_fields(incident, blast_radius_status=found.get("status"),
                    pods=found.get("pods"), workloads=found.get("workloads")))  # fmt: skip
        return self.incidents.update(incident, lambda current: dataclasses.replace(current, blast_radius=found))

    def _preview(self, incident: Incident) -> Incident:
        """Record each step's preview: the approval binds to the target versions it shows.

        A preview a guard rail refused closes the incident at once, saying which guard and step
        (`refuse_guarded`): nobody is asked to approve what can never run.
        """
        if self._previewer is None or incident.plan.missing:
            return incident
        previews = self._previewer(incident)
        now = self._clock()
        previewed = self.incidents.update(
            incident, lambda current: refuse_guarded(dataclasses.replace(current, previews=previews), at=now)
        )
        if previewed.state is not incident.state:
            logger.warning("refused by a guard rail", extra=_fields(previewed, reason=previewed.last_error))
        return previewed

    def _dispatch(self, incident: Incident) -> None:
        """Hand an approved incident to the executor; the executor's claim makes a repeat harmless."""
        if incident.state is IncidentState.APPROVED and self._work is not None:
            self._work.enqueue(incident_id=incident.id)

    def _announce(self, incident: Incident, *, previous: Incident) -> None:
        """An escalation is a new request to a new audience; anything else updates the incident."""
        if incident.state is IncidentState.ESCALATED and previous.state is not IncidentState.ESCALATED:
            self.notifier.approval_needed(incident)
        else:
            self.notifier.incident_updated(incident)


def _abandoned(incident: Incident, *, now: datetime) -> bool:
    """An execution, or a requested undo, that no live worker holds: its lease ran out."""
    running = incident.state is IncidentState.EXECUTING or (
        incident.state is IncidentState.SUCCEEDED and incident.undo_requested
    )
    if not running:
        return False
    if incident.lease_until is not None:
        return incident.lease_until <= now
    return incident.updated_at <= now - REDRIVE_AFTER  # released after a failure, or never claimed


def undo_blockers(plan: Plan) -> list[str]:
    """Why the plan's steps cannot be undone at all (empty: they can, with `incidents.undo`'s approvals)."""
    blockers = []
    for step in plan.steps:
        spec = get_action(step.action)
        if not spec.reversible:
            blockers.append(f"{step.action} cannot be undone")
        elif spec.inverse is not None and get_action(spec.inverse).destructive:
            blockers.append(f"undoing {step.action} ({spec.inverse}) is destructive")
    return blockers


def _fields(incident: Incident, **more: Any) -> dict[str, Any]:
    return {"incident_id": incident.id, "playbook": incident.playbook, "state": incident.state.value, **more}


def _journey(name: str, incident: Incident, **more: Any) -> AbstractContextManager[object]:
    """A span of `incident`'s journey (its trace), whatever trace the click or tick started."""
    attributes = {"incident_id": incident.id, "playbook": incident.playbook, **more}
    return telemetry.journey_span(name, key=telemetry.journey_key(incident), attributes=attributes)


def _time_to_approval(incident: Incident, *, previous: Incident | None, by: str, now: datetime) -> None:
    """`remediation.approval.duration` when `incident` has just become approved (by people, by
    `mode: auto` at opening, or break-glass at timeout)."""
    if incident.state is not IncidentState.APPROVED:
        return
    if previous is not None and previous.state is IncidentState.APPROVED:
        return
    seconds = max(0.0, (now - incident.created_at).total_seconds())
    telemetry.APPROVAL_SECONDS.record(seconds, {"playbook": incident.playbook, "by": by})
