"""The live index and partitions of TableIncidentStore, against a real Azurite.

The timer and App Home read `live()` / `due()`; these tests prove they read only the live rows
(entities counted by a TableClient wrapper), that a crash around an open never hides a live
incident, that groups spread over partitions, and that `prune` leaves live incidents and audit alone.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from azure.data.tables import TableClient

from remediation.clock import utcnow
from remediation.incidents import IncidentState, new_incident_id, open_incident, reject, transition
from remediation.store.incident_rows import INDEX_SUFFIX, entity_of, tag
from remediation.store.incidents import TableIncidentStore
from test_incidents import DIRECTORY, T0, make_plan, make_signal

S = IncidentState


class Recording:
    """A TableClient that counts what it reads and can fail its next transaction (a crash)."""

    def __init__(self, inner: TableClient, calls: list[str]) -> None:
        self.inner, self.calls, self.read, self.crash = inner, calls, Counter[str](), False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def query_entities(self, *args: Any, **kwargs: Any) -> list[Any]:
        rows = list(self.inner.query_entities(*args, **kwargs))
        self.read["queried"] += len(rows)
        return rows

    def get_entity(self, *args: Any, **kwargs: Any) -> Any:
        self.read["got"] += 1
        return self.inner.get_entity(*args, **kwargs)

    def upsert_entity(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(f"{self.inner.table_name}:upsert")
        return self.inner.upsert_entity(*args, **kwargs)

    def submit_transaction(self, *args: Any, **kwargs: Any) -> Any:
        if self.crash:
            raise ConnectionError("the host died")
        self.calls.append(f"{self.inner.table_name}:transaction")
        return self.inner.submit_transaction(*args, **kwargs)


@dataclasses.dataclass
class Tables:
    store: TableIncidentStore
    table: Recording
    index: Recording
    calls: list[str]

    def entries(self) -> list[str]:
        return [e["RowKey"] for e in self.index.inner.query_entities("PartitionKey eq 'live'")]

    def with_clock(self, later: timedelta) -> TableIncidentStore:
        table, index = cast(TableClient, self.table), cast(TableClient, self.index)
        return TableIncidentStore(
            table_client=table, index_client=index, audit=self.store.audit, clock=lambda: utcnow() + later
        )


@pytest.fixture
def tables(storage_connection_string: str) -> Iterator[Tables]:
    suffix = uuid.uuid4().hex[:10]
    plain = TableIncidentStore.from_connection_string(
        storage_connection_string, table_name=f"incidents{suffix}", audit_table=f"audit{suffix}"
    )
    calls: list[str] = []
    table = Recording(plain._table, calls)
    index = Recording(plain._index, calls)
    store = TableIncidentStore(
        table_client=cast(TableClient, table), index_client=cast(TableClient, index), audit=plain.audit
    )
    yield Tables(store, table, index, calls)
    plain.close()


def test_index_is_written_before_the_open_and_removed_after_the_close(tables: Tables) -> None:
    incident, _ = tables.store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    index_name = tables.index.inner.table_name
    assert index_name.endswith(INDEX_SUFFIX)
    assert tables.calls[:2] == [f"{index_name}:upsert", f"{tables.table.inner.table_name}:transaction"]
    assert tables.entries() == [incident.id] and tables.store.live() == [incident]
    tables.store.update(incident, lambda i: reject(i, user="U_BOB", at=T0, directory=DIRECTORY))
    assert tables.entries() == [] and tables.store.live() == [] and tables.store.get(incident.id) is not None
    assert tables.store.live(states=[S.REJECTED]) == [] and len(tables.store.list()) == 1


def test_a_requested_undo_makes_a_succeeded_incident_live_again(tables: Tables) -> None:
    incident, _ = tables.store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    done = incident
    for state in (S.APPROVED, S.EXECUTING, S.SUCCEEDED):
        done = tables.store.update(done, lambda i, state=state: transition(i, state, at=T0))
    assert tables.entries() == []
    asked = tables.store.update(done, lambda i: dataclasses.replace(i, undo_requested=True))
    assert tables.store.live(states=[S.SUCCEEDED]) == [asked] and tables.entries() == [incident.id]
    tables.store.update(asked, lambda i: transition(dataclasses.replace(i, undo_requested=False), S.UNDONE, at=T0))
    assert tables.entries() == [] and tables.store.live() == []


def test_stale_entries_are_removed_when_read_once_past_the_grace(tables: Tables) -> None:
    incident, _ = tables.store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    closed = tables.store.update(incident, lambda i: reject(i, user="U_BOB", at=T0, directory=DIRECTORY))
    ghost = "inc-" + "0" * 20 + "deadbeef"
    for stale in (closed.id, ghost):
        tables.index.inner.upsert_entity({"PartitionKey": "live", "RowKey": stale})
    assert tables.store.live() == [] and sorted(tables.entries()) == sorted([closed.id, ghost]), "within the grace"
    assert tables.with_clock(timedelta(hours=2)).live() == [] and tables.entries() == []


def test_a_crash_between_the_index_row_and_the_open_hides_no_live_incident(tables: Tables) -> None:
    tables.table.crash = True
    with pytest.raises(ConnectionError):
        tables.store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    tables.table.crash = False
    [orphan] = tables.entries()
    assert tables.store.list() == [] and tables.store.live() == [] and tables.store.due(T0 + timedelta(days=1)) == []
    incident, new = tables.store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    assert new and tables.store.live() == [incident] and tables.store.due(T0 + timedelta(days=1)) == [incident]
    assert tables.with_clock(timedelta(hours=2)).live() == [incident] and tables.entries() == [incident.id]
    assert orphan != incident.id


def seed_closed(table: TableClient, *, groups: int, per_group: int) -> None:
    """`groups` x `per_group` closed incidents, one transaction of rows per group partition."""
    for group in range(groups):
        plan = make_plan(group_key=f"seed-{group}")
        rows = []
        for n in range(per_group):
            at = T0 - timedelta(days=30, minutes=n)
            opened = open_incident(plan=plan, signal=make_signal(), now=at, incident_id=_id(plan.group_key, at))
            rows.append(("create", entity_of(reject(opened, user="U_BOB", at=at, directory=DIRECTORY))))
        table.submit_transaction(rows)


def _id(group_key: str, at: datetime) -> str:
    return new_incident_id(at) + tag(group_key)


def test_live_reads_only_the_live_rows_among_500_closed(tables: Tables) -> None:
    seed_closed(tables.table.inner, groups=5, per_group=100)
    live = [
        tables.store.open_or_fold(plan=make_plan(group_key=f"g{n}"), signal=make_signal(), now=T0)[0] for n in range(3)
    ]
    assert len(tables.store.list()) == 503
    tables.table.read.clear()
    tables.index.read.clear()
    assert tables.store.live() == sorted(live, key=lambda i: i.id)
    assert tables.store.due(T0 + timedelta(days=1)) == sorted(live, key=lambda i: i.id)
    assert tables.store.flush_pending_audit() == 0
    assert tables.index.read == Counter(queried=9), "three reads of the index, three entries each"
    assert tables.table.read == Counter(got=9), "each live incident read by id; no query of the incidents"


def test_groups_spread_over_partitions(tables: Tables) -> None:
    first, _ = tables.store.open_or_fold(plan=make_plan(group_key="node-a"), signal=make_signal(), now=T0)
    second, _ = tables.store.open_or_fold(plan=make_plan(group_key="node-b"), signal=make_signal(), now=T0)
    manual, _ = tables.store.open_or_fold(
        plan=make_plan(group_key="node-a"), signal=make_signal(), now=T0, requester="U"
    )
    rows = {(e["PartitionKey"], e["RowKey"].partition("-")[0] + "-") for e in tables.table.inner.list_entities()}
    partitions = {partition for partition, _ in rows}
    assert len(partitions) == 2 and all(p.startswith("incident-") for p in partitions)
    assert first.id[-8:] == manual.id[-8:] != second.id[-8:] and len(first.id) == 32
    assert rows == {(p, kind) for p in partitions for kind in ("inc-", "group-")}
    assert tables.store.get(first.id) == first and tables.store.get(second.id) == second


def test_prune_deletes_old_closed_incidents_and_keeps_live_ones_and_audit(tables: Tables) -> None:
    store = tables.store
    old, _ = store.open_or_fold(plan=make_plan(group_key="old"), signal=make_signal(), now=T0)
    old = store.update(old, lambda i: reject(i, user="U_BOB", at=T0, directory=DIRECTORY))
    five_days_on = T0 + timedelta(days=5)
    recent, _ = store.open_or_fold(plan=make_plan(group_key="recent"), signal=make_signal(), now=five_days_on)
    recent = store.update(recent, lambda i: reject(i, user="U_BOB", at=five_days_on, directory=DIRECTORY))
    live, _ = store.open_or_fold(plan=make_plan(group_key="live"), signal=make_signal(), now=T0)
    assert store.prune(before=T0 + timedelta(days=1)) == 1
    assert store.get(old.id) is None and store.get(recent.id) == recent and store.live() == [live]
    assert [r.kind for r in store.audit.records(old.id)] == ["opened", "rejection"] and store.audit.verify() == []
    pointers = [e for e in tables.table.inner.list_entities() if e["RowKey"].startswith("group-")]
    assert sorted(p["incident_id"] for p in pointers) == sorted([recent.id, live.id])
    again, new = store.open_or_fold(plan=make_plan(group_key="old"), signal=make_signal(), now=T0)
    assert new and again.id != old.id
    assert store.prune(before=T0 + timedelta(days=30)) == 1
    assert {i.id for i in store.live()} == {live.id, again.id} and store.get(recent.id) is None
