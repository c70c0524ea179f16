"""What people (and the approval timer) decide about an incident: approve, reject, supply input, time out.

Each decision is a pure function from an Incident to a new Incident, or a `DecisionRefused` whose
reason the bot shows the user as is. Stores apply them with `update(incident, change)`, which
re-applies them to the fresh state when another writer won a race. Who may approve comes from the
plan's ApprovalPolicy and an `ApproverDirectory` (the bot's Slack user groups; `StaticDirectory` here).

The deadline binds people as it binds the timer: a decision taken after it (approve, reject, supply
input) raises `DeadlinePassed`, whatever the timer's schedule, and the engine applies the incident's
`on_timeout` in its place; `late_refusal` says what happened instead.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from remediation.incidents.lifecycle import guard_refusal
from remediation.incidents.model import Approval, Incident, IncidentState, transition
from remediation.plans import ApprovalPolicy, MissingParam, OnTimeout, Plan, PlannedStep

_S = IncidentState
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL = re.compile(r"^(#.+|[CG][A-Z0-9]{2,})$")
_APPROVABLE = frozenset({_S.AWAITING_APPROVAL, _S.ESCALATED})
_REJECTABLE = frozenset({_S.AWAITING_APPROVAL, _S.ESCALATED, _S.NEEDS_INPUT})
_PAST_APPROVAL = frozenset({_S.APPROVED, _S.EXECUTING, _S.SUCCEEDED, _S.FAILED, _S.UNDONE})


class DecisionRefused(Exception):
    """A decision that may not be taken now; `reason` is written for the person who tried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeadlinePassed(DecisionRefused):
    """A decision taken after the incident's deadline: the playbook's `on_timeout` decides instead."""

    def __init__(self, deadline: datetime) -> None:
        super().__init__(f"the approval window closed at {when(deadline)}")
        self.deadline = deadline


class ApproverDirectory(Protocol):
    """Resolves a group handle (e.g. `@oncall` or a Slack subteam id) to its members' user ids."""

    def members(self, handle: str) -> frozenset[str]: ...


@runtime_checkable
class IdentityDirectory(Protocol):
    """A directory that also knows a user's other names (e-mail, UPN), so an alert's subject is
    recognised among the approvers even when the alert names them otherwise than Slack does."""

    def identities(self, user: str) -> frozenset[str]: ...


class StaticDirectory:
    """An ApproverDirectory from a fixed mapping, for tests and the CLI; unknown handles have no members."""

    def __init__(
        self,
        mapping: Mapping[str, Iterable[str]] | None = None,
        *,
        identities: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._groups = {handle: frozenset(users) for handle, users in (mapping or {}).items()}
        self._identities = {user: frozenset(names) for user, names in (identities or {}).items()}

    def members(self, handle: str) -> frozenset[str]:
        return self._groups.get(handle, frozenset())

    def identities(self, user: str) -> frozenset[str]:
        return self._identities.get(user, frozenset())


def approver_entries(incident: Incident) -> tuple[str, ...]:
    """The plan's approvers, plus `escalate_to` once escalated when it names people rather than a channel."""
    policy = incident.plan.approval
    extra = policy.escalate_to
    if incident.escalated and extra and not _CHANNEL.match(extra) and extra not in policy.approvers:
        return (*policy.approvers, extra)
    return policy.approvers


def is_approver(incident: Incident, *, user: str, directory: ApproverDirectory) -> bool:
    return is_listed(approver_entries(incident), user=user, directory=directory)


def is_policy_approver(policy: ApprovalPolicy, *, user: str, directory: ApproverDirectory) -> bool:
    """`user` is among a playbook's approvers (before any incident exists: a manual run)."""
    return is_listed(policy.approvers, user=user, directory=directory)


def is_listed(entries: Iterable[str], *, user: str, directory: ApproverDirectory) -> bool:
    entries = tuple(entries)
    if user in entries:
        return True
    return any(user in directory.members(entry) for entry in entries if not _USER_ID.match(entry))


SUBJECT_KEYS = ("subjectName", "username", "UserName")  # Defender ExtendedProperties naming the person involved


def alert_subjects(incident: Incident) -> frozenset[str]:
    """Who the alert is about or who caused it (lower-cased): the Signal's actor and the subject or
    user Defender names. None of them may approve remediating (or undoing) it."""
    signal = incident.signal
    extended = signal.get("extended_properties") or {}
    names = [signal.get("actor"), *(extended.get(key) for key in SUBJECT_KEYS)]
    return frozenset(name.strip().lower() for name in names if isinstance(name, str) and name.strip())


def refuse_subject(incident: Incident, *, user: str, directory: ApproverDirectory) -> None:
    """DecisionRefused when `user` (or another name the directory knows them by) is the alert's subject."""
    names = {user, *(directory.identities(user) if isinstance(directory, IdentityDirectory) else ())}
    if {name.lower() for name in names} & alert_subjects(incident):
        raise DecisionRefused("the alert is about you (or was caused by you), so other approvers must decide")


def approve(incident: Incident, *, user: str, at: datetime, directory: ApproverDirectory) -> Incident:
    """One approval by `user`; the incident becomes approved once enough distinct approvers agreed.

    Never by the requester of a manual run or the alert's subject, and never while a guard rail
    refuses one of the previewed steps.
    """
    if incident.state not in _APPROVABLE:
        raise DecisionRefused(_not_pending(incident, user=user))
    require_open_window(incident, at=at)
    refused = guard_refusal(incident)
    if refused is not None:
        raise DecisionRefused(f"{refused}; this incident cannot be approved")
    if user in incident.approved_by:
        raise DecisionRefused(f"already approved by you ({incident.approval_progress()})")
    require_approver(incident, user=user, directory=directory)
    if user == incident.requester:
        raise DecisionRefused("you requested this run, so another approver must approve it")
    refuse_subject(incident, user=user, directory=directory)
    approvals = (*incident.approvals, Approval(user=user, at=at))
    if len(approvals) < incident.required_approvals:
        return dataclasses.replace(incident, approvals=approvals, updated_at=at)
    return transition(incident, _S.APPROVED, at=at, approvals=approvals)


def reject(incident: Incident, *, user: str, at: datetime, directory: ApproverDirectory) -> Incident:
    """`user`, an approver (the requester included), stops the incident."""
    if incident.state not in _REJECTABLE:
        raise DecisionRefused(_not_pending(incident, user=user))
    require_open_window(incident, at=at)
    require_approver(incident, user=user, directory=directory)
    return transition(incident, _S.REJECTED, at=at, rejected_by=user)


def supply_input(
    incident: Incident,
    *,
    params: Mapping[str, Any],
    at: datetime,
    user: str | None = None,
    directory: ApproverDirectory | None = None,
) -> Incident:
    """Fill missing step parameters (values already validated by the caller) into the plan.

    A key is a parameter name and fills every missing parameter of that name. Once nothing is
    missing the incident awaits approval with a fresh deadline, whatever the mode: whoever chose
    the target, approvers decide. With a `directory` (the engine always passes one) only an
    approver may supply input.
    """
    if incident.state is not _S.NEEDS_INPUT:
        raise DecisionRefused(f"incident {incident.id} does not need input (it is {incident.state.value})")
    require_open_window(incident, at=at)
    if directory is not None:
        require_approver(incident, user=user or "", directory=directory)
    if not params:
        raise DecisionRefused("no input given")
    wanted = {missing.param for missing in incident.plan.missing}
    unknown = sorted(set(params) - wanted)
    if unknown:
        needed = _describe_missing(incident)
        raise DecisionRefused(f"not a missing parameter: {', '.join(unknown)}; still needed: {needed}")
    plan = _fill(incident.plan, params)
    inputs = {**incident.inputs, **params}
    if plan.missing:
        return dataclasses.replace(incident, plan=plan, inputs=inputs, updated_at=at)
    deadline = at + plan.approval.timeout
    return transition(incident, _S.AWAITING_APPROVAL, at=at, plan=plan, inputs=inputs, deadline=deadline)


def on_timeout(incident: Incident, *, now: datetime) -> Incident:
    """Apply the plan's `on_timeout` to an incident whose deadline has passed.

    deny: expired. escalate: escalated once, with a full new window from `now` (the timer may run
    late), expired at the next timeout. auto_approve: approved and marked `break_glass` for review.
    An incident still missing input cannot run, so it expires whatever the policy.
    """
    if incident.state not in (_S.AWAITING_APPROVAL, _S.ESCALATED, _S.NEEDS_INPUT):
        raise DecisionRefused(f"incident {incident.id} is {incident.state.value}: no approval is pending")
    if incident.deadline is None or incident.deadline > now:
        raise DecisionRefused(f"incident {incident.id} is not due before {incident.deadline}")
    policy = incident.plan.approval
    if incident.state is not _S.AWAITING_APPROVAL or incident.escalated:
        return transition(incident, _S.EXPIRED, at=now)
    if policy.on_timeout is OnTimeout.ESCALATE:
        return transition(incident, _S.ESCALATED, at=now, escalated=True, deadline=now + policy.timeout)
    if policy.on_timeout is OnTimeout.AUTO_APPROVE:
        return transition(incident, _S.APPROVED, at=now, break_glass=True)
    return transition(incident, _S.EXPIRED, at=now)


def require_open_window(incident: Incident, *, at: datetime) -> None:
    """DeadlinePassed when the incident's deadline is before `at`: once it has passed, only its
    `on_timeout` applies. At the deadline itself a decision still counts (it races the timer, and
    whichever writes first wins)."""
    if incident.deadline is not None and incident.deadline < at:
        raise DeadlinePassed(incident.deadline)


def late_refusal(late: DeadlinePassed, *, outcome: Incident) -> str:
    """What a person whose decision came after the deadline is told: when the window closed, and
    what the playbook's `on_timeout` made of the incident instead (`outcome`, as it is now)."""
    return f"{late.reason}; instead, as the playbook says on timeout, {_timed_out(outcome)}"


def _timed_out(incident: Incident) -> str:
    state = incident.state
    if state is _S.EXPIRED:
        return "the incident expired"
    if state is _S.ESCALATED:
        until = f" until {when(incident.deadline)}" if incident.deadline is not None else ""
        return f"it is escalated to {incident.plan.approval.escalate_to or '?'}, and its approvers may decide{until}"
    if state is _S.APPROVED and incident.break_glass:
        return "it was approved at timeout (break-glass, review required)"
    return f"the incident is {state.value}"


def when(moment: datetime) -> str:
    """A deadline as people read it in a reply: `2026-01-01 12:30:00 UTC`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def require_approver(incident: Incident, *, user: str, directory: ApproverDirectory) -> None:
    """DecisionRefused naming the approvers when `user` is not one of them."""
    if is_approver(incident, user=user, directory=directory):
        return
    entries = approver_entries(incident)
    listed = ", ".join(entries) if entries else "nobody: the playbook lists no approvers"
    raise DecisionRefused(f"you are not an approver of playbook {incident.playbook} (approvers: {listed})")


def _not_pending(incident: Incident, *, user: str) -> str:
    state = incident.state
    if state in _PAST_APPROVAL:
        if incident.approvals:
            names = ", ".join("you" if approver == user else approver for approver in incident.approved_by)
            return f"already approved by {names} (the incident is {state.value})"
        how = "at timeout (break-glass)" if incident.break_glass else "automatically by policy"
        return f"already approved {how} (the incident is {state.value})"
    if state is _S.REJECTED and incident.rejected_by is None:
        return f"the incident was refused: {incident.last_error or 'no reason recorded'}"
    if state is _S.REJECTED:
        return f"already rejected by {incident.rejected_by}"
    if state is _S.EXPIRED:
        return "the approval window has closed: the incident expired"
    if state is _S.NEEDS_INPUT:
        return f"the incident needs input before it can be approved: {_describe_missing(incident)}"
    return f"the incident is {state.value}, not awaiting approval"


def _describe_missing(incident: Incident) -> str:
    return "; ".join(missing.describe() for missing in incident.plan.missing) or "nothing"


def _fill(plan: Plan, params: Mapping[str, Any]) -> Plan:
    steps = list(plan.steps)
    remaining: list[MissingParam] = []
    for missing in plan.missing:
        if missing.param not in params:
            remaining.append(missing)
            continue
        step = steps[missing.step]
        filled = {**step.params, missing.param: params[missing.param]}
        steps[missing.step] = PlannedStep(action=step.action, params=filled)
    return dataclasses.replace(plan, steps=tuple(steps), missing=tuple(remaining))
