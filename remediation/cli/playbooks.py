"""`remediate playbooks check [DIR]`: every problem of a playbook folder, one per line."""

from __future__ import annotations

import sys
from pathlib import Path

from remediation.cli.common import EXIT_FOUND, EXIT_OK, EXIT_USAGE, not_a_folder


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


def coverage(directory: Path, types_file: Path | None) -> int:
    """`remediate playbooks coverage [DIR] [--types FILE]`: each alert type's answer, or "unanswered".

    Exits 1 when a type is unanswered or only partly answered (some severity or target case of it
    makes no plan), 2 when the folder or the file cannot be used.
    """
    from remediation.playbooks import PlaybookErrors, load_playbooks
    from remediation.playbooks.coverage import AlertTypesError, coverage, read_alert_types, summary

    if not directory.is_dir():
        print(not_a_folder("playbooks coverage", directory), file=sys.stderr)
        return EXIT_USAGE
    try:
        playbooks = load_playbooks(directory)
        alert_types = read_alert_types(types_file)
    except PlaybookErrors as problems:
        print(f"remediate playbooks coverage: the playbooks in {directory} are invalid:\n{problems}", file=sys.stderr)
        return EXIT_USAGE
    except AlertTypesError as problem:
        print(f"remediate playbooks coverage: {problem}", file=sys.stderr)
        return EXIT_USAGE
    rows = coverage(playbooks, alert_types)
    width = max((len(row.alert_type.alert_type) for row in rows), default=10)
    for row in rows:
        deprecated = " (deprecated)" if row.alert_type.deprecated else ""
        answers = "; ".join(f"{answer.playbook}: {', '.join(answer.actions)}" for answer in row.answers)
        line = f"{row.alert_type.alert_type:<{width}}  {row.alert_type.severity or '-':<13} {row.disposition:<15}"
        gaps = f" (no plan for {', '.join(row.gaps)})" if row.gaps else ""
        print(f"{line} {answers or 'unanswered'}{gaps}{deprecated}")
    counts = summary(rows)
    print(
        f"{counts['total']} alert types: {counts['acted']} acted on with approval, {counts['notified']} notified, "
        f"{counts['partly answered']} partly answered, {counts['unanswered']} unanswered"
    )
    return EXIT_FOUND if counts["unanswered"] or counts["partly answered"] else EXIT_OK
