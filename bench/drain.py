"""Drain: a node with 200 pods on kmock, evicted with bounded concurrency against one at a time.

The `kubernetes.drain_node` action's apply, called on the handler as the executor calls it (the
tests' harness from `tests/kube_api.py`: kubeconfig to kmock on loopback, fake time for PDB
back-offs, none of which happen here). kmock answers each eviction after `EVICTION_DELAY` seconds
(the emulator's `eviction_delay`), as an API server takes a moment per eviction, so concurrency
shows. Every run starts from the same state (200 pods on n1, four schedulable nodes) after an
untimed preview of the drain (the client's first connection and lazy imports); the serial and the
concurrent drain alternate, `REPEATS` times each, and the median of each counts (not the best: a
best-of hides how the figure varies, and the runs are listed beside it).

Figures: the median seconds of the serial and of the concurrent drain, their ratio (the speedup,
against an ideal of `CONCURRENCY`), the most evictions in flight at once over the concurrent runs,
and the CPU the concurrent drain takes per eviction (client and kmock: one process). No time budget:
the eviction delay is the emulator's; evictions in flight must stay within the concurrency.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.environment import forget_requests  # also puts tests/ on sys.path for kube_api

POD_COUNT = 200
EVICTION_DELAY = 0.005
CONCURRENCY = 10
REPEATS = 3


def run() -> dict[str, Any]:
    from kube_api import KubeServer

    server = KubeServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-drain-") as scratch:
            runs = [_drain(server, Path(scratch), max_concurrency=c) for _ in range(REPEATS) for c in (1, CONCURRENCY)]
    finally:
        server.stop()
    serial = [r for r in runs if r["max_concurrency"] == 1]
    bounded = [r for r in runs if r["max_concurrency"] == CONCURRENCY]
    serial_s = statistics.median(r["seconds"] for r in serial)
    concurrent_s = statistics.median(r["seconds"] for r in bounded)
    concurrent_cpu_s = statistics.median(r["cpu_seconds"] for r in bounded)
    return {
        "pods": POD_COUNT,
        "eviction_delay_ms": EVICTION_DELAY * 1000,
        "repeats": REPEATS,
        "serial_s": round(serial_s, 3),
        "concurrent_s": round(concurrent_s, 3),
        "serial_runs_s": [r["seconds"] for r in serial],
        "concurrent_runs_s": [r["seconds"] for r in bounded],
        "concurrency": CONCURRENCY,
        "speedup": round(serial_s / concurrent_s, 2),
        "max_in_flight": max(r["max_in_flight"] for r in bounded),
        "concurrent_cpu_s": round(concurrent_cpu_s, 3),
        "cpu_ms_per_eviction": round(concurrent_cpu_s / POD_COUNT * 1000, 2),
        "ideal_speedup": CONCURRENCY,
        "check": "ok" if all(r["evicted"] == POD_COUNT for r in runs) else f"evicted {[r['evicted'] for r in runs]}",
    }


def _drain(server: Any, scratch: Path, *, max_concurrency: int) -> dict[str, Any]:
    from kube_api import CLUSTER, NODES, PODS, make_harness, node, pod
    from remediation.actions.kubernetes import DrainNodeParams

    emulator = server.emulator
    for name in ("n1", "n2", "n3", "n4"):
        emulator.put(NODES, node(name))
    for i in range(POD_COUNT):
        emulator.put(PODS, pod(f"web-{i}", node_name="n1"))
    emulator.eviction_delay = EVICTION_DELAY
    harness = make_harness(server, scratch)
    params = DrainNodeParams(cluster=CLUSTER, node="n1", max_concurrency=max_concurrency)
    harness.handler.preview("kubernetes.drain_node", params, harness.ctx())
    forget_requests(server)
    emulator.max_in_flight = 0
    started, cpu = time.perf_counter(), time.process_time()
    harness.handler.apply("kubernetes.drain_node", params, harness.ctx(incident=f"inc-drain-{max_concurrency}"))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    left = sum(1 for i in range(POD_COUNT) if emulator.get(PODS, "payments", f"web-{i}") is not None)
    return {
        "max_concurrency": max_concurrency,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),  # the client's and kmock's, one process
        "evicted": POD_COUNT - left,
        "max_in_flight": emulator.max_in_flight,
    }


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    figure = (
        f"median {result['serial_s']} s serial, {result['concurrent_s']} s at {result['concurrency']} "
        f"({result['speedup']}x)"
    )
    where = f"none ({result['pods']} pods, {result['eviction_delay_ms']:.0f} ms each)"
    in_flight_ok = result["max_in_flight"] <= result["concurrency"]
    return [
        ("drain", figure, where, "-" if result["check"] == "ok" else "CHECK FAILED: " + result["check"]),
        (
            f"  runs (x{result['repeats']}, alternating)",
            f"serial {result['serial_runs_s']} s, at {result['concurrency']} {result['concurrent_runs_s']} s",
            "",
            "",
        ),
        (
            "  evictions in flight (max)",
            str(result["max_in_flight"]),
            f"<= {result['concurrency']}",
            "ok" if in_flight_ok else "OVER",
        ),
        (
            f"  CPU at {result['concurrency']} (client + kmock)",
            f"{result['concurrent_cpu_s']} s, {result['cpu_ms_per_eviction']} ms per eviction",
            "",
            "",
        ),
    ]
