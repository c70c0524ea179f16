"""What the figures are read against: the machine, the storage floor on the same Azurite, one quiet core.

Neighbours: `bench.intake_throughput` and `bench.alert_storm` divide their times by the storage floor
measured here, in the same run and on the same Azurite, so a slower machine or a busier emulator
moves both sides of the ratio; `bench.intake_throughput` times its CPU figure on `one_core`;
`bench.__main__` stamps every benchmark's result with `machine()`.

The storage floor is two figures, each the median of several samples taken between the measured
work (so a passing slowdown hits both alike):
- T100: one entity-group transaction of 100 creates in one partition (azure-data-tables
  `TableClient.submit_transaction`), the cheapest way to write 100 rows;
- RT: one round trip, a `get_entity` of one existing row.
`per_batch_100_ms` is what a batch of 100 distinct alerts folding into one incident cannot do
without: claim all 100 and complete all 100 in transactions (2 x T100), read the group's pointer
and the incident, write the incident, enqueue the Slack job (4 x RT).
"""

from __future__ import annotations

import itertools
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TABLE = "benchfloor"
ROWS_PER_TRANSACTION = 100
TRANSACTIONS_PER_BATCH = 2  # claim all, complete all
ROUND_TRIPS_PER_BATCH = 4  # group pointer read, incident read, incident write, Slack outbox enqueue


def machine() -> dict[str, Any]:
    """The CPU model, the CPUs this process may use, and the Python: what every figure was measured on."""
    return {
        "cpu": _cpu_model(),
        "cpus": len(os.sched_getaffinity(0)),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def machine_line(described: dict[str, Any]) -> str:
    return f"{described['cpu']}, {described['cpus']} CPUs, Python {described['python']}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


class StorageFloor:
    """Samples of T100 and RT (milliseconds) on one Azurite, taken by `sample()` between measurements."""

    def __init__(self, connection_string: str) -> None:
        from azure.data.tables import TableClient

        self.t100_ms: list[float] = []
        self.rt_ms: list[float] = []
        self._table = TableClient.from_connection_string(connection_string, TABLE)
        self._partitions = itertools.count()

    def __enter__(self) -> StorageFloor:
        self._table.create_table()
        partition = self._transaction()  # untimed: the connection, the table's first partition
        self._table.get_entity(partition, _row(0))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._table.close()

    def sample(self, *, round_trips: int = 3) -> None:
        """One T100 and `round_trips` RTs, added to the samples."""
        started = time.perf_counter()
        partition = self._transaction()
        self.t100_ms.append((time.perf_counter() - started) * 1000)
        for row in range(round_trips):
            started = time.perf_counter()
            self._table.get_entity(partition, _row(row))
            self.rt_ms.append((time.perf_counter() - started) * 1000)

    def _transaction(self) -> str:
        """100 creates in a fresh partition, each row shaped like the events ledger's claim; the partition."""
        partition = f"p{next(self._partitions)}"
        now = datetime.now(UTC)
        rows = [
            {
                "PartitionKey": partition,
                "RowKey": _row(row),
                "EventId": _row(row),
                "Status": "claimed",
                "ClaimedAt": now,
            }
            for row in range(ROWS_PER_TRANSACTION)
        ]
        self._table.submit_transaction([("create", row) for row in rows])
        return partition

    @property
    def t100(self) -> float:
        return statistics.median(self.t100_ms)

    @property
    def rt(self) -> float:
        return statistics.median(self.rt_ms)

    @property
    def per_batch_100_ms(self) -> float:
        """2 x T100 + 4 x RT: the storage one batch of 100 alerts folding into one incident needs."""
        return TRANSACTIONS_PER_BATCH * self.t100 + ROUND_TRIPS_PER_BATCH * self.rt

    def summary(self) -> dict[str, Any]:
        return {
            "t100_ms": round(self.t100, 1),
            "rt_ms": round(self.rt, 2),
            "per_batch_100_ms": round(self.per_batch_100_ms, 1),
            "definition": f"{TRANSACTIONS_PER_BATCH} x T100 + {ROUND_TRIPS_PER_BATCH} x RT",
            "t100_samples": len(self.t100_ms),
            "rt_samples": len(self.rt_ms),
        }


def _row(index: int) -> str:
    """A RowKey as long as a Defender alert id."""
    return f"2517538088322968242_bench-floor-{index:04d}-0e4f-4b1c-9a7e"


@contextmanager
def one_core() -> Iterator[dict[str, Any]]:
    """Pin the calling thread (pid 0 is the calling thread on Linux) to the idlest CPU.

    Yields a dict that holds the CPU, and after the block how busy the other CPUs were meanwhile:
    on a VM two vCPUs may be one core's hyperthreads, so a neighbour's load slows the pinned
    thread even though it keeps its CPU the whole time."""
    allowed = os.sched_getaffinity(0)
    cpu = _idlest(allowed)
    os.sched_setaffinity(0, {cpu})
    placement: dict[str, Any] = {"cpu": cpu}
    before = _cpu_ticks()
    try:
        yield placement
    finally:
        os.sched_setaffinity(0, allowed)
        after = _cpu_ticks()
        others = [c for c in allowed if c != cpu and c in before and c in after]
        idle = sum(after[c][0] - before[c][0] for c in others)
        total = sum(after[c][1] - before[c][1] for c in others)
        placement["others_busy"] = round(1 - idle / total, 2) if total else None


def _cpu_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU: (idle + iowait ticks, all ticks) from /proc/stat; empty where it cannot be read."""
    ticks = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            values = [int(value) for value in fields]
            ticks[int(name[3:])] = (values[3] + values[4], sum(values[:8]))
    return ticks


def _idlest(cpus: set[int], *, sample_s: float = 0.3) -> int:
    """The CPU of `cpus` with the most idle time over `sample_s`; ties go to the highest (CPU 0
    takes most interrupts)."""
    before = _cpu_ticks()
    time.sleep(sample_s)
    after = _cpu_ticks()
    idle = {cpu: after[cpu][0] - before[cpu][0] for cpu in cpus if cpu in before and cpu in after}
    return max(cpus, key=lambda cpu: (idle.get(cpu, 0), cpu))
