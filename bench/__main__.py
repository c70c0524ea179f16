"""`make bench`: run every benchmark once, print a table, write bench/results/latest.json.

`python -m bench slack_ack drain` runs only the named ones and prints their table without touching
latest.json (a partial run would mix figures of two runs).

How to read the table: one row group per benchmark, its headline row first; "budget" is what the
figure must stay within, and the verdict says `ok`, `OVER`, `-` (no budget: the figure is for
reading) or `CHECK FAILED` (the app did the wrong thing, whatever the time). Times are ratios to a
floor measured in the same run wherever a floor exists, so a slower or busier machine moves both
sides; the machine line (CPU model, CPUs, Python) is printed first and stored in every result.
- cold_start: `import function_app` <= 1.5x `import azure.functions`, and the first event's whole
  process <= 3x the baseline process (bench/cold_start.py says how).
- intake_throughput: through `defender_alerts_eventhub` on Azurite, a batch of 100 alerts folding
  into one incident, p50 <= 2x the storage floor per batch of 100 (2 x T100 + 4 x RT: T100 one
  entity-group transaction of 100 creates, RT one `get_entity`, medians on the same Azurite);
  batch of 1 has no budget. The CPU cost of parsing (logs at INFO) <= 15x `json.loads` of the same
  bytes, on one pinned core.
- slack_ack: p99 <= 250 ms for Approve clicks, for Reject clicks, for all 1,000 clicks, and for
  Approve clicks while Slack answers every call 429.
- alert_storm: 2,000 alerts of one incident: 1 incident, 1 post, <= 10 chat.update with >= 0.95 s
  between two, the final message shows exactly 2,000 occurrences, <= 2 s after the last alert was
  absorbed; absorbed <= 3x its floor, 20 x (2 x T100 + 4 x RT).
- drain: no budget (median serial and concurrent seconds); evictions in flight <= the concurrency.
- end_to_end, blast_radius: no budget; their checks must hold.
- incident_index: the timer's and App Home's reads at 100,000 incidents <= 1.5x those at 1,000.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
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
from bench.floor import machine, machine_line

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
COLUMNS = (36, 60, 28)


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    chosen = argv or list(BENCHMARKS)
    started = time.perf_counter()
    described = machine()
    print(machine_line(described), file=sys.stderr, flush=True)
    results: dict[str, Any] = {
        "machine": {**described, "load_average_before": _load_average()},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    seconds: dict[str, float] = {}
    for name in chosen:
        print(f"running {name}...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        results[name] = {**_run(name), "machine": {key: described[key] for key in ("cpu", "cpus", "python")}}
        seconds[name] = round(time.perf_counter() - began, 1)
    results["seconds"] = {**seconds, "total": round(time.perf_counter() - started, 1)}
    results["machine"]["load_average_after"] = _load_average()
    print(table(results, chosen))
    failed = 1 if any("error" in results[name] for name in chosen) else 0
    if argv:
        print("\npartial run: bench/results/latest.json left as it was")
        return failed
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    return failed


def _run(name: str) -> dict[str, Any]:
    """The benchmark's result; one that raised is recorded as such and the others still run."""
    try:
        result: dict[str, Any] = BENCHMARKS[name].run()
    except Exception as problem:
        traceback.print_exc()
        return {"error": f"{type(problem).__name__}: {problem}"[:300]}
    return result


def table(results: dict[str, Any], chosen: list[str]) -> str:
    machine = results["machine"]
    header = ("benchmark", "figure", "budget", "verdict")
    lines = [f"machine: {machine_line(machine)}\n", _line(header), _line(tuple("-" * width for width in (*COLUMNS, 7)))]
    for name in chosen:
        result = results[name]
        rows = [(name, result["error"][:60], "", "FAILED")] if "error" in result else BENCHMARKS[name].rows(result)
        lines += [_line(row) for row in rows]
    lines.append(
        f"\nload average {machine['load_average_before']} before, {machine['load_average_after']} after; "
        f"{results['seconds']['total']} s in all"
    )
    return "\n".join(lines)


def _line(row: tuple[str, ...]) -> str:
    cells = [cell.ljust(width) for cell, width in zip(row, COLUMNS, strict=False)]
    return " ".join([*cells, *row[len(COLUMNS) :]]).rstrip()


def _load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
