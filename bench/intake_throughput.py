"""Intake throughput: events per second through normalise + in-memory dedup + playbook match, on one
core, for a mixed corpus of every supported shape, against `json.loads` of the same bytes."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

from remediation.intake import Intake, MemoryLedger
from remediation.playbooks import DEFAULT_PLAYBOOKS_DIR, PlaybookSet, load_playbooks
from remediation.signals import Signal, decode_batch, parse_any

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
EVENTS = 10_000
BUDGET_EVENTS_PER_S = 20_000
BUDGET_RATIO = 5.0


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


def _timed(fn: Any, bodies: list[bytes]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        fn(bodies)
        best = min(best, time.perf_counter() - start)
    return best


_PLAYBOOKS = load_playbooks(DEFAULT_PLAYBOOKS_DIR)


def _intake(bodies: list[bytes]) -> None:
    intake = Intake(ledger=MemoryLedger(), sink=_Matcher(_PLAYBOOKS))
    for body in bodies:
        intake.process(decode_batch(body, parse_any), trigger="bench")


def _loads(bodies: list[bytes]) -> None:
    for body in bodies:
        json.loads(body)


def run() -> dict[str, Any]:
    import logging

    logging.getLogger("remediation").setLevel(logging.ERROR)
    bodies = corpus()
    intake_s, loads_s = _timed(_intake, bodies), _timed(_loads, bodies)
    return {
        "events": len(bodies),
        "events_per_s": round(len(bodies) / intake_s),
        "json_loads_events_per_s": round(len(bodies) / loads_s),
        "ratio_to_json_loads": round(intake_s / loads_s, 2),
        "budget_events_per_s": BUDGET_EVENTS_PER_S,
        "budget_ratio": BUDGET_RATIO,
    }


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    ok = result["events_per_s"] >= BUDGET_EVENTS_PER_S and result["ratio_to_json_loads"] <= BUDGET_RATIO
    return [
        (
            "intake throughput",
            f"{result['events_per_s']:,} ev/s ({result['ratio_to_json_loads']}x json.loads)",
            f">= {BUDGET_EVENTS_PER_S:,} ev/s, <= {BUDGET_RATIO}x",
            "ok" if ok else "OVER",
        )
    ]
