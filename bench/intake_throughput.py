"""Intake throughput: events per second through normalise + in-memory dedup + playbook match, on one
core, for a mixed corpus of every supported shape, against `json.loads` of the same bytes.

One core: the measuring thread is pinned to one CPU (`os.sched_setaffinity`) for the timed runs
and unpinned after, so the figure does not depend on how many cores the machine has. The CPU is
the one that was idlest over a short sample of /proc/stat: pinned to a CPU that another process
keeps busy, the figure would halve."""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from remediation.intake import Intake, MemoryLedger
from remediation.playbooks import DEFAULT_PLAYBOOKS_DIR, PlaybookSet, load_playbooks
from remediation.signals import Signal, decode_batch, parse_any

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
EVENTS = 10_000
BUDGET_EVENTS_PER_S = 20_000
BUDGET_RATIO = 5.0
REPEATS = 7
BUSY_ELSEWHERE = 0.2  # above this share, the other CPUs' load may have slowed ours (shared cores)


class _Matcher:
    """The intake's sink as the engine is, less the incident store: playbook matching only."""

    def __init__(self, playbooks: PlaybookSet) -> None:
        self._playbooks = playbooks
        self.plans = 0

    def handle(self, signal: Signal) -> None:
        self.plans += len(self._playbooks.match(signal))


def corpus() -> list[bytes]:
    """EVENTS bodies cycling through every fixture event, each with a unique id."""
    templates: list[Any] = []
    for path in sorted(SAMPLES.rglob("*.json")):
        document = json.loads(path.read_bytes())
        templates += document if isinstance(document, list) else [document]
    bodies = []
    for i in range(EVENTS):
        event = copy.deepcopy(templates[i % len(templates)])
        if isinstance(event, dict):
            for key in ("id", "SystemAlertId"):
                if key in event:
                    event[key] = f"{event[key]}-{i}"
        bodies.append(json.dumps(event).encode())
    return bodies


def _timed(bodies: list[bytes]) -> tuple[float, float, float]:
    """Best wall seconds of the intake and of json.loads over REPEATS interleaved runs (a passing
    slowdown of the machine hits both alike), and the share of the best intake run that the
    thread had the CPU."""
    best_intake, best_loads, share = float("inf"), float("inf"), 0.0
    for _ in range(REPEATS):
        start, cpu = time.perf_counter(), time.thread_time()
        _intake(bodies)
        wall = time.perf_counter() - start
        if wall < best_intake:
            best_intake, share = wall, (time.thread_time() - cpu) / wall
        start = time.perf_counter()
        _loads(bodies)
        best_loads = min(best_loads, time.perf_counter() - start)
    return best_intake, best_loads, share


_PLAYBOOKS = load_playbooks(DEFAULT_PLAYBOOKS_DIR)


def _intake(bodies: list[bytes]) -> None:
    intake = Intake(ledger=MemoryLedger(), sink=_Matcher(_PLAYBOOKS))
    for body in bodies:
        intake.process(decode_batch(body, parse_any), trigger="bench")


def _loads(bodies: list[bytes]) -> None:
    for body in bodies:
        json.loads(body)


@contextmanager
def _one_core() -> Iterator[dict[str, Any]]:
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


@contextmanager
def _quiet() -> Iterator[None]:
    """Intake's per-event INFO logs off during the timing (the budget is for the work, not the logs)."""
    remediation = logging.getLogger("remediation")
    level = remediation.level
    remediation.setLevel(logging.ERROR)
    try:
        yield
    finally:
        remediation.setLevel(level)


def run() -> dict[str, Any]:
    bodies = corpus()
    with _quiet(), _one_core() as placement:
        intake_s, loads_s, share = _timed(bodies)
    return {
        "events": len(bodies),
        "pinned_cpu": placement["cpu"],
        "cpu_share": round(share, 2),
        "other_cpus_busy": placement["others_busy"],
        "events_per_s": round(len(bodies) / intake_s),
        "json_loads_events_per_s": round(len(bodies) / loads_s),
        "ratio_to_json_loads": round(intake_s / loads_s, 2),
        "budget_events_per_s": BUDGET_EVENTS_PER_S,
        "budget_ratio": BUDGET_RATIO,
    }


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    ok = result["events_per_s"] >= BUDGET_EVENTS_PER_S and result["ratio_to_json_loads"] <= BUDGET_RATIO
    busy = result.get("other_cpus_busy")
    verdict = "ok" if ok else "OVER" + (" (other CPUs busy)" if busy is not None and busy > BUSY_ELSEWHERE else "")
    return [
        (
            "intake throughput",
            f"{result['events_per_s']:,} ev/s ({result['ratio_to_json_loads']}x json.loads)",
            f">= {BUDGET_EVENTS_PER_S:,} ev/s, <= {BUDGET_RATIO}x",
            verdict,
        ),
        (
            "  pinned CPU, others",
            f"CPU {result['pinned_cpu']} ours {result['cpu_share']:.0%} of the time; others "
            + (f"{busy:.0%} busy" if busy is not None else "not sampled"),
            "",
            "",
        ),
    ]
