"""`python -m remediation.cli.settings [--check]`: the README's settings table and local.settings.example.json.

Both are written from `remediation.settings.DECLARED`: the table between the README's
`<!-- settings:begin -->` and `<!-- settings:end -->` markers, and the example file's `Values` (each
setting's local value, in declaration order). With `--check` nothing is written: exit 1 when either
file is out of date, for CI. tests/test_settings.py holds both to the same functions.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from remediation.cli.common import EXIT_FOUND, EXIT_OK
from remediation.settings import DECLARED, render_settings_table

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLE = ROOT / "local.settings.example.json"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def with_table(readme: str) -> str:
    """`readme` with the text between the markers replaced by the rendered table."""
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return f"{readme[:start]}\n{render_settings_table()}\n{readme[end:]}"


def example_settings() -> str:
    """local.settings.example.json as DECLARED says it should be."""
    document: dict[str, Any] = {
        "IsEncrypted": False,
        "Values": {setting.name: setting.local_value for setting in DECLARED},
    }
    return json.dumps(document, indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remediation.cli.settings", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    wanted = {README: with_table(README.read_text()), EXAMPLE: example_settings()}
    stale = [path for path, text in wanted.items() if path.read_text() != text]
    for path in stale:
        if args.check:
            print(f"{path.name} is out of date: run python -m remediation.cli.settings", file=sys.stderr)
        else:
            path.write_text(wanted[path])
            print(f"rewrote {path.name}")
    return EXIT_FOUND if args.check and stale else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
