"""TableIncidentStore against a real Azurite: grouping storms, racing decisions, timeouts, audit outbox.

Every test gets its own `incidents…` and `audit…` tables. Time is passed in (`now=`, `at=`), so
windows and deadlines are crossed without sleeping.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from azurite import Azurite
from remediation.audit import AuditEvent, AuditRecord, InMemoryAuditLog
from remediation.incidents import (
    DecisionRefused,
    Incident,
    IncidentState,
    IncidentStore,
    UnknownIncident,
    fail,
    on_timeout,
    reject,
    start_execution,
    supply_input,
)
from remediation.plans import ApprovalMode, OnTimeout
from remediation.store.audit import TableAuditLog
from remediation.store.incidents import TableIncidentStore
from test_incidents import DIRECTORY, MISSING, T0, TIMEOUT, WINDOW, approving, make_plan, make_signal

S = IncidentState
HANG_GUARD_SECONDS = 300
StoreFactory = Callable[..., TableIncidentStore]


@pytest.fixture
def make_store(storage_connection_string: str) -> Iterator[StoreFactory]:
    """Stores on one pair of fresh tables; each call is a separate client, like a separate instance."""
    suffix = uuid.uuid4().hex[:10]
    built: list[TableIncidentStore] = []

    def make(**kwargs: Any) -> TableIncidentStore:
        store = TableIncidentStore.from_connection_string(
            storage_connection_string, table_name=f"incidents{suffix}", audit_table=f"audit{suffix}", **kwargs
        )
        built.append(store)
        return store

    yield make
    for store in built:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> TableIncidentStore:
    return make_store()


def records(store: TableIncidentStore, incident: Incident) -> list[AuditRecord]:
    return store.audit.records(incident.id)


def test_is_an_incident_store(store: TableIncidentStore) -> None:
    typed: IncidentStore = store
    assert typed is store


def test_open_get_list_round_trip(store: TableIncidentStore) -> None:
    incident, new = store.open_or_fold(plan=make_plan(min_approvals=2), signal=make_signal(), now=T0)
    assert new and incident.etag
    assert store.get(incident.id) == incident
    assert store.get("inc-nothing") is None
    assert store.list() == [incident] and store.list(states=[S.AWAITING_APPROVAL]) == [incident]
    assert store.list(states=[S.APPROVED, S.FAILED]) == [] and store.list(states=[]) == []
    assert [(r.kind, r.to_state) for r in records(store, incident)] == [("opened", "awaiting_approval")]


def test_two_threads_approving_at_once_one_wins(make_store: StoreFactory) -> None:
    incident, _ = make_store().open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    stores, barrier = [make_store(), make_store()], threading.Barrier(2)

    def click(store: TableIncidentStore, user: str) -> Incident | DecisionRefused:
        barrier.wait(timeout=30)
        try:
            return store.update(incident, approving(user))
        except DecisionRefused as refused:
            return refused

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(click, s, u) for s, u in zip(stores, ["U_ALICE", "U_BOB"], strict=True)]
        outcomes = [future.result(timeout=HANG_GUARD_SECONDS) for future in futures]
    [won] = [o for o in outcomes if isinstance(o, Incident)]
    [refused] = [o for o in outcomes if isinstance(o, DecisionRefused)]
    assert won.state is S.APPROVED and len(won.approvals) == 1
    assert refused.reason == f"already approved by {won.approved_by[0]} (the incident is approved)"
    assert [r.kind for r in records(stores[0], incident)] == ["opened", "approval"]


def test_conflicting_approval_reapplies_on_the_fresh_state(make_store: StoreFactory) -> None:
    """Both clicks read the same state before either writes: the loser's write gets a 412."""
    incident, _ = make_store().open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    barrier, calls = threading.Barrier(2), {"U_ALICE": 0, "U_BOB": 0}

    def change_for(user: str) -> Callable[[Incident], Incident]:
        def change(current: Incident) -> Incident:
            calls[user] += 1
            if calls[user] == 1:
                barrier.wait(timeout=30)
            return approving(user)(current)

        return change

    def click(user: str) -> str:
        try:
            return make_store().update(incident, change_for(user)).state.value
        except DecisionRefused as refused:
            return refused.reason

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(click, ["U_ALICE", "U_BOB"], timeout=HANG_GUARD_SECONDS))
    assert outcomes[0].startswith("already approved by U_") and outcomes[1] == "approved"
    assert sorted(calls.values()) == [1, 2], "the loser re-applied its decision once, to the new state"


def storm(stores: list[TableIncidentStore], *, alerts: int, threads: int) -> list[tuple[Incident, bool]]:
    """`alerts` alerts of one group, spread over `stores` and sent from `threads` threads at once."""
    plan = make_plan()

    def alert(n: int) -> tuple[Incident, bool]:
        signal = make_signal(signal_id=f"defender:storm-{n}")
        return stores[n % len(stores)].open_or_fold(plan=plan, signal=signal, now=T0 + timedelta(milliseconds=n))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(alert, range(alerts), timeout=HANG_GUARD_SECONDS))


def test_a_storm_of_1000_alerts_folds_into_one_incident(store: TableIncidentStore) -> None:
    results = storm([store], alerts=1000, threads=4)
    assert sum(new for _, new in results) == 1
    [incident] = store.list()
    assert incident.occurrences == 1000 and len({i.id for i, _ in results}) == 1
    assert incident.last_seen == T0 + timedelta(milliseconds=999)
    assert [r.kind for r in records(store, incident)] == ["opened"]


def test_a_storm_across_instances_folds_into_one_incident(make_store: StoreFactory) -> None:
    """Separate clients share no lock: only the ETag-conditional writes keep the count exact."""
    stores = [make_store() for _ in range(4)]
    results = storm(stores, alerts=200, threads=4)
    assert sum(new for _, new in results) == 1
    [incident] = stores[0].list()
    assert incident.occurrences == 200 and len({i.id for i, _ in results}) == 1


def test_folding_stops_after_the_window(store: TableIncidentStore) -> None:
    first, _ = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    folded, new = store.open_or_fold(plan=make_plan(), signal=make_signal(signal_id="defender:b"), now=T0 + WINDOW)
    assert not new and folded.id == first.id and folded.occurrences == 2
    later = T0 + 2 * WINDOW + timedelta(seconds=1)
    second, new = store.open_or_fold(plan=make_plan(), signal=make_signal(signal_id="defender:c"), now=later)
    assert new and second.id != first.id and second.occurrences == 1
    again, new = store.open_or_fold(
        plan=make_plan(), signal=make_signal(signal_id="defender:d"), now=later + timedelta(seconds=1)
    )
    assert not new and again.id == second.id, "the group pointer moved to the new incident"
    assert store.get(first.id) == folded


def test_folding_stops_once_the_incident_is_terminal(store: TableIncidentStore) -> None:
    first, _ = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    store.update(first, lambda i: reject(i, user="U_BOB", at=T0, directory=DIRECTORY))
    second, new = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0 + timedelta(seconds=1))
    assert new and second.id != first.id and store.get(first.id).occurrences == 1  # type: ignore[union-attr]


def test_racing_first_alerts_of_a_new_group_open_one_incident(make_store: StoreFactory) -> None:
    stores, barrier = [make_store() for _ in range(6)], threading.Barrier(6)

    def first_alert(store: TableIncidentStore) -> tuple[Incident, bool]:
        barrier.wait(timeout=30)
        signal = make_signal(signal_id=f"defender:first-{stores.index(store)}")
        return store.open_or_fold(plan=make_plan(), signal=signal, now=T0)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(first_alert, stores, timeout=HANG_GUARD_SECONDS))
    assert sum(new for _, new in results) == 1 and len(stores[0].list()) == 1
    assert stores[0].list()[0].occurrences == 6


def test_a_signal_delivered_again_is_not_counted_again(store: TableIncidentStore) -> None:
    """A retry after a partial open, or an at-least-once redelivery, brings the same Signal id back."""
    first, _ = store.open_or_fold(plan=make_plan(), signal=make_signal(signal_id="defender:a"), now=T0)
    again, new = store.open_or_fold(plan=make_plan(), signal=make_signal(signal_id="defender:a"), now=T0)
    assert (new, again.id, again.occurrences, again.revision) == (False, first.id, 1, first.revision)
    other, _ = store.open_or_fold(plan=make_plan(), signal=make_signal(signal_id="defender:b"), now=T0)
    redelivered, _ = store.open_or_fold(plan=make_plan(), signal=make_signal(signal_id="defender:b"), now=T0)
    assert (other.occurrences, redelivered.occurrences) == (2, 2)
    assert redelivered.revision == other.revision


def test_manual_runs_and_ungrouped_plans_open_their_own(store: TableIncidentStore) -> None:
    grouped, _ = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    manual, new = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0, requester="U_ALICE")
    assert new and manual.id != grouped.id and manual.requester == "U_ALICE"
    with pytest.raises(DecisionRefused, match="you requested this run"):
        store.update(manual, approving("U_ALICE"))
    ungrouped = [store.open_or_fold(plan=make_plan(group_key=""), signal=make_signal(), now=T0) for _ in range(2)]
    assert all(new for _, new in ungrouped) and ungrouped[0][0].id != ungrouped[1][0].id


def test_two_person_rule_and_same_user_twice_audited_once(store: TableIncidentStore) -> None:
    incident, _ = store.open_or_fold(plan=make_plan(min_approvals=2), signal=make_signal(), now=T0)
    one = store.update(incident, approving("U_ALICE"))
    assert one.state is S.AWAITING_APPROVAL and one.approval_progress() == "1 of 2 approvals"
    with pytest.raises(DecisionRefused, match=r"already approved by you \(1 of 2 approvals\)"):
        store.update(incident, approving("U_ALICE"))
    with pytest.raises(DecisionRefused, match="not an approver"):
        store.update(incident, approving("U_MALLORY"))
    two = store.update(incident, approving("U_ONCALL2"))
    assert two.state is S.APPROVED and two.approved_by == ("U_ALICE", "U_ONCALL2")
    kinds = [(r.kind, r.actor, r.to_state) for r in records(store, incident)]
    assert kinds == [
        ("opened", "system", "awaiting_approval"),
        ("approval", "U_ALICE", "awaiting_approval"),
        ("approval", "U_ONCALL2", "approved"),
    ]
    assert store.audit.verify(incident.id) == []


@pytest.mark.parametrize(
    ("policy", "states", "kinds"),
    [
        (OnTimeout.DENY, [S.EXPIRED], ["opened", "expiry"]),
        (OnTimeout.ESCALATE, [S.ESCALATED, S.EXPIRED], ["opened", "escalation", "expiry"]),
        (OnTimeout.AUTO_APPROVE, [S.APPROVED], ["opened", "break_glass"]),
    ],
)
def test_timeouts_through_due(
    store: TableIncidentStore, policy: OnTimeout, states: list[IncidentState], kinds: list[str]
) -> None:
    incident, _ = store.open_or_fold(
        plan=make_plan(on_timeout=policy, escalate_to="@leads"), signal=make_signal(), now=T0
    )
    now, seen = T0 + TIMEOUT - timedelta(seconds=1), []
    assert store.due(now) == []
    for _ in states:
        now += TIMEOUT
        [due] = store.due(now)
        seen.append(store.update(due, lambda i, at=now: on_timeout(i, now=at), actor="timer"))
    assert [i.state for i in seen] == states and store.due(now + 10 * TIMEOUT) == []
    assert seen[-1].break_glass is (policy is OnTimeout.AUTO_APPROVE)
    assert [r.kind for r in records(store, incident)] == kinds
    by_policy = f"policy:{incident.playbook}/on_timeout=auto_approve"  # break-glass names its rule, not the caller
    assert all(r.actor == (by_policy if r.kind == "break_glass" else "timer") for r in records(store, incident)[1:])


def test_timeout_racing_an_approval_loses_cleanly(store: TableIncidentStore) -> None:
    incident, _ = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    [due] = store.due(T0 + TIMEOUT)
    store.update(incident, approving("U_ALICE", at=T0 + TIMEOUT))
    with pytest.raises(DecisionRefused, match="no approval is pending"):
        store.update(due, lambda i: on_timeout(i, now=T0 + TIMEOUT))


def test_input_then_approval_then_execution(store: TableIncidentStore) -> None:
    plan = make_plan(missing=MISSING, params={}, mode=ApprovalMode.REQUIRED)
    incident, _ = store.open_or_fold(plan=plan, signal=make_signal(), now=T0)
    assert incident.state is S.NEEDS_INPUT and store.due(T0 + TIMEOUT) == [incident]
    later = T0 + timedelta(minutes=5)
    ready = store.update(
        incident, lambda i: supply_input(i, params={"node": "n", "reason": "r"}, at=later), actor="U_BOB"
    )
    assert ready.state is S.AWAITING_APPROVAL and ready.deadline == later + TIMEOUT
    approved = store.update(ready, approving("U_ALICE"))
    failed = store.update(approved, lambda i: fail(start_execution(i, at=later), at=later, error="x"))
    assert failed.state is S.FAILED  # two moves in one change are checked as one: approved -> failed
    assert [(r.kind, r.actor) for r in records(store, incident)] == [
        ("opened", "system"),
        ("input", "U_BOB"),
        ("approval", "U_ALICE"),
        ("transition", "system"),
    ]


def test_update_of_a_missing_incident_raises(store: TableIncidentStore) -> None:
    incident, _ = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    ghost = Incident.from_json({**incident.to_json(), "id": "inc-000000000000ghost"})
    with pytest.raises(UnknownIncident):
        store.update(ghost, approving("U_ALICE"))


def test_large_fields_are_bounded_or_refused(store: TableIncidentStore) -> None:
    huge = make_signal(title="t" * 200_000, extended_properties={f"k{n}": "v" * 5_000 for n in range(50)})
    incident, _ = store.open_or_fold(plan=make_plan(), signal=huge, now=T0)
    assert store.get(incident.id) == incident and incident.signal["title"].endswith("[truncated]")
    with pytest.raises(ValueError, match="plan is too large to store"):
        store.open_or_fold(plan=make_plan(params={"blob": "x" * 70_000}, group_key="big"), signal=huge, now=T0)


class FlakyAudit(InMemoryAuditLog):
    """Fails every append while `down` is set: the crash between the incident write and the audit."""

    down = True

    def append(self, *, incident_id: str, event: AuditEvent, revision: int | None = None) -> AuditRecord | None:
        if self.down:
            raise ConnectionError("audit table unreachable")
        return super().append(incident_id=incident_id, event=event, revision=revision)


def test_audit_outbox_survives_a_failed_append(store: TableIncidentStore) -> None:
    audit = FlakyAudit()
    flaky = TableIncidentStore(table_client=store._table, audit=audit)
    audit.down = False
    incident, _ = flaky.open_or_fold(plan=make_plan(min_approvals=3), signal=make_signal(), now=T0)
    audit.down = True
    with pytest.raises(ConnectionError):
        flaky.update(incident, approving("U_ALICE"))
    assert store.get(incident.id).approved_by == ("U_ALICE",)  # type: ignore[union-attr]
    audit.down = False
    flaky.update(incident, approving("U_BOB"))  # flushes the pending approval first, in order
    assert [r.actor for r in audit.records(incident.id)] == ["system", "U_ALICE", "U_BOB"]
    assert flaky.flush_pending_audit() == 0
    audit.down = True
    with pytest.raises(ConnectionError):
        flaky.update(incident, approving("U_ONCALL1"))
    audit.down = False
    assert flaky.flush_pending_audit() == 1 and flaky.flush_pending_audit() == 0
    assert [r.actor for r in audit.records(incident.id)] == ["system", "U_ALICE", "U_BOB", "U_ONCALL1"]
    assert audit.verify() == []


def test_state_survives_an_azurite_restart(tmp_path: Path) -> None:
    with Azurite(location=tmp_path / "azurite") as emulator:
        store = TableIncidentStore.from_connection_string(emulator.connection_string)
        incident, _ = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
        emulator.restart()
        assert store.get(incident.id) == incident
        assert store.update(incident, approving("U_ALICE")).state is S.APPROVED
        assert isinstance(store.audit, TableAuditLog) and store.audit.verify() == []
        store.close()


def test_due_orders_by_deadline(store: TableIncidentStore) -> None:
    made = [
        store.open_or_fold(plan=make_plan(group_key=f"g{n}"), signal=make_signal(), now=T0 - timedelta(minutes=n))[0]
        for n in range(3)
    ]
    assert [i.id for i in store.due(T0 + TIMEOUT)] == [i.id for i in reversed(made)]
