"""`make bench`: run every benchmark once, print a table, write bench/results/latest.json.

`python -m bench slack_ack drain` runs only the named ones and prints their table without touching
latest.json (a partial run would mix figures of two runs).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import (
    alert_storm,
    blast_radius,
    cold_start,
    drain,
    end_to_end,
    incident_index,
    intake_throughput,
    slack_ack,
)

RESULTS = Path(__file__).parent / "results" / "latest.json"
BENCHMARKS: dict[str, ModuleType] = {
    "cold_start": cold_start,
    "intake_throughput": intake_throughput,
    "slack_ack": slack_ack,
    "end_to_end": end_to_end,
    "alert_storm": alert_storm,
    "drain": drain,
    "incident_index": incident_index,
    "blast_radius": blast_radius,
}
COLUMNS = (34, 56, 28)


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    chosen = argv or list(BENCHMARKS)
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "when": datetime.now(UTC).isoformat(timespec="seconds")}
    seconds: dict[str, float] = {}
    for name in chosen:
        print(f"running {name}...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        results[name] = BENCHMARKS[name].run()
        seconds[name] = round(time.perf_counter() - began, 1)
    results["seconds"] = {**seconds, "total": round(time.perf_counter() - started, 1)}
    results["machine"]["load_average_after"] = [round(load, 2) for load in os.getloadavg()]
    print(table(results, chosen))
    if argv:
        print("\npartial run: bench/results/latest.json left as it was")
        return 0
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    return 0


def table(results: dict[str, Any], chosen: list[str]) -> str:
    header = ("benchmark", "figure", "budget", "verdict")
    lines = [_line(header), _line(tuple("-" * width for width in (*COLUMNS, 7)))]
    for name in chosen:
        lines += [_line(row) for row in BENCHMARKS[name].rows(results[name])]
    machine = results["machine"]
    lines.append(
        f"\n{machine['cpu']}, {machine['cpus']} CPUs, Python {machine['python']}; "
        f"load average {machine['load_average_before']} before, {machine['load_average_after']} after; "
        f"{results['seconds']['total']} s in all"
    )
    return "\n".join(lines)


def _line(row: tuple[str, ...]) -> str:
    cells = [cell.ljust(width) for cell, width in zip(row, COLUMNS, strict=False)]
    return " ".join([*cells, *row[len(COLUMNS) :]]).rstrip()


def machine() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cpus": len(os.sched_getaffinity(0)),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average_before": [round(load, 2) for load in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
