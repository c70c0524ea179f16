"""The executor: runs an approved incident's steps exactly once, or undoes them, and says so.

Neighbours: the queue trigger in `functions/executor.py` calls `execute`, `undo` or `give_up` for
each work message; the `IncidentStore` persists every claim and every completed step (ETag
concurrency); the `ActionSet` of `remediation.actions` does the work; a `Notifier` reports progress
(and posts a `notify` step's message in the channel it names, `Notifier.channel_post`).

Exactly once: the claim is the transition approved -> executing, so a second delivery or a second
worker finds the incident taken and stops. Each step's result is stored before the next step
starts; a redelivery after a crash resumes after the last stored step (the actions are idempotent
by key and keep their first snapshot, so a step cut off mid-way is safely run again). A worker's
claim is a lease renewed at every step: an executing incident whose lease ran out was left by a
dead worker and is taken over. A transient failure releases the lease, so the host's next
delivery of the message resumes at once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from remediation import telemetry
from remediation.actions.dispatch import ActionSet
from remediation.actions.notify import channel_post
from remediation.actions.runtime import (
    PermanentFailure,
    SnapshotStore,
    StepContext,
    StepResult,
    TargetVersion,
    TransientFailure,
)
from remediation.audit import truncate_json
from remediation.clock import utcnow
from remediation.failures import InProgressElsewhere
from remediation.incidents import (
    IllegalTransition,
    Incident,
    IncidentState,
    IncidentStore,
    UnknownIncident,
    complete_step,
    fail,
    mark_undone,
    start_execution,
    succeed,
)
from remediation.logcontext import incident_context
from remediation.notifier import LoggingNotifier, Notifier
from remediation.plans import PlannedStep

logger = logging.getLogger(__name__)

MAX_PREVIEW_CHANGES = 4000  # characters of a step's previewed changes kept on the incident (shown in Slack)
LEASE = timedelta(minutes=15)  # longer than any step (MAX_STEP_SECONDS); host.json's functionTimeout is longer
RENEW_EVERY = timedelta(minutes=1)  # a long step's progress renews the lease at most this often


class Executor:
    def __init__(
        self,
        *,
        incidents: IncidentStore,
        actions: ActionSet,
        snapshots: SnapshotStore,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = utcnow,
        lease: timedelta = LEASE,
    ) -> None:
        self._incidents = incidents
        self._actions = actions
        self._snapshots = snapshots
        self._notifier = notifier or LoggingNotifier()
        self._clock = clock
        self._lease = lease

    def execute(self, incident_id: str) -> Incident:
        """Run the remaining steps. TransientFailure propagates (the host retries the message)."""
        with incident_context(incident_id):
            incident = self._get(incident_id)
            with _journey("incident.execute", incident):
                return self._execute(incident)

    def undo(self, incident_id: str) -> Incident:
        """Run each completed step's undo, last step first, from its stored result and snapshot."""
        with incident_context(incident_id):
            incident = self._get(incident_id)
            with _journey("incident.undo", incident):
                return self._undo(incident)

    def give_up(self, incident_id: str, *, error: str, undo: bool = False) -> Incident:
        """The message failed its last delivery (poison): say so on the incident, visibly.

        An execution ends failed; an undo leaves the incident succeeded (its steps still applied)
        with the error recorded and announced, so nobody believes it was undone.
        """
        with incident_context(incident_id):
            incident = self._get(incident_id)
            with _journey("incident.give_up", incident, undo=undo):
                return self._give_up(incident, error=error, undo=undo)

    def _give_up(self, incident: Incident, *, error: str, undo: bool) -> Incident:
        if undo and incident.state is IncidentState.SUCCEEDED:
            reason = f"undo gave up after repeated failures: {error}"[:2000]
            noted = self._incidents.update(
                incident,
                lambda current: dataclasses.replace(current, lease_until=None, last_error=reason, undo_requested=False),
            )
            self._notifier.incident_updated(noted)
            return noted
        if undo or incident.state not in (IncidentState.APPROVED, IncidentState.EXECUTING):
            return incident
        return self._finish(incident, error=f"gave up after repeated failures: {error}")

    def _execute(self, incident: Incident) -> Incident:
        incident, won = self._claim(incident)
        if not won:
            return incident
        progress = _Progress(incident)
        try:
            for index in range(incident.completed_steps, len(incident.plan.steps)):
                progress.incident = self._run_step(progress, index)
        except PermanentFailure as failure:
            return self._finish(progress.incident, error=str(failure))
        except Exception as failure:  # transient, or storage failing between apply and record
            self._release(progress.incident, error=str(failure))
            raise
        return self._finish(progress.incident, error=None)

    def _undo(self, incident: Incident) -> Incident:
        incident, won = self._claim(incident, undo=True)
        if not won:
            return incident
        progress = _Progress(incident)
        try:
            for index in reversed(range(len(incident.step_results) - incident.undo_steps)):
                progress.incident = self._undo_step(progress, index)
        except PermanentFailure as failure:
            error = f"undo failed: {failure}"
            stopped = self._incidents.update(
                progress.incident,
                lambda current: dataclasses.replace(
                    current, lease_until=None, last_error=error[:2000], undo_requested=False
                ),
            )
            logger.error("undo failed", extra=_fields(stopped, error=error))
            self._notifier.incident_updated(stopped)
            return stopped
        except Exception as failure:  # transient, or storage failing between undo and record
            self._release(progress.incident, error=str(failure))
            raise
        incident = progress.incident

        def done(current: Incident) -> Incident:
            undone = mark_undone(current, at=self._clock())
            return dataclasses.replace(undone, lease_until=None, undo_requested=False)

        incident = self._incidents.update(incident, done)
        logger.info("incident undone", extra=_fields(incident))
        self._notifier.incident_finished(incident)
        return incident

    def _get(self, incident_id: str) -> Incident:
        incident = self._incidents.get(incident_id)
        if incident is None:
            raise UnknownIncident(incident_id)
        return incident

    def _claim(self, incident: Incident, *, undo: bool = False) -> tuple[Incident, bool]:
        """Take the incident's lease: approved -> executing (or, to undo, a succeeded incident), or
        take over one whose lease ran out. True when this worker won; False for a duplicate
        delivery, a finished incident, or one another live worker holds.
        """
        won = False
        startable = IncidentState.SUCCEEDED if undo else IncidentState.APPROVED
        resumable = IncidentState.SUCCEEDED if undo else IncidentState.EXECUTING

        def change(current: Incident) -> Incident:
            nonlocal won
            now, won = self._clock(), False  # the store may run this again on a fresher state
            lease = now + self._lease
            free = current.lease_until is None or current.lease_until <= now
            if current.state is startable and not undo:
                won = True
                return dataclasses.replace(start_execution(current, at=now), lease_until=lease)
            if current.state is resumable and free:
                won = True
                return dataclasses.replace(current, updated_at=now, lease_until=lease)
            return current

        claimed = self._incidents.update(incident, change)
        if won:
            return claimed, True
        now = self._clock()
        if claimed.state is resumable and claimed.lease_until is not None and claimed.lease_until > now:
            raise InProgressElsewhere(
                f"incident {claimed.id} is being {'undone' if undo else 'executed'} by another worker "
                f"until {claimed.lease_until.isoformat()}: try again later"
            )
        logger.info("nothing to do: finished or not approved", extra=_fields(claimed, undo=undo))
        return claimed, False

    def _run_step(self, progress: _Progress, index: int) -> Incident:
        incident = progress.incident
        step = incident.plan.steps[index]
        ctx = self._context(progress, index)
        params = self._params(step)
        destructive = step.action in self._actions.classes and self._actions.classes[step.action].destructive
        _require_binding(step, ctx.expected, index, destructive=destructive)
        result = _guarded(lambda: self._actions.apply(step.action, params, ctx), incident, index, step.action)
        incident = progress.incident
        logger.info("step done", extra=_fields(incident, step=index, action=step.action, outcome=result.outcome.value))

        def record(current: Incident) -> Incident:
            now = self._clock()
            done = complete_step(current, step=index, at=now, result=result.to_json())
            return dataclasses.replace(done, lease_until=now + self._lease)

        post = channel_post(params, notify=incident.plan.notify)
        if post is not None:  # queued before the step is recorded: a crash between the two repeats it, never loses it
            self._notifier.channel_post(incident, channel=post[0], text=post[1])
        updated = self._incidents.update(incident, record)
        self._notifier.step_progress(updated, step=index, message=result.message)
        return updated

    def _undo_step(self, progress: _Progress, index: int) -> Incident:
        incident = progress.incident
        step = incident.plan.steps[index]
        params = self._params(step)
        result = StepResult.from_json(incident.step_results[index])
        ctx = self._context(progress, index)
        undone = _guarded(
            lambda: self._actions.undo(step.action, params, result, ctx), incident, index, step.action, call="undo"
        )
        incident = progress.incident
        self._notifier.step_progress(incident, step=index, message=f"undo: {undone.message}")

        def record(current: Incident) -> Incident:
            lease = self._clock() + self._lease
            return dataclasses.replace(current, undo_steps=current.undo_steps + 1, lease_until=lease)

        return self._incidents.update(incident, record)

    def _params(self, step: PlannedStep) -> Any:
        try:
            return self._actions.params(step.action, step.params)
        except (ValueError, LookupError) as problem:
            raise PermanentFailure(f"{step.action}: invalid parameters: {problem}") from None

    def _context(self, progress: _Progress, index: int) -> StepContext:
        incident = progress.incident

        def report(message: str) -> None:
            self._notifier.step_progress(progress.incident, step=index, message=message)
            self._renew(progress)

        return StepContext(
            incident_id=incident.id,
            step=index,
            snapshots=self._snapshots,
            progress=report,
            expected=_bound_target(incident.previews, index),
        )

    def _renew(self, progress: _Progress) -> None:
        """A long step that makes progress keeps its lease (at most once per RENEW_EVERY)."""
        now = self._clock()
        lease = progress.incident.lease_until
        if lease is not None and lease - now > self._lease - RENEW_EVERY:
            return
        progress.incident = self._incidents.update(
            progress.incident, lambda current: dataclasses.replace(current, lease_until=now + self._lease)
        )

    def _release(self, incident: Incident, *, error: str) -> None:
        """Give the lease back after a transient failure, keeping the error for the responder.

        Best effort: when storage itself is failing the lease stays until it runs out, and the
        redelivery meets it (InProgressElsewhere) until then; the timer re-drives it afterwards.
        """
        logger.warning("step will be retried: %s", error, extra=_fields(incident))
        try:
            self._incidents.update(
                incident, lambda current: dataclasses.replace(current, lease_until=None, last_error=error[:2000])
            )
        except Exception:
            logger.exception("the lease could not be released: it runs out by itself", extra=_fields(incident))

    def _finish(self, incident: Incident, *, error: str | None) -> Incident:
        def change(current: Incident) -> Incident:
            now = self._clock()
            ended = succeed(current, at=now) if error is None else fail(current, at=now, error=error)
            return dataclasses.replace(ended, lease_until=None)

        try:
            finished = self._incidents.update(incident, change)
        except IllegalTransition:
            return self._get(incident.id)
        log = logger.info if error is None else logger.error
        log("incident %s", finished.state.value, extra=_fields(finished, error=error))
        telemetry.note(state=finished.state.value)
        if error is not None:
            telemetry.failed(error)
        self._notifier.incident_finished(finished)
        return finished


class _Progress:
    """The incident as this worker last wrote it, shared by a run's steps and their progress reports."""

    __slots__ = ("incident",)

    def __init__(self, incident: Incident) -> None:
        self.incident = incident


def _bound_target(previews: tuple[Mapping[str, Any], ...], index: int) -> TargetVersion | None:
    if index >= len(previews) or not previews[index].get("target"):
        return None
    return TargetVersion.from_json(previews[index]["target"])


def _require_binding(step: PlannedStep, expected: TargetVersion | None, index: int, *, destructive: bool) -> None:
    """A destructive step runs only against the exact target the approvers saw in its preview."""
    if expected is None and destructive:
        raise PermanentFailure(
            f"step {index + 1} ({step.action}) has no previewed target to bind the approval to: "
            "nothing was changed; open the incident again once its target can be read"
        )


def _fields(incident: Incident, **more: Any) -> dict[str, Any]:
    return {"incident_id": incident.id, "playbook": incident.playbook, "state": incident.state.value, **more}


def _journey(name: str, incident: Incident, **more: Any) -> AbstractContextManager[object]:
    """A span of `incident`'s journey: the work message's context continued, or its trace rejoined."""
    attributes = {"incident_id": incident.id, "playbook": incident.playbook, **more}
    return telemetry.journey_span(name, key=telemetry.journey_key(incident), attributes=attributes)


def _guarded(
    run: Callable[[], StepResult], incident: Incident, index: int, action: str, *, call: str = "apply"
) -> StepResult:
    """One action call in its own span, counted by outcome (`remediation.actions`). The action's own
    failures propagate as they are; anything unknown from an action is permanent."""
    attributes = {"incident_id": incident.id, "playbook": incident.playbook, "action": action, "step": index}
    with telemetry.span(f"{call} {action}", attributes={**attributes, "call": call}) as span:
        try:
            result = run()
        except TransientFailure:
            _count_action(action, call=call, outcome="transient_failure")
            raise
        except PermanentFailure:
            _count_action(action, call=call, outcome="permanent_failure")
            raise
        except Exception as error:  # unknown errors in an action are permanent: never guess twice
            _count_action(action, call=call, outcome="permanent_failure")
            logger.exception("step failed unexpectedly", extra=_fields(incident, step=index))
            raise PermanentFailure(f"step {index + 1} ({action}) failed: {error}") from error
        span.set_attribute("outcome", result.outcome.value)
        _count_action(action, call=call, outcome=result.outcome.value)
        return result


def _count_action(action: str, *, call: str, outcome: str) -> None:
    telemetry.ACTIONS.add(1, {"action": action, "call": call, "outcome": outcome})


class Previewer:
    """Each step's preview when an incident opens: what the approvers see, and the exact target
    version their approval binds to. A step that cannot be previewed says why; nothing is guessed."""

    def __init__(self, *, actions: ActionSet, snapshots: SnapshotStore) -> None:
        self._actions = actions
        self._snapshots = snapshots

    def __call__(self, incident: Incident) -> tuple[Mapping[str, Any], ...]:
        return tuple(self._one(incident, index, step) for index, step in enumerate(incident.plan.steps))

    def _one(self, incident: Incident, index: int, step: PlannedStep) -> Mapping[str, Any]:
        ctx = StepContext(incident_id=incident.id, step=index, snapshots=self._snapshots)
        try:
            params = self._actions.params(step.action, step.params)
            preview = self._actions.preview(step.action, params, ctx)
        except Exception as error:  # a preview never blocks an incident from opening
            logger.warning("preview failed", extra=_fields(incident, step=index, reason=str(error)))
            return {"step": index, "error": str(error)[:500]}
        target = preview.target.to_json() if preview.target else None
        changes = truncate_json(dict(preview.changes), max_chars=MAX_PREVIEW_CHANGES)
        return {
            "step": index,
            "summary": preview.summary[:1000],
            "target": target,
            "noop": preview.noop,
            "changes": changes,
        }
