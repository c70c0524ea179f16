"""Cold start: `import function_app` in a fresh interpreter against `import azure.functions` alone."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNS = 10
BUDGET_RATIO = 1.5
_PROBE = (
    "import resource, time; t = time.perf_counter(); import {module}; "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def _measure(module: str) -> tuple[float, float]:
    """Median wall seconds and median peak RSS (MiB) of importing `module`, fresh each run."""
    walls, rss = [], []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(module=module)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.split()
        walls.append(float(out[0]))
        rss.append(int(out[1]) / 1024)
    return statistics.median(walls), statistics.median(rss)


def run() -> dict[str, Any]:
    base_wall, base_rss = _measure("azure.functions")
    app_wall, app_rss = _measure("function_app")
    return {
        "runs": RUNS,
        "baseline_ms": round(base_wall * 1000, 1),
        "function_app_ms": round(app_wall * 1000, 1),
        "ratio": round(app_wall / base_wall, 2),
        "baseline_rss_mib": round(base_rss, 1),
        "function_app_rss_mib": round(app_rss, 1),
        "budget_ratio": BUDGET_RATIO,
    }


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    figure = f"{result['function_app_ms']} ms vs {result['baseline_ms']} ms ({result['ratio']}x)"
    rss = f"{result['function_app_rss_mib']} vs {result['baseline_rss_mib']} MiB"
    verdict = "ok" if result["ratio"] <= BUDGET_RATIO else "OVER"
    return [
        ("cold start (median)", figure, f"<= {BUDGET_RATIO}x baseline", verdict),
        ("cold start peak RSS", rss, "", ""),
    ]
