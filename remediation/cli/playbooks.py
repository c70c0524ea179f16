"""`remediate playbooks check [DIR]`: every problem of a playbook folder, one per line."""

from __future__ import annotations

import sys
from pathlib import Path

from remediation.cli.common import EXIT_FOUND, EXIT_OK, EXIT_USAGE


def check(directory: Path) -> int:
    from remediation.playbooks import check_playbooks, load_playbooks

    if not directory.is_dir():
        print(f"remediate playbooks check: {directory} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    errors = check_playbooks(directory)
    for error in errors:
        print(error)
    if errors:
        print(f"{len(errors)} error(s) in {directory}", file=sys.stderr)
        return EXIT_FOUND
    names = ", ".join(playbook.name for playbook in load_playbooks(directory).playbooks)
    print(f"{directory}: ok ({names})")
    return EXIT_OK
