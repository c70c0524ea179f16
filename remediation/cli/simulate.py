"""`remediate simulate FILE...`: intake and playbooks on event files, offline and in memory.

Prints what came out: the Signals, what was rejected or skipped, and for each Signal the Plans its
playbooks make (steps with resolved parameters, approval policy, what is missing).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from remediation.cli.common import EXIT_FOUND, EXIT_OK, EXIT_USAGE
from remediation.intake import Intake, IntakeReport, MemoryLedger
from remediation.signals import Signal, decode_batch, parse_any


class _Collector:
    def __init__(self) -> None:
        self.signals: list[Signal] = []

    def handle(self, signal: Signal) -> None:
        self.signals.append(signal)


def run(files: list[Path], *, output: str, playbooks_dir: Path) -> int:
    from remediation.playbooks import PlaybookErrors, load_playbooks

    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        print(f"remediate simulate: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        playbooks = load_playbooks(playbooks_dir)
    except PlaybookErrors as problems:
        print(f"remediate simulate: the playbooks in {playbooks_dir} are invalid:\n{problems}", file=sys.stderr)
        return EXIT_USAGE
    collector = _Collector()
    intake = Intake(ledger=MemoryLedger(), sink=collector)
    document: dict[str, Any] = {"signals": [], "rejected": [], "skipped": 0, "duplicates": 0, "incidents": []}
    for path in files:
        report = intake.process(decode_batch(path.read_bytes(), parse_any), trigger="simulate")
        document["rejected"] += _rejections(path, report)
        document["skipped"] += len(report.skipped)
        document["duplicates"] += len(report.duplicates)
    for signal in collector.signals:
        document["signals"].append(signal.summary())
        plans = playbooks.match(signal)
        document["incidents"] += [{"signal": signal.id, **plan.to_json()} for plan in plans]
        if not plans:
            document["incidents"].append({"signal": signal.id, "playbook": None})
    print(json.dumps(document, indent=2) if output == "json" else _text(document))
    return EXIT_FOUND if document["rejected"] else EXIT_OK


def _rejections(path: Path, report: IntakeReport) -> list[dict[str, Any]]:
    return [
        {"file": str(path), "index": problem.index, "event_id": problem.event_id, "reason": problem.reason}
        for problem in report.rejected
    ]


def _text(document: dict[str, Any]) -> str:
    lines = []
    for signal in document["signals"]:
        targets = ", ".join(f"{key}={value}" for key, value in signal["targets"].items() if value)
        lines.append(f"{signal['severity']:<13} {signal['type']}  {signal['id']}")
        lines.append(f"{'':13} {targets or '(no targets)'}")
        lines += _plan_lines(signal["id"], document["incidents"])
    for problem in document["rejected"]:
        where = problem["file"] + (f"[{problem['index']}]" if problem["index"] is not None else "")
        lines.append(f"rejected      {where}: {problem['reason']}")
    lines.append(
        f"{len(document['signals'])} signal(s), {len(document['rejected'])} rejected, "
        f"{document['skipped']} skipped, {document['duplicates']} duplicate(s)"
    )
    return "\n".join(lines)


def _plan_lines(signal_id: str, incidents: list[dict[str, Any]]) -> list[str]:
    lines = []
    for plan in (entry for entry in incidents if entry["signal"] == signal_id):
        if plan["playbook"] is None:
            lines.append(f"{'':13} no playbook fires")
            continue
        approval = plan["approval"]
        lines.append(
            f"{'':13} playbook {plan['playbook']}: approval {approval['mode']}"
            f" ({approval['min_approvals']} of {', '.join(approval['approvers']) or 'nobody'})"
        )
        for step in plan["steps"]:
            params = ", ".join(f"{key}={value}" for key, value in step["params"].items())
            lines.append(f"{'':15} {step['action']}({params})")
        for gap in plan["missing"]:
            lines.append(f"{'':15} needs input: step {gap['step'] + 1} {gap['param']} (from {gap['field']})")
    return lines
