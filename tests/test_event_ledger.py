"""TableEventLedger against a real Azurite: claims, leases, completion, races and storage failures.

The Azurite instance is shared by the session, so every test uses fresh uuid keys.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import AzureError, ServiceRequestError

from azurite import Azurite, free_ports
from remediation.intake import CLAIM_LEASE_SECONDS, EventLedger
from remediation.store.clients import make_table_client
from remediation.store.events import DEFAULT_TABLE, TableEventLedger, row_address

Clock = Callable[[], datetime]
LedgerFactory = Callable[..., TableEventLedger]

HANG_GUARD_SECONDS = 120  # far above what the bounded retry settings allow; only stops a hang


def after_lease() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=CLAIM_LEASE_SECONDS + 1)


def fresh_key(prefix: str = "registry") -> str:
    return f"{prefix}:{uuid.uuid4()}"


@pytest.fixture
def make_ledger(storage_connection_string: str) -> Iterator[LedgerFactory]:
    """Builds ledgers on the shared `events` table (each its own client, like separate instances)."""
    built: list[TableEventLedger] = []

    def make(**kwargs: Any) -> TableEventLedger:
        ledger = TableEventLedger.from_connection_string(storage_connection_string, **kwargs)
        built.append(ledger)
        return ledger

    yield make
    for ledger in built:
        ledger.close()


@pytest.fixture
def ledger(make_ledger: LedgerFactory) -> TableEventLedger:
    return make_ledger()


def race(ledgers: list[TableEventLedger], key: str) -> list[bool]:
    """All ledgers claim `key` at once (released together by a barrier); their answers."""
    barrier = threading.Barrier(len(ledgers))

    def claim(one: TableEventLedger) -> bool:
        barrier.wait(timeout=30)
        return one.claim(key)

    with ThreadPoolExecutor(max_workers=len(ledgers)) as pool:
        futures = [pool.submit(claim, one) for one in ledgers]
        return [future.result(timeout=HANG_GUARD_SECONDS) for future in futures]


def test_is_an_event_ledger(ledger: TableEventLedger) -> None:
    typed: EventLedger = ledger
    assert typed is ledger


def test_first_claim_wins_second_is_duplicate(ledger: TableEventLedger) -> None:
    key = fresh_key()
    assert ledger.claim(key) is True
    assert ledger.claim(key) is False


def test_completed_key_is_a_duplicate(ledger: TableEventLedger) -> None:
    key = fresh_key()
    assert ledger.claim(key)
    ledger.complete(key)
    assert ledger.claim(key) is False


def test_released_key_can_be_claimed_again(ledger: TableEventLedger) -> None:
    key = fresh_key()
    assert ledger.claim(key)
    ledger.release(key)
    assert ledger.claim(key) is True
    assert ledger.claim(key) is False


def test_release_and_complete_of_unknown_keys(ledger: TableEventLedger) -> None:
    ledger.release(fresh_key())
    key = fresh_key()
    ledger.complete(key)
    assert ledger.claim(key) is False


def test_row_layout(ledger: TableEventLedger, storage_connection_string: str) -> None:
    key = fresh_key("defender")
    assert ledger.claim(key)
    with make_table_client(storage_connection_string, table_name=DEFAULT_TABLE) as table:
        row = table.get_entity("defender", key)
        assert (row["EventId"], row["Status"]) == (key, "claimed")
        assert isinstance(row["ClaimedAt"], datetime)
        ledger.complete(key)
        row = table.get_entity("defender", key)
        assert (row["EventId"], row["Status"]) == (key, "done")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("registry:abc", ("registry", "registry:abc")),
        ("no-prefix", ("event", "no-prefix")),
        (":empty-prefix", ("event", ":empty-prefix")),
        ("a/b:c", ("event", hashlib.sha256(b"a/b:c").hexdigest())),
        ("defender:x?y", ("defender", hashlib.sha256(b"defender:x?y").hexdigest())),
        ("e:\x85", ("e", hashlib.sha256("e:\x85".encode()).hexdigest())),
        ("e:" + "x" * 510, ("e", "e:" + "x" * 510)),
        ("e:" + "x" * 511, ("e", hashlib.sha256(("e:" + "x" * 511).encode()).hexdigest())),
        (
            "e:" + "😀" * 300,
            ("e", hashlib.sha256(("e:" + "😀" * 300).encode()).hexdigest()),
        ),  # 602 UTF-16 units
    ],
)
def test_row_address(key: str, expected: tuple[str, str]) -> None:
    assert row_address(key) == expected


@pytest.mark.parametrize(
    "suffix",
    ["a/b", "a#b", "a?b", "a\\b", "tab\there", "/#?\\", "x" * 2000, "ü" * 600, "😀" * 300],
    ids=["slash", "hash", "question", "backslash", "control", "all", "2000-chars", "600-umlauts", "emoji"],
)
def test_keys_that_are_not_valid_row_keys(
    ledger: TableEventLedger, storage_connection_string: str, suffix: str
) -> None:
    key = f"registry:{uuid.uuid4()}:{suffix}"
    assert ledger.claim(key) is True
    assert ledger.claim(key) is False
    with make_table_client(storage_connection_string, table_name=DEFAULT_TABLE) as table:
        assert table.get_entity(*row_address(key))["EventId"] == key
    ledger.release(key)
    assert ledger.claim(key) is True
    ledger.complete(key)
    assert ledger.claim(key) is False


@pytest.mark.parametrize("claimers", [2, 8])
def test_concurrent_claims_of_a_fresh_key_have_one_winner(make_ledger: LedgerFactory, claimers: int) -> None:
    key = fresh_key()
    results = race([make_ledger() for _ in range(claimers)], key)
    assert sorted(results) == [False] * (claimers - 1) + [True]


@pytest.mark.parametrize("claimers", [2, 8])
def test_expired_claim_is_taken_over_once_by_racing_claimers(make_ledger: LedgerFactory, claimers: int) -> None:
    key = fresh_key()
    assert make_ledger().claim(key)
    late = [make_ledger(clock=after_lease) for _ in range(claimers)]
    assert make_ledger().claim(key) is False  # lease still running
    assert sorted(race(late, key)) == [False] * (claimers - 1) + [True]
    assert make_ledger(clock=after_lease).claim(key) is False  # the takeover started a new lease


def test_short_lease_expires(make_ledger: LedgerFactory) -> None:
    key = fresh_key()
    ledger = make_ledger(lease_seconds=0)
    assert ledger.claim(key)
    assert ledger.claim(key) is True  # a zero lease is expired at once


def test_completed_key_is_never_taken_over(make_ledger: LedgerFactory) -> None:
    key = fresh_key()
    ledger = make_ledger()
    assert ledger.claim(key)
    ledger.complete(key)
    assert make_ledger(clock=after_lease).claim(key) is False
    assert make_ledger(lease_seconds=0).claim(key) is False


class ReleasedBeforeRead(TableEventLedger):
    """Another instance releases the row between this one's failed create and its read."""

    def _read(self, key: str) -> Any:
        self.release(key)
        return super()._read(key)


class ReleasedBeforeTakeOver(TableEventLedger):
    """Another instance releases the expired row between this one's read and its conditional update."""

    def _take_over(self, key: str, row: Any) -> bool | None:
        self.release(key)
        return super()._take_over(key, row)


@pytest.mark.parametrize("ledger_type", [ReleasedBeforeRead, ReleasedBeforeTakeOver])
def test_row_vanishing_mid_claim_is_claimed_afresh(
    make_ledger: LedgerFactory, storage_connection_string: str, ledger_type: type[TableEventLedger]
) -> None:
    key = fresh_key()
    assert make_ledger().claim(key)
    racing = ledger_type(
        table_client=make_table_client(storage_connection_string, table_name=DEFAULT_TABLE), clock=after_lease
    )
    with racing:
        assert racing.claim(key) is True
    assert make_ledger().claim(key) is False


def closed_port_connection_string(azurite: Azurite) -> str:
    (port,) = free_ports(1)  # nothing listens there once the probe socket is closed
    return re.sub(r"127\.0\.0\.1:\d+/", f"127.0.0.1:{port}/", azurite.connection_string)


@pytest.mark.parametrize("operation", ["claim", "complete", "release"])
def test_unreachable_storage_raises(azurite: Azurite, operation: str) -> None:
    ledger = TableEventLedger(
        table_client=make_table_client(closed_port_connection_string(azurite), table_name=DEFAULT_TABLE)
    )
    with ledger, ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(getattr(ledger, operation), fresh_key())
        with pytest.raises(ServiceRequestError):
            future.result(timeout=HANG_GUARD_SECONDS)


def test_unreachable_storage_fails_construction(azurite: Azurite) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        connect = pool.submit(TableEventLedger.from_connection_string, closed_port_connection_string(azurite))
        with pytest.raises(AzureError):
            connect.result(timeout=HANG_GUARD_SECONDS)


def test_claims_survive_an_azurite_restart(tmp_path: Path) -> None:
    key = fresh_key()
    with Azurite(location=tmp_path / "azurite") as emulator:
        first = TableEventLedger.from_connection_string(emulator.connection_string)
        with first:
            assert first.claim(key)
            first.complete(key)
        emulator.restart()
        second = TableEventLedger.from_connection_string(emulator.connection_string)
        with second:
            assert second.claim(key) is False
