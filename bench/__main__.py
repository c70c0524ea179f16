"""`make bench`: run every benchmark once, print a table, write bench/results/latest.json."""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import cold_start, intake_throughput

RESULTS = Path(__file__).parent / "results" / "latest.json"


def main() -> int:
    results = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": _cpus()},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cold_start": cold_start.run(),
        "intake_throughput": intake_throughput.run(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'benchmark':<22} {'figure':<34} {'budget':<24} verdict")
    for row in cold_start.rows(results["cold_start"]) + intake_throughput.rows(results["intake_throughput"]):
        print(f"{row[0]:<22} {row[1]:<34} {row[2]:<24} {row[3]}")
    print(f"\nwritten to {RESULTS}")
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
