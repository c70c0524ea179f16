"""The audit chain: hashing, verification of tampering, and TableAuditLog against a real Azurite.

Tampering goes through a raw TableClient on the same table, the way someone with storage access
(not our code) would edit or delete rows. Each test uses its own `audit…` table.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from azure.data.tables import TableClient, UpdateMode

from remediation.audit import (
    GENESIS_HASH,
    MAX_DETAILS_CHARS,
    AuditEvent,
    AuditKeys,
    AuditLog,
    AuditProblem,
    InMemoryAuditLog,
    canonical_json,
    check_chain,
    key_id,
    seal,
)
from remediation.store.audit import TableAuditLog
from remediation.store.clients import make_table_client
from test_incidents import T0

HANG_GUARD_SECONDS = 120
STATES = ["open", "awaiting_approval", "approved", "executing", "succeeded"]


def event(n: int, *, kind: str = "transition", actor: str = "system") -> AuditEvent:
    return AuditEvent(
        kind=kind,
        actor=actor,
        at=T0 + timedelta(seconds=n),
        from_state=STATES[n % 4],
        to_state=STATES[n % 4 + 1],
        details={"n": n, "note": "ünïcode ✓"},
    )


def fill(log: AuditLog, incident_id: str, count: int) -> None:
    for n in range(count):
        log.append(incident_id=incident_id, event=event(n))


@pytest.fixture
def raw(storage_connection_string: str) -> Iterator[TableClient]:
    table = make_table_client(storage_connection_string, table_name=f"audit{uuid.uuid4().hex[:10]}")
    table.create_table()
    yield table
    table.close()


@pytest.fixture
def log(raw: TableClient) -> TableAuditLog:
    return TableAuditLog(table_client=raw)


def incident_id() -> str:
    return f"inc-{uuid.uuid4().hex[:20]}"


# --- pure: records and the chain check ---------------------------------------------------------


def test_seal_hashes_canonical_json_without_the_hash() -> None:
    record = seal(incident_id="inc-1", seq=1, prev_hash=GENESIS_HASH, event=event(0))
    assert record.hash == record.computed_hash() and len(record.hash) == 64
    assert '"hash"' not in canonical_json(record.body())
    assert record.at == "2025-03-01T12:00:00.000000+00:00" and record.prev_hash == GENESIS_HASH


def test_huge_details_are_truncated_before_hashing() -> None:
    big = AuditEvent(kind="step", actor="executor", at=T0, details={"error": "e" * 500_000, "ok": 1})
    record = seal(incident_id="inc-1", seq=1, prev_hash=GENESIS_HASH, event=big)
    assert len(canonical_json(record.details)) <= MAX_DETAILS_CHARS and record.details["ok"] == 1
    assert record.hash == record.computed_hash()


def test_memory_log_chains_and_verifies() -> None:
    memory = InMemoryAuditLog()
    fill(memory, "inc-a", 5)
    fill(memory, "inc-b", 2)
    chain = memory.records("inc-a")
    assert [r.seq for r in chain] == [1, 2, 3, 4, 5]
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(chain))
    assert memory.verify() == [] and memory.verify("inc-b") == [] and memory.verify("inc-none") == []


def test_revision_makes_a_repeated_append_a_no_op() -> None:
    memory = InMemoryAuditLog()
    assert memory.append(incident_id="inc-a", event=event(0), revision=1) is not None
    assert memory.append(incident_id="inc-a", event=event(0), revision=1) is None
    assert memory.append(incident_id="inc-a", event=event(1)) is not None  # no revision: always appended
    assert memory.append(incident_id="inc-a", event=event(2), revision=2) is not None
    assert [r.seq for r in memory.records("inc-a")] == [1, 2, 3]


def test_check_chain_names_each_kind_of_damage() -> None:
    memory = InMemoryAuditLog()
    fill(memory, "inc-a", 4)
    chain = memory.records("inc-a")
    head = memory._heads["inc-a"]
    forged = seal(incident_id="inc-a", seq=2, prev_hash=chain[0].hash, event=event(9, actor="mallory"))
    assert [(p.seq, p.kind) for p in check_chain("inc-a", [chain[0], forged, *chain[2:]], head)] == [
        (3, "chain_broken")
    ]
    forged_last = seal(incident_id="inc-a", seq=4, prev_hash=chain[2].hash, event=event(9, actor="mallory"))
    assert [(p.seq, p.kind) for p in check_chain("inc-a", [*chain[:3], forged_last], head)] == [(4, "edited")]
    problem = check_chain("inc-a", chain, None)[0]
    assert (problem.kind, problem.seq) == ("head_missing", None) and "inc-a" in str(problem)


# --- TableAuditLog -----------------------------------------------------------------------------


def test_table_log_is_an_audit_log(log: TableAuditLog) -> None:
    typed: AuditLog = log
    assert typed is log


def test_normal_sequence_verifies_clean(log: TableAuditLog) -> None:
    one, two = incident_id(), incident_id()
    fill(log, one, 6)
    fill(log, two, 1)
    chain = log.records(one)
    assert [r.seq for r in chain] == [1, 2, 3, 4, 5, 6] and chain[0].prev_hash == GENESIS_HASH
    assert chain[3].details == {"n": 3, "note": "ünïcode ✓"} and chain[3].at == "2025-03-01T12:00:03.000000+00:00"
    assert chain == [r for r in chain if r.hash == r.computed_hash()]
    assert log.verify(one) == [] and log.verify() == []


def only(problems: list[AuditProblem]) -> AuditProblem:
    assert len(problems) == 1, problems
    return problems[0]


def test_an_edited_record_is_detected(log: TableAuditLog, raw: TableClient) -> None:
    inc = incident_id()
    fill(log, inc, 5)
    row = raw.get_entity(inc, "0000000003")
    row["actor"] = "mallory"
    raw.update_entity(row, mode=UpdateMode.MERGE)
    problem = only(log.verify(inc))
    assert (problem.incident_id, problem.seq, problem.kind) == (inc, 3, "edited")
    assert str(problem) == f"audit {inc} seq 3: edited: content does not match its hash"


def test_an_edited_record_with_a_recomputed_hash_breaks_the_chain(log: TableAuditLog, raw: TableClient) -> None:
    inc = incident_id()
    fill(log, inc, 5)
    original = log.records(inc)[2]
    forged = seal(incident_id=inc, seq=3, prev_hash=original.prev_hash, event=event(2, actor="mallory"))
    raw.update_entity({"PartitionKey": inc, "RowKey": "0000000003", "actor": "mallory", "hash": forged.hash})
    problem = only(log.verify(inc))
    assert (problem.seq, problem.kind) == (4, "chain_broken")


def test_a_deleted_middle_record_is_detected(log: TableAuditLog, raw: TableClient) -> None:
    inc = incident_id()
    fill(log, inc, 5)
    raw.delete_entity(inc, "0000000003")
    problem = only(log.verify())
    assert (problem.incident_id, problem.seq, problem.kind) == (inc, 3, "deleted")


def test_a_deleted_last_record_is_detected_by_the_head(log: TableAuditLog, raw: TableClient) -> None:
    inc = incident_id()
    fill(log, inc, 5)
    raw.delete_entity(inc, "0000000005")
    problem = only(log.verify(inc))
    assert (problem.incident_id, problem.seq, problem.kind) == (inc, 5, "truncated")
    assert "head counts 5 records, the chain ends at 4" in problem.message


def test_a_deleted_head_is_detected(log: TableAuditLog, raw: TableClient) -> None:
    inc = incident_id()
    fill(log, inc, 2)
    raw.delete_entity(inc, "head")
    assert only(log.verify(inc)).kind == "head_missing"


def test_an_unreadable_record_is_reported(log: TableAuditLog, raw: TableClient) -> None:
    inc = incident_id()
    fill(log, inc, 2)
    raw.update_entity({"PartitionKey": inc, "RowKey": "0000000002", "details": "{not json"})
    assert [(p.seq, p.kind) for p in log.verify(inc)] == [(2, "unreadable"), (2, "truncated")]


def test_concurrent_appends_never_fork_the_chain(raw: TableClient, storage_connection_string: str) -> None:
    inc, per_thread, threads = incident_id(), 10, 4
    logs = [TableAuditLog(table_client=make_table_client(storage_connection_string, table_name=raw.table_name))]
    logs += [TableAuditLog(table_client=make_table_client(storage_connection_string, table_name=raw.table_name))]
    barrier = threading.Barrier(threads)

    def writer(index: int) -> int:
        barrier.wait(timeout=30)
        for n in range(per_thread):
            logs[index % 2].append(incident_id=inc, event=event(n, actor=f"writer-{index}"))
        return index

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(writer, range(threads), timeout=HANG_GUARD_SECONDS))
    chain = logs[0].records(inc)
    assert [r.seq for r in chain] == list(range(1, threads * per_thread + 1))
    assert sorted(r.actor for r in chain) == sorted(f"writer-{i}" for i in range(threads) for _ in range(per_thread))
    assert logs[1].verify(inc) == []


def test_table_revision_makes_a_repeated_append_a_no_op(log: TableAuditLog) -> None:
    inc = incident_id()
    assert log.append(incident_id=inc, event=event(0), revision=1) is not None
    assert log.append(incident_id=inc, event=event(0), revision=1) is None
    assert log.append(incident_id=inc, event=event(1), revision=3) is not None
    assert log.append(incident_id=inc, event=event(1), revision=2) is None
    assert [r.seq for r in log.records(inc)] == [1, 2] and log.verify(inc) == []


# --- keys ----------------------------------------------------------------------------------------

OLD, NEW = AuditKeys(current="old-" + "o" * 28), AuditKeys(current="new-" + "n" * 28, old=("old-" + "o" * 28,))


def test_a_keyed_record_is_an_hmac_naming_its_key() -> None:
    record = seal(incident_id="inc-1", seq=1, prev_hash=GENESIS_HASH, event=event(0), keys=OLD)
    assert record.key_id == key_id("old-" + "o" * 28) and record.body()["key_id"] == record.key_id
    assert record.hash != record.computed_hash() and record.hash == record.computed_hash(b"old-" + b"o" * 28)
    assert "o" * 28 not in repr(OLD)


def test_records_under_an_old_key_verify_only_while_it_is_kept(log: TableAuditLog, raw: TableClient) -> None:
    one = incident_id()
    fill(log.with_keys(OLD), one, 2)
    fill(log.with_keys(NEW), one, 2)  # rotated mid-chain
    assert [r.key_id for r in log.records(one)] == [key_id(OLD.current or "")] * 2 + [key_id(NEW.current or "")] * 2
    assert log.with_keys(NEW).verify(one) == []
    [problem] = log.with_keys(AuditKeys(current=NEW.current)).verify(one)
    assert (problem.kind, problem.seq) == ("cannot check", 1) and "records 1, 2 are sealed with key id" in str(problem)
    unkeyed = log.verify(one)  # no key at all: nothing keyed can be checked
    assert [(p.kind, p.seq) for p in unkeyed] == [("cannot check", 1), ("cannot check", 3)]


def test_an_edit_re_sealed_without_the_key_is_found(log: TableAuditLog, raw: TableClient) -> None:
    one = incident_id()
    fill(log.with_keys(NEW), one, 3)
    forged = dataclasses.replace(log.records(one)[2], actor="mallory")
    forged = dataclasses.replace(forged, hash=forged.computed_hash())  # plain SHA-256: all an editor can do
    raw.update_entity(
        {"PartitionKey": one, "RowKey": "0000000003", "actor": "mallory", "hash": forged.hash}, mode=UpdateMode.MERGE
    )
    raw.update_entity({"PartitionKey": one, "RowKey": "head", "last_hash": forged.hash}, mode=UpdateMode.MERGE)
    assert [(p.kind, p.seq) for p in log.with_keys(NEW).verify(one)] == [("edited", 3)]


def test_memory_log_seals_with_its_keys() -> None:
    memory = InMemoryAuditLog(keys=NEW)
    fill(memory, "inc-a", 3)
    assert {r.key_id for r in memory.records("inc-a")} == {key_id(NEW.current or "")} and memory.verify() == []
