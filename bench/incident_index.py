"""Incident index: the minute timer's and App Home's reads at 1,000 and 100,000 stored incidents.

Each size gets fresh tables on one Azurite: the closed incidents are loaded directly with
azure-data-tables, one entity-group transaction of 100 rows per group partition (1,000 groups of
100 at the large size), then 20 live incidents are opened through `TableIncidentStore`. Measured
(median of `ROUNDS`): the timer's reads, `flush_pending_audit` + `due` + `live(states=...)` for
redrive and for catch-up, and App Home's `live()`. Also counted: the entities read per timer tick,
and, for contrast, one `list(states=[approved])` (the old scan). Budget: the 100k/1k ratio of the
timer's read time stays under 1.5 (it must not grow with the closed incidents).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, cast

from azure.data.tables import TableClient

from azurite import Azurite
from bench.environment import TESTS  # noqa: F401 - puts tests/ on sys.path
from remediation.incidents import IncidentState, new_incident_id, open_incident, reject
from remediation.store.incident_rows import entity_of, tag
from remediation.store.incidents import TableIncidentStore
from test_incidents import DIRECTORY, T0, make_plan, make_signal

SIZES = (1_000, 100_000)
LIVE = 20
PER_PARTITION = 100
ROUNDS = 15
LOADERS = 4
RATIO_BUDGET = 1.5
_TIMER_STATES = (IncidentState.APPROVED, IncidentState.EXECUTING, IncidentState.SUCCEEDED)


def run() -> dict[str, Any]:
    with Azurite() as azurite:
        sizes = {f"{size}": _measure(azurite.connection_string, size) for size in SIZES}
    small, large = (sizes[f"{size}"] for size in SIZES)
    return {
        "sizes": sizes,
        "timer_ratio": round(large["timer_ms"] / small["timer_ms"], 2),
        "home_ratio": round(large["home_ms"] / small["home_ms"], 2),
        "scan_ratio": round(large["old_scan_ms"] / small["old_scan_ms"], 1),
    }


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    small, large = (result["sizes"][f"{size}"] for size in SIZES)
    ok = result["timer_ratio"] <= RATIO_BUDGET and result["home_ratio"] <= RATIO_BUDGET
    return [
        ("incident_index timer reads", f"{small['timer_ms']} ms at 1k, {large['timer_ms']} ms at 100k", "", ""),
        ("incident_index App Home read", f"{small['home_ms']} ms at 1k, {large['home_ms']} ms at 100k", "", ""),
        (
            "incident_index entities/tick",
            f"{small['entities_per_tick']} at 1k, {large['entities_per_tick']} at 100k",
            "",
            "",
        ),
        (
            "incident_index 100k/1k ratio",
            f"timer {result['timer_ratio']}, App Home {result['home_ratio']}",
            f"<= {RATIO_BUDGET}",
            "ok" if ok else "OVER",
        ),
        ("incident_index old scan (contrast)", f"{small['old_scan_ms']} -> {large['old_scan_ms']} ms", "", ""),
    ]


def _measure(conn_str: str, size: int) -> dict[str, Any]:
    name = f"incidents{size}"
    store = TableIncidentStore.from_connection_string(conn_str, table_name=name, audit_table=f"audit{size}")
    started = time.perf_counter()
    _load_closed(store._table, closed=size - LIVE)
    for n in range(LIVE):
        store.open_or_fold(plan=make_plan(group_key=f"live-{n}"), signal=make_signal(), now=T0 - timedelta(hours=1))
    loaded_s = time.perf_counter() - started
    now = T0 + timedelta(days=1)

    def timer() -> None:
        store.flush_pending_audit()
        store.due(now)
        store.live(states=_TIMER_STATES)
        store.live(states=[s for s in IncidentState if s not in (IncidentState.SUCCEEDED,)])

    counted = _Counting(store)
    timer_ms, home_ms = _median_ms(timer), _median_ms(store.live)
    counted.start()
    timer()
    read = counted.stop()
    scan = time.perf_counter()
    store.list(states=[IncidentState.APPROVED])
    old_scan_ms = round((time.perf_counter() - scan) * 1000, 1)
    assert len(store.live()) == LIVE and len(store.due(now)) == LIVE
    store.close()
    return {
        "stored": size,
        "live": LIVE,
        "load_s": round(loaded_s, 1),
        "timer_ms": timer_ms,
        "home_ms": home_ms,
        "entities_per_tick": read,
        "old_scan_ms": old_scan_ms,
    }


def _load_closed(table: TableClient, *, closed: int) -> None:
    """`closed` rejected incidents, `PER_PARTITION` per group partition, one transaction each."""
    groups = [(g, min(PER_PARTITION, closed - g * PER_PARTITION)) for g in range(-(-closed // PER_PARTITION))]

    def load(group: tuple[int, int]) -> None:
        plan = make_plan(group_key=f"closed-{group[0]}")
        batch = []
        for n in range(group[1]):
            at = T0 - timedelta(days=30, seconds=n)
            incident = open_incident(
                plan=plan, signal=make_signal(), now=at, incident_id=new_incident_id(at) + tag(plan.group_key)
            )
            batch.append(("create", entity_of(reject(incident, user="U_BOB", at=at, directory=DIRECTORY))))
        _submit(table, batch)

    with ThreadPoolExecutor(max_workers=LOADERS) as pool:
        list(pool.map(load, groups))


def _submit(table: TableClient, batch: list[Any], *, attempts: int = 3) -> None:
    """One transaction, sent again when the connection drops: Azurite under load resets one now and
    then, and the SDK does not retry a POST. A retry that finds its rows created means one landed."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    from azure.data.tables import TableTransactionError

    for attempt in range(attempts):
        try:
            table.submit_transaction(batch)
            return
        except (ServiceRequestError, ServiceResponseError):
            if attempt == attempts - 1:
                raise
        except TableTransactionError as refused:
            if attempt and getattr(refused, "error_code", None) == "EntityAlreadyExists":
                return
            raise


def _median_ms(read: Any) -> float:
    times = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        read()
        times.append(time.perf_counter() - began)
    return round(statistics.median(times) * 1000, 1)


class _Counting:
    """Counts the entities the store's two table clients return while started."""

    def __init__(self, store: TableIncidentStore) -> None:
        self._store, self._read = store, Counter[str]()
        self._originals = (store._table, store._index)

    def start(self) -> None:
        self._store._table = cast(TableClient, _CountingClient(self._originals[0], self._read))
        self._store._index = cast(TableClient, _CountingClient(self._originals[1], self._read))

    def stop(self) -> int:
        self._store._table, self._store._index = self._originals
        return sum(self._read.values())


class _CountingClient:
    def __init__(self, inner: TableClient, read: Counter[str]) -> None:
        self._inner, self._counter = inner, read

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def query_entities(self, *args: Any, **kwargs: Any) -> list[Any]:
        found = list(self._inner.query_entities(*args, **kwargs))
        self._counter["queried"] += len(found)
        return found

    def get_entity(self, *args: Any, **kwargs: Any) -> Any:
        self._counter["got"] += 1
        return self._inner.get_entity(*args, **kwargs)
