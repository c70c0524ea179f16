"""`remediate`: the engine from the command line, the same engine the Function App runs.

Commands: `simulate` (offline: normalise, dedup and plan event files, folders or stdin), `playbooks
check` (validate a playbook folder), `audit verify` (check the audit hash chains in the configured
storage). Options may come before the command or after it: `remediate --format json simulate F` and
`remediate simulate F --format json` are the same. Both commands that read playbooks take the folder
from REMEDIATION_PLAYBOOKS_DIR when none is given.
Exit codes (`remediation.cli.common`): 0 fine, 1 something was found (a rejected event, an invalid
playbook, a broken chain), 2 a usage or settings error, 3 storage unreachable or refusing us.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from remediation.cli import audit, playbooks, simulate
from remediation.cli.common import EXIT_USAGE, playbooks_dir
from remediation.settings import SettingsError

SIMULATE_ONLY = ("format", "playbooks")
"""Options of `simulate` that are also taken before the command name."""


def _global_options(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS as the default at both levels: a subcommand's default would otherwise overwrite a
    # value given before the command name.
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log what the engine does to stderr"
    )


def _simulate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default=argparse.SUPPRESS,
        help="simulate's output: text for people (the default) or one JSON document",
    )
    parser.add_argument(
        "--playbooks",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="simulate's playbook folder (default: REMEDIATION_PLAYBOOKS_DIR, else the shipped playbooks/)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remediate", description="Remediation engine for AKS and ACR events.")
    _global_options(parser)
    _simulate_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    sim = commands.add_parser("simulate", help="normalise, dedup and plan events from files, folders or stdin, offline")
    _global_options(sim)
    _simulate_options(sim)
    sim.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="a JSON file (one event or an array), a folder (its *.json files, not its subfolders), or - for stdin",
    )
    sim.set_defaults(run=_simulate)

    book = commands.add_parser("playbooks", help="work with playbooks")
    book_actions = book.add_subparsers(dest="action", required=True, metavar="ACTION", help="what to do")
    check = book_actions.add_parser("check", help="validate every playbook of a folder")
    _global_options(check)
    check.add_argument(
        "directory",
        nargs="?",
        type=Path,
        metavar="DIR",
        help="the playbook folder (default: REMEDIATION_PLAYBOOKS_DIR, else the shipped playbooks/)",
    )
    check.set_defaults(run=_check)
    cover = book_actions.add_parser("coverage", help="which playbook answers each Defender alert type; 1 if any is not")
    _global_options(cover)
    cover.add_argument("directory", nargs="?", type=Path, metavar="DIR", help="the playbook folder (default as check)")
    cover.add_argument("--types", type=Path, metavar="FILE", help="a TSV of alert types (default: the shipped list)")
    cover.set_defaults(run=_coverage)

    log = commands.add_parser("audit", help="the audit trail")
    log_actions = log.add_subparsers(dest="action", required=True, metavar="ACTION", help="what to do")
    verify = log_actions.add_parser(
        "verify", help="verify the audit hash chains, read-only (storage from AzureWebJobsStorage)"
    )
    _global_options(verify)
    verify.add_argument("--incident", metavar="ID", help="only this incident's chain")
    verify.add_argument("--connection-string", help="storage connection string (default: AzureWebJobsStorage)")
    verify.set_defaults(run=lambda args: audit.verify(incident=args.incident, connection_string=args.connection_string))
    return parser


def _with_playbooks_dir(command: str, given: Path | None, run: Callable[[Path], int]) -> int:
    try:
        directory = playbooks_dir(given)
    except SettingsError as problem:
        print(f"remediate {command}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    return run(directory)


def _simulate(args: argparse.Namespace) -> int:
    output = getattr(args, "format", "text")
    return _with_playbooks_dir(
        "simulate",
        getattr(args, "playbooks", None),
        lambda directory: simulate.run(args.files, output=output, playbooks_dir=directory),
    )


def _check(args: argparse.Namespace) -> int:
    return _with_playbooks_dir("playbooks check", args.directory, playbooks.check)


def _coverage(args: argparse.Namespace) -> int:
    return _with_playbooks_dir(
        "playbooks coverage", args.directory, lambda directory: playbooks.coverage(directory, args.types)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "simulate":
        for name in SIMULATE_ONLY:
            if hasattr(args, name):
                parser.error(f"--{name} is an option of simulate, not of {args.command} {args.action}")
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        logging.getLogger("azure").setLevel(logging.WARNING)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
