"""`remediate simulate FILE|DIR|-...`: intake and playbooks on event files, offline and in memory.

Each argument is a JSON file (one event or an array of events), a folder (its `*.json` files, not
its subfolders, in name order) or `-` (one such document from stdin). Prints what came out: the
Signals, what was rejected or skipped, and for each Signal the Plans its playbooks make (steps with
resolved parameters, approval policy, what is missing).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from remediation.blast_radius import headline
from remediation.blast_radius import offline as offline_blast_radius
from remediation.cli.common import EXIT_FOUND, EXIT_OK, EXIT_USAGE, not_a_folder
from remediation.intake import Handled, Intake, IntakeReport, MemoryLedger
from remediation.signals import Signal, decode_batch, parse_any

STDIN = Path("-")
STDIN_NAME = "<stdin>"
"""How rejections name the document read from stdin."""


class _Collector:
    def __init__(self) -> None:
        self.signals: list[Signal] = []

    def handle_all(self, signals: Sequence[Signal], *, handled: Handled) -> None:
        self.signals.extend(signals)
        handled(signals)


def run(files: list[Path], *, output: str, playbooks_dir: Path) -> int:
    from remediation.playbooks import PlaybookErrors, load_playbooks

    inputs, problems = _inputs(files)
    for problem in problems:
        print(f"remediate simulate: {problem}", file=sys.stderr)
    if problems:
        return EXIT_USAGE
    if not playbooks_dir.is_dir():
        print(not_a_folder("simulate", playbooks_dir), file=sys.stderr)
        return EXIT_USAGE
    try:
        playbooks = load_playbooks(playbooks_dir)
    except PlaybookErrors as problems:
        print(f"remediate simulate: the playbooks in {playbooks_dir} are invalid:\n{problems}", file=sys.stderr)
        return EXIT_USAGE
    collector = _Collector()
    intake = Intake(ledger=MemoryLedger(), sink=collector)
    document: dict[str, Any] = {"signals": [], "rejected": [], "skipped": 0, "duplicates": 0, "incidents": []}
    for name, path in inputs:
        body = sys.stdin.buffer.read() if path is None else path.read_bytes()
        report = intake.process(decode_batch(body, parse_any), trigger="simulate")
        document["rejected"] += _rejections(name, report)
        document["skipped"] += len(report.skipped)
        document["duplicates"] += len(report.duplicates)
    for signal in collector.signals:
        document["signals"].append(signal.summary())
        if (blast := offline_blast_radius(signal.summary())) is not None:  # offline: the digest, not measured
            document.setdefault("blast_radius", {})[signal.id] = blast
        plans = playbooks.match(signal)
        document["incidents"] += [{"signal": signal.id, **plan.to_json()} for plan in plans]
        if not plans:
            document["incidents"].append({"signal": signal.id, "playbook": None})
    print(json.dumps(document, indent=2) if output == "json" else _text(document))
    return EXIT_FOUND if document["rejected"] else EXIT_OK


def _inputs(arguments: list[Path]) -> tuple[list[tuple[str, Path | None]], list[str]]:
    """(name, file) per document to read, stdin as (STDIN_NAME, None); and what is wrong with the arguments."""
    inputs: list[tuple[str, Path | None]] = []
    problems: list[str] = []
    for argument in arguments:
        if argument == STDIN:
            if any(path is None for _, path in inputs):
                problems.append("- (stdin) can be read only once")
            inputs.append((STDIN_NAME, None))
        elif argument.is_dir():
            found = sorted(path for path in argument.glob("*.json") if path.is_file() and not path.name.startswith("."))
            if not found:
                problems.append(f"no .json file in the folder {argument}")
            inputs += [(str(path), path) for path in found]
        elif argument.is_file():
            inputs.append((str(argument), argument))
        else:
            problems.append(f"no such file or folder: {argument}")
    return inputs, problems


def _rejections(name: str, report: IntakeReport) -> list[dict[str, Any]]:
    return [
        {"file": name, "index": problem.index, "event_id": problem.event_id, "reason": problem.reason}
        for problem in report.rejected
    ]


def _text(document: dict[str, Any]) -> str:
    lines = []
    for signal in document["signals"]:
        targets = ", ".join(f"{key}={value}" for key, value in signal["targets"].items() if value)
        lines.append(f"{signal['severity']:<13} {signal['type']}  {signal['id']}")
        lines.append(f"{'':13} {targets or '(no targets)'}")
        if blast := document.get("blast_radius", {}).get(signal["id"]):
            lines.append(f"{'':13} where it runs: {headline(blast)}")
        lines += _plan_lines(signal["id"], document["incidents"])
    for problem in document["rejected"]:
        where = problem["file"] + (f"[{problem['index']}]" if problem["index"] is not None else "")
        lines.append(f"rejected      {where}: {problem['reason']}")
    planned = sum(entry["playbook"] is not None for entry in document["incidents"])
    lines.append(
        f"{len(document['signals'])} signal(s), {planned} incident(s) planned, {len(document['rejected'])} rejected, "
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
