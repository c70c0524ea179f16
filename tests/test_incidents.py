"""Incidents, pure layer: the state machine, opening and folding, decisions, and the in-memory store.

The factories at the top (`make_plan`, `make_signal`, `T0`) are shared by the other incident and
audit test modules. Time is always passed in, so nothing sleeps.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediation.incidents import (
    TERMINAL_FOR_GROUPING,
    TRANSITIONS,
    WAITING,
    DecisionRefused,
    IllegalTransition,
    Incident,
    IncidentState,
    InMemoryIncidentStore,
    StaticDirectory,
    UnknownIncident,
    approve,
    can_fold,
    check_transition,
    complete_step,
    fail,
    fold,
    mark_undone,
    on_timeout,
    open_incident,
    reject,
    start_execution,
    succeed,
    supply_input,
    transition,
)
from remediation.plans import ApprovalMode, ApprovalPolicy, MissingParam, OnTimeout, Plan, PlannedStep
from remediation.signals import Severity, Signal, Source, Targets

S = IncidentState
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(minutes=30)
WINDOW = timedelta(minutes=15)
DIRECTORY = StaticDirectory({"@oncall": {"U_ONCALL1", "U_ONCALL2"}, "@leads": {"U_LEAD"}})


def make_signal(*, signal_id: str = "defender:alert-1", title: str = "Privileged container", **extra: Any) -> Signal:
    return Signal(
        source=Source.DEFENDER,
        type="K8S_PrivilegedContainer",
        id=signal_id,
        time=T0,
        severity=Severity.HIGH,
        targets=Targets(namespace="prod", pod="miner-7d9f"),
        title=title,
        **extra,
    )


def make_plan(
    *,
    approvers: tuple[str, ...] = ("U_ALICE", "U_BOB", "@oncall"),
    min_approvals: int = 1,
    mode: ApprovalMode = ApprovalMode.REQUIRED,
    on_timeout: OnTimeout = OnTimeout.DENY,
    escalate_to: str | None = None,
    group_key: str = "isolate-pod:prod/miner-7d9f",
    missing: tuple[MissingParam, ...] = (),
    params: dict[str, Any] | None = None,
) -> Plan:
    policy = ApprovalPolicy(
        mode=mode,
        approvers=approvers,
        min_approvals=min_approvals,
        timeout=TIMEOUT,
        on_timeout=on_timeout,
        escalate_to=escalate_to,
    )
    steps = (
        PlannedStep(action="kubernetes.label_pod", params={"namespace": "prod", "pod": "miner-7d9f"}),
        PlannedStep(action="kubernetes.cordon_node", params=params if params is not None else {"node": "aks-1"}),
    )
    return Plan(
        playbook="isolate-pod",
        steps=steps,
        approval=policy,
        group_key=group_key,
        group_window=WINDOW,
        missing=missing,
        reason="privileged container in prod",
    )


def opened(plan: Plan | None = None, **kwargs: Any) -> Incident:
    return open_incident(plan=plan or make_plan(), signal=make_signal(), now=T0, **kwargs)


def approving(user: str, at: datetime = T0) -> Callable[[Incident], Incident]:
    return lambda incident: approve(incident, user=user, at=at, directory=DIRECTORY)


# --- the state machine -------------------------------------------------------------------------

ALL_PAIRS = list(itertools.product(S, S))


@pytest.mark.parametrize(("start", "end"), ALL_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in ALL_PAIRS])
def test_transition_legal_exactly_as_specified(start: IncidentState, end: IncidentState) -> None:
    incident = dataclasses.replace(opened(), state=start)
    if end in TRANSITIONS.get(start, frozenset()):
        assert transition(incident, end, at=T0).state is end
    else:
        with pytest.raises(IllegalTransition) as refused:
            transition(incident, end, at=T0)
        message = str(refused.value)
        assert incident.id in message and start.value in message and end.value in message


def test_transition_table_matches_design() -> None:
    assert {state: {t.value for t in targets} for state, targets in TRANSITIONS.items()} == {
        S.OPEN: {"awaiting_approval", "needs_input", "approved"},
        S.NEEDS_INPUT: {"awaiting_approval", "approved", "rejected", "expired"},
        S.AWAITING_APPROVAL: {"approved", "rejected", "expired", "escalated"},
        S.ESCALATED: {"approved", "rejected", "expired"},
        S.APPROVED: {"executing", "failed"},
        S.EXECUTING: {"succeeded", "failed"},
        S.SUCCEEDED: {"undone"},
    }
    assert {s.value for s in TERMINAL_FOR_GROUPING} == {"succeeded", "failed", "rejected", "expired", "undone"}


def test_check_transition_names_incident_and_states() -> None:
    with pytest.raises(IllegalTransition, match=r"inc-x: illegal transition succeeded -> approved"):
        check_transition(incident_id="inc-x", from_state=S.SUCCEEDED, to_state=S.APPROVED)


# --- opening, JSON, folding --------------------------------------------------------------------


def test_open_required_awaits_approval_with_deadline() -> None:
    incident = opened()
    assert incident.state is S.AWAITING_APPROVAL
    assert incident.deadline == T0 + TIMEOUT
    assert incident.occurrences == 1 and incident.first_seen == incident.last_seen == T0
    assert incident.id.startswith("inc-") and incident.signal == make_signal().summary()


def test_open_auto_with_nothing_missing_is_approved() -> None:
    incident = opened(make_plan(mode=ApprovalMode.AUTO))
    assert incident.state is S.APPROVED and incident.deadline is None


def test_open_with_missing_params_needs_input_even_in_auto_mode() -> None:
    missing = (MissingParam(step=1, param="node", field="targets.node"),)
    incident = opened(make_plan(mode=ApprovalMode.AUTO, missing=missing, params={}))
    assert incident.state is S.NEEDS_INPUT and incident.deadline == T0 + TIMEOUT


def test_ids_sort_by_creation_time() -> None:
    ids = [open_incident(plan=make_plan(), signal=make_signal(), now=T0 + timedelta(seconds=n)).id for n in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5


def test_long_signal_is_truncated_to_a_bounded_view() -> None:
    signal = make_signal(title="x" * 100_000, extended_properties={"blob": "y" * 100_000})
    incident = open_incident(plan=make_plan(), signal=signal, now=T0)
    assert len(str(incident.signal)) < 20_000
    assert incident.signal["id"] == signal.id and incident.signal["title"].endswith("[truncated]")


def test_json_round_trip_keeps_everything_but_etag() -> None:
    incident = approve(opened(make_plan(min_approvals=2)), user="U_ALICE", at=T0, directory=DIRECTORY)
    incident = dataclasses.replace(incident, inputs={"node": "aks-2"}, requester="U_REQ", etag="W/1")
    back = Incident.from_json(incident.to_json())
    assert back == incident and back.etag is None
    assert dataclasses.replace(back, etag="other") == incident


def test_fold_within_window_only_and_not_after_terminal() -> None:
    plan, incident = make_plan(), opened()
    assert can_fold(incident, plan=plan, now=T0 + WINDOW)
    assert not can_fold(incident, plan=plan, now=T0 + WINDOW + timedelta(microseconds=1))
    folded = fold(incident, now=T0 + timedelta(minutes=10))
    assert folded.occurrences == 2 and folded.last_seen == T0 + timedelta(minutes=10)
    assert can_fold(folded, plan=plan, now=T0 + timedelta(minutes=24)), "the window slides with last_seen"
    assert fold(folded, now=T0).last_seen == folded.last_seen, "a late arrival never moves last_seen back"
    for state in TERMINAL_FOR_GROUPING:
        assert not can_fold(dataclasses.replace(incident, state=state), plan=plan, now=T0)
    assert not can_fold(incident, plan=make_plan(group_key="other"), now=T0)
    assert not can_fold(dataclasses.replace(incident, group_key=""), plan=make_plan(group_key=""), now=T0)


# --- approvals ---------------------------------------------------------------------------------


def test_single_approval_approves() -> None:
    approved = approve(opened(), user="U_ALICE", at=T0, directory=DIRECTORY)
    assert approved.state is S.APPROVED and approved.approved_by == ("U_ALICE",) and approved.deadline is None


def test_two_person_rule() -> None:
    incident = opened(make_plan(min_approvals=2))
    first = approve(incident, user="U_ALICE", at=T0, directory=DIRECTORY)
    assert first.state is S.AWAITING_APPROVAL and first.approval_progress() == "1 of 2 approvals"
    second = approve(first, user="U_BOB", at=T0 + timedelta(minutes=1), directory=DIRECTORY)
    assert second.state is S.APPROVED and second.approved_by == ("U_ALICE", "U_BOB")


def test_same_user_twice_counts_once() -> None:
    first = approve(opened(make_plan(min_approvals=2)), user="U_ALICE", at=T0, directory=DIRECTORY)
    with pytest.raises(DecisionRefused, match=r"already approved by you \(1 of 2 approvals\)"):
        approve(first, user="U_ALICE", at=T0, directory=DIRECTORY)


def test_requester_cannot_approve_own_request_but_may_reject_it() -> None:
    incident = opened(requester="U_ALICE")
    with pytest.raises(DecisionRefused, match="you requested this run"):
        approve(incident, user="U_ALICE", at=T0, directory=DIRECTORY)
    assert reject(incident, user="U_ALICE", at=T0, directory=DIRECTORY).state is S.REJECTED


def test_non_approver_refused_with_the_approvers_named() -> None:
    with pytest.raises(DecisionRefused, match=r"not an approver of playbook isolate-pod \(approvers: U_ALICE, U_BOB"):
        approve(opened(), user="U_MALLORY", at=T0, directory=DIRECTORY)
    with pytest.raises(DecisionRefused, match="not an approver"):
        reject(opened(), user="U_MALLORY", at=T0, directory=DIRECTORY)


def test_group_members_are_approvers() -> None:
    approved = approve(opened(), user="U_ONCALL2", at=T0, directory=DIRECTORY)
    assert approved.state is S.APPROVED
    with pytest.raises(DecisionRefused):
        approve(opened(), user="U_LEAD", at=T0, directory=DIRECTORY)


def test_escalation_target_group_may_approve_once_escalated() -> None:
    incident = opened(make_plan(on_timeout=OnTimeout.ESCALATE, escalate_to="@leads"))
    with pytest.raises(DecisionRefused):
        approve(incident, user="U_LEAD", at=T0, directory=DIRECTORY)
    escalated = on_timeout(incident, now=T0 + TIMEOUT)
    assert approve(escalated, user="U_LEAD", at=T0 + TIMEOUT, directory=DIRECTORY).state is S.APPROVED


def test_escalation_to_a_channel_adds_no_approvers() -> None:
    incident = opened(make_plan(on_timeout=OnTimeout.ESCALATE, escalate_to="#sec-leads"))
    escalated = on_timeout(incident, now=T0 + TIMEOUT)
    assert escalated.plan.approval.approvers == ("U_ALICE", "U_BOB", "@oncall")
    assert approve(escalated, user="U_BOB", at=T0, directory=DIRECTORY).state is S.APPROVED


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (approving("U_ALICE"), "already approved by U_ALICE"),
        (lambda i: reject(i, user="U_BOB", at=T0, directory=DIRECTORY), "already rejected by U_BOB"),
        (lambda i: on_timeout(i, now=T0 + TIMEOUT), "expired"),
    ],
)
def test_approval_after_the_decision_is_refused(change: Callable[[Incident], Incident], reason: str) -> None:
    decided = change(opened())
    with pytest.raises(DecisionRefused, match=reason):
        approve(decided, user="U_ONCALL1", at=T0, directory=DIRECTORY)


def test_approving_again_after_the_decision_says_who_decided() -> None:
    incident = opened(make_plan(min_approvals=2))
    one = approve(incident, user="U_ALICE", at=T0, directory=DIRECTORY)
    both = approve(one, user="U_BOB", at=T0, directory=DIRECTORY)
    with pytest.raises(DecisionRefused, match=r"^already approved by you, U_BOB \(the incident is approved\)$"):
        approve(both, user="U_ALICE", at=T0, directory=DIRECTORY)
    rejected = reject(one, user="U_BOB", at=T0, directory=DIRECTORY)
    with pytest.raises(DecisionRefused, match=r"^already rejected by U_BOB$"):
        approve(rejected, user="U_ALICE", at=T0, directory=DIRECTORY)


def test_reject_after_approval_refused() -> None:
    approved = approve(opened(), user="U_ALICE", at=T0, directory=DIRECTORY)
    with pytest.raises(DecisionRefused, match="already approved by U_ALICE"):
        reject(approved, user="U_BOB", at=T0, directory=DIRECTORY)


def test_auto_approved_incident_says_so() -> None:
    with pytest.raises(DecisionRefused, match="already approved automatically by policy"):
        approve(opened(make_plan(mode=ApprovalMode.AUTO)), user="U_ALICE", at=T0, directory=DIRECTORY)


# --- input -------------------------------------------------------------------------------------

MISSING = (
    MissingParam(step=1, param="node", field="targets.node"),
    MissingParam(step=1, param="reason", field="extended_properties.reason"),
)


def test_supply_input_partially_then_fully() -> None:
    incident = opened(make_plan(missing=MISSING, params={}))
    with pytest.raises(DecisionRefused, match="the incident needs input before it can be approved"):
        approve(incident, user="U_ALICE", at=T0, directory=DIRECTORY)
    partial = supply_input(incident, params={"node": "aks-9"}, at=T0 + timedelta(minutes=1))
    assert partial.state is S.NEEDS_INPUT and [m.param for m in partial.plan.missing] == ["reason"]
    done = supply_input(partial, params={"reason": "miner"}, at=T0 + timedelta(minutes=2))
    assert done.state is S.AWAITING_APPROVAL and done.deadline == T0 + timedelta(minutes=2) + TIMEOUT
    assert done.plan.steps[1].params == {"node": "aks-9", "reason": "miner"} and not done.plan.missing
    assert done.inputs == {"node": "aks-9", "reason": "miner"}


def test_supply_input_in_auto_mode_still_awaits_approval() -> None:
    incident = opened(make_plan(mode=ApprovalMode.AUTO, missing=MISSING[:1], params={}))
    assert supply_input(incident, params={"node": "aks-9"}, at=T0).state is S.AWAITING_APPROVAL


def test_supply_input_refusals() -> None:
    incident = opened(make_plan(missing=MISSING, params={}))
    with pytest.raises(DecisionRefused, match="not a missing parameter: pod; still needed: step 2 parameter 'node'"):
        supply_input(incident, params={"pod": "x"}, at=T0)
    with pytest.raises(DecisionRefused, match="no input given"):
        supply_input(incident, params={}, at=T0)
    with pytest.raises(DecisionRefused, match="does not need input"):
        supply_input(opened(), params={"node": "x"}, at=T0)


# --- timeouts ----------------------------------------------------------------------------------


def test_timeout_deny_expires() -> None:
    assert on_timeout(opened(), now=T0 + TIMEOUT).state is S.EXPIRED


def test_timeout_escalates_once_then_expires() -> None:
    incident = opened(make_plan(on_timeout=OnTimeout.ESCALATE, escalate_to="@leads"))
    late = T0 + TIMEOUT + timedelta(minutes=5)
    escalated = on_timeout(incident, now=late)
    assert escalated.state is S.ESCALATED and escalated.escalated and escalated.deadline == late + TIMEOUT
    with pytest.raises(DecisionRefused, match="not due"):
        on_timeout(escalated, now=late + TIMEOUT - timedelta(seconds=1))
    assert on_timeout(escalated, now=late + TIMEOUT).state is S.EXPIRED


def test_timeout_auto_approve_is_break_glass() -> None:
    approved = on_timeout(opened(make_plan(on_timeout=OnTimeout.AUTO_APPROVE)), now=T0 + TIMEOUT)
    assert approved.state is S.APPROVED and approved.break_glass and approved.approvals == ()


def test_timeout_while_missing_input_expires_whatever_the_policy() -> None:
    incident = opened(make_plan(on_timeout=OnTimeout.AUTO_APPROVE, missing=MISSING, params={}))
    assert on_timeout(incident, now=T0 + TIMEOUT).state is S.EXPIRED


def test_timeout_refused_before_deadline_and_when_not_waiting() -> None:
    with pytest.raises(DecisionRefused, match="not due"):
        on_timeout(opened(), now=T0 + TIMEOUT - timedelta(seconds=1))
    approved = approve(opened(), user="U_ALICE", at=T0, directory=DIRECTORY)
    with pytest.raises(DecisionRefused, match="no approval is pending"):
        on_timeout(approved, now=T0 + TIMEOUT)


# --- execution ---------------------------------------------------------------------------------


def test_execution_path_and_undo() -> None:
    running = start_execution(approve(opened(), user="U_ALICE", at=T0, directory=DIRECTORY), at=T0)
    stepped = complete_step(running, step=0, at=T0)
    assert stepped.completed_steps == 1 and complete_step(stepped, step=0, at=T0) is stepped
    done = succeed(complete_step(stepped, step=1, at=T0), at=T0)
    assert done.state is S.SUCCEEDED and mark_undone(done, at=T0).state is S.UNDONE
    failed = fail(running, at=T0, error="boom" * 5000)
    assert failed.state is S.FAILED and failed.last_error is not None and len(failed.last_error) < 4100
    with pytest.raises(IllegalTransition):
        start_execution(opened(), at=T0)


# --- the in-memory store -----------------------------------------------------------------------


def test_memory_store_folds_a_storm_from_threads() -> None:
    store = InMemoryIncidentStore()
    signals = [make_signal(signal_id=f"defender:{n}") for n in range(200)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda s: store.open_or_fold(plan=make_plan(), signal=s, now=T0), signals))
    assert sum(new for _, new in results) == 1
    [incident] = store.list()
    assert incident.occurrences == 200
    assert [r.kind for r in store.audit.records(incident.id)] == ["opened"]


def test_memory_store_window_terminal_and_manual_runs() -> None:
    store = InMemoryIncidentStore()
    first, new = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    assert new
    after_window = T0 + WINDOW + timedelta(seconds=1)
    second, new = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=after_window)
    assert new and second.id != first.id
    store.update(second, approving("U_ALICE"))
    store.update(second, lambda i: fail(i, at=after_window, error="x"))
    third, new = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=after_window)
    assert new and third.id != second.id
    manual, new = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=after_window, requester="U_REQ")
    assert new and manual.requester == "U_REQ"
    assert store.open_or_fold(plan=make_plan(), signal=make_signal(), now=after_window)[0].id == third.id


def test_memory_store_update_audits_each_decision_once() -> None:
    store = InMemoryIncidentStore()
    incident, _ = store.open_or_fold(plan=make_plan(min_approvals=2), signal=make_signal(), now=T0)
    store.update(incident, approving("U_ALICE"))
    with pytest.raises(DecisionRefused, match="already approved by you"):
        store.update(incident, approving("U_ALICE"))
    approved = store.update(incident, approving("U_ONCALL1"))
    running = store.update(approved, lambda i: start_execution(i, at=T0), actor="executor")
    store.update(running, lambda i: complete_step(i, step=0, at=T0), actor="executor")
    store.update(running, lambda i: complete_step(i, step=0, at=T0), actor="executor")  # no change, no record
    store.update(running, lambda i: succeed(i, at=T0), actor="executor")
    records = store.audit.records(incident.id)
    assert [(r.kind, r.actor, r.from_state, r.to_state) for r in records] == [
        ("opened", "system", "open", "awaiting_approval"),
        ("approval", "U_ALICE", "awaiting_approval", "awaiting_approval"),
        ("approval", "U_ONCALL1", "awaiting_approval", "approved"),
        ("transition", "executor", "approved", "executing"),
        ("step", "executor", "executing", "executing"),
        ("transition", "executor", "executing", "succeeded"),
    ]
    assert records[1].details == {"approvals": 1, "required": 2}
    assert store.audit.verify() == []


def test_memory_store_race_one_approval_wins() -> None:
    store = InMemoryIncidentStore()
    incident, _ = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    barrier = threading.Barrier(2)

    def click(user: str) -> str:
        barrier.wait(timeout=10)
        try:
            return store.update(incident, approving(user)).state.value
        except DecisionRefused as refused:
            return refused.reason

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(click, ["U_ALICE", "U_BOB"]))
    assert outcomes[0].startswith("already approved by") and outcomes[1] == "approved"


def test_memory_store_guards_and_queries() -> None:
    store = InMemoryIncidentStore()
    incident, _ = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    with pytest.raises(UnknownIncident):
        store.update(dataclasses.replace(incident, id="inc-missing"), approving("U_ALICE"))
    with pytest.raises(IllegalTransition):
        store.update(incident, lambda i: dataclasses.replace(i, state=S.SUCCEEDED))
    with pytest.raises(ValueError, match="returned incident"):
        store.update(incident, lambda i: dataclasses.replace(i, id="inc-other"))
    assert store.due(T0 + TIMEOUT - timedelta(seconds=1)) == []
    assert [i.id for i in store.due(T0 + TIMEOUT)] == [incident.id]
    assert store.list(states=[S.APPROVED]) == [] and store.get(incident.id) == incident


# --- invariants under any sequence of decisions ------------------------------------------------

USERS = ["U_ALICE", "U_BOB", "U_ONCALL1", "U_MALLORY", "U_REQ"]
ACTIONS: dict[str, Callable[[Incident, str, datetime], Incident]] = {
    "approve": lambda i, user, at: approve(i, user=user, at=at, directory=DIRECTORY),
    "reject": lambda i, user, at: reject(i, user=user, at=at, directory=DIRECTORY),
    "timeout": lambda i, user, at: on_timeout(i, now=at),
    "input": lambda i, user, at: supply_input(i, params={"node": user}, at=at),
    "start": lambda i, user, at: start_execution(i, at=at),
    "succeed": lambda i, user, at: succeed(i, at=at),
    "fail": lambda i, user, at: fail(i, at=at, error="e"),
    "undo": lambda i, user, at: mark_undone(i, at=at),
}


@given(
    steps=st.lists(
        st.tuples(st.sampled_from(sorted(ACTIONS)), st.sampled_from(USERS), st.integers(0, 200)), max_size=15
    ),
    min_approvals=st.integers(1, 3),
    on_timeout_policy=st.sampled_from(OnTimeout),
    mode=st.sampled_from(ApprovalMode),
    needs_node=st.booleans(),
)
def test_any_decision_sequence_keeps_the_invariants(
    steps: list[tuple[str, str, int]],
    min_approvals: int,
    on_timeout_policy: OnTimeout,
    mode: ApprovalMode,
    needs_node: bool,
) -> None:
    missing = MISSING[:1] if needs_node else ()
    plan = make_plan(min_approvals=min_approvals, on_timeout=on_timeout_policy, mode=mode, missing=missing, params={})
    incident = opened(plan, requester="U_REQ")
    for action, user, minutes in steps:
        try:
            after = ACTIONS[action](incident, user, T0 + timedelta(minutes=minutes))
        except (DecisionRefused, IllegalTransition, ValueError):
            continue
        if after.state is not incident.state:
            assert after.state in TRANSITIONS[incident.state]
        incident = after
        assert len(set(incident.approved_by)) == len(incident.approvals) and "U_REQ" not in incident.approved_by
        assert (incident.deadline is not None) == (incident.state in WAITING)
        if incident.state is S.APPROVED and mode is ApprovalMode.REQUIRED and not incident.break_glass:
            assert len(incident.approvals) >= min_approvals


def test_memory_store_live_and_prune() -> None:
    store = InMemoryIncidentStore()
    live, _ = store.open_or_fold(plan=make_plan(group_key="a"), signal=make_signal(), now=T0)
    closed, _ = store.open_or_fold(plan=make_plan(group_key="b"), signal=make_signal(), now=T0)
    closed = store.update(closed, lambda i: reject(i, user="U_BOB", at=T0, directory=DIRECTORY))
    assert store.live() == [live] and store.live(states=[S.APPROVED]) == [] and store.due(T0 + TIMEOUT) == [live]
    assert store.prune(before=T0) == 0 and store.prune(before=T0 + TIMEOUT) == 1
    assert store.get(closed.id) is None and store.get(live.id) == live and store.audit.records(closed.id)
    again, new = store.open_or_fold(plan=make_plan(group_key="b"), signal=make_signal(), now=T0)
    assert new and again.id != closed.id
