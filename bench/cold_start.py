"""Cold start: `import function_app` in a fresh interpreter against `import azure.functions` alone.

The two imports alternate, run by run, so a change in the machine's load hits both alike.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNS = 10
BUDGET_RATIO = 1.5
# Peak RSS from VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would report the benchmark
# process's own size (inherited through fork) whenever that is the larger.
_PROBE = (
    "import time; t = time.perf_counter(); import {module}; wall = time.perf_counter() - t; "
    "print(wall, next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))"
)


def _once(module: str) -> tuple[float, float]:
    """Wall seconds of importing `module` in a fresh interpreter, and its peak RSS (MiB) after."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return float(out[0]), int(out[1]) / 1024


def _medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(wall for wall, _ in samples), statistics.median(rss for _, rss in samples)


def run() -> dict[str, Any]:
    base: list[tuple[float, float]] = []
    app: list[tuple[float, float]] = []
    for _ in range(RUNS):
        base.append(_once("azure.functions"))
        app.append(_once("function_app"))
    (base_wall, base_rss), (app_wall, app_rss) = _medians(base), _medians(app)
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
