"""`remediate`: the engine from the command line, the same engine the Function App runs.

Commands: `simulate` (offline: normalise, dedup and plan event files), `playbooks check` (validate
a playbook folder), `audit verify` (check the audit hash chains in the configured storage).
Exit codes (`remediation.cli.common`): 0 fine, 1 something was found (a rejected event, an invalid
playbook, a broken chain), 2 a usage or settings error, 3 storage unreachable or refusing us.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from remediation.cli import audit, playbooks, simulate
from remediation.settings import DEFAULT_PLAYBOOKS_DIR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remediate", description="Remediation engine for AKS and ACR events.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("simulate", help="normalise, dedup and plan event files, offline")
    sim.add_argument("files", nargs="+", type=Path, metavar="FILE")
    sim.add_argument("--format", choices=("text", "json"), default="text")
    sim.add_argument("--playbooks", type=Path, default=DEFAULT_PLAYBOOKS_DIR, metavar="DIR")
    sim.set_defaults(run=lambda args: simulate.run(args.files, output=args.format, playbooks_dir=args.playbooks))

    book = commands.add_parser("playbooks", help="work with playbooks").add_subparsers(dest="action", required=True)
    check = book.add_parser("check", help="validate every playbook of a folder")
    check.add_argument("directory", nargs="?", type=Path, default=DEFAULT_PLAYBOOKS_DIR, metavar="DIR")
    check.set_defaults(run=lambda args: playbooks.check(args.directory))

    log = commands.add_parser("audit", help="the audit trail").add_subparsers(dest="action", required=True)
    verify = log.add_parser("verify", help="verify the audit hash chains, read-only (storage from AzureWebJobsStorage)")
    verify.add_argument("--incident", metavar="ID", help="only this incident's chain")
    verify.add_argument("--connection-string", help="storage connection string (default: AzureWebJobsStorage)")
    verify.set_defaults(run=lambda args: audit.verify(incident=args.incident, connection_string=args.connection_string))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("azure").setLevel(logging.WARNING)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
