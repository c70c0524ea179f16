"""`remediate`: the engine from the command line, with no Azure, Slack or network at all.

`remediate simulate FILE...` runs intake on event files of any supported shape with an in-memory
ledger and prints what came out. Exit codes: 0 nothing rejected, 1 something rejected, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from remediation.intake import Intake, IntakeReport, MemoryLedger
from remediation.signals import Signal, decode_batch, parse_any

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


class _Collector:
    def __init__(self) -> None:
        self.signals: list[Signal] = []

    def handle(self, signal: Signal) -> None:
        self.signals.append(signal)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remediate", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does to stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    simulate = commands.add_parser("simulate", help="normalise and dedup event files, offline")
    simulate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    simulate.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s"
    )
    return _simulate(args.files, output=args.format)


def _simulate(files: list[Path], *, output: str) -> int:
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        print(f"remediate simulate: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    collector = _Collector()
    intake = Intake(ledger=MemoryLedger(), sink=collector)
    rejected: list[dict[str, Any]] = []
    skipped = duplicates = 0
    for path in files:
        report = intake.process(decode_batch(path.read_bytes(), parse_any), trigger="simulate")
        rejected += _rejections(path, report)
        skipped += len(report.skipped)
        duplicates += len(report.duplicates)
    document = {
        "signals": [signal.summary() for signal in collector.signals],
        "rejected": rejected,
        "skipped": skipped,
        "duplicates": duplicates,
    }
    print(json.dumps(document, indent=2) if output == "json" else _text(document))
    return EXIT_REJECTED if rejected else EXIT_OK


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
    for problem in document["rejected"]:
        where = problem["file"] + (f"[{problem['index']}]" if problem["index"] is not None else "")
        lines.append(f"rejected      {where}: {problem['reason']}")
    lines.append(
        f"{len(document['signals'])} signal(s), {len(document['rejected'])} rejected, "
        f"{document['skipped']} skipped, {document['duplicates']} duplicate(s)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
