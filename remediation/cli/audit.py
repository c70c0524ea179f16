"""`remediate audit verify [--incident ID]`: find edited, deleted or missing audit records."""

from __future__ import annotations

import sys

from remediation.cli.common import EXIT_FOUND, EXIT_OK, EXIT_USAGE
from remediation.settings import Settings, SettingsError


def verify(*, incident: str | None, connection_string: str | None) -> int:
    from remediation.compose import compose

    try:
        settings = Settings.from_env({"AzureWebJobsStorage": connection_string} if connection_string else None)
    except SettingsError as problem:
        print(f"remediate audit verify: {problem}", file=sys.stderr)
        return EXIT_USAGE
    with compose(settings).incidents() as store:
        found = store.audit.verify(incident)
        flagged = {problem.incident_id for problem in found}
        wanted = [incident] if incident else [known.id for known in store.list()]
        problems = [str(problem) for problem in found]
        problems += [
            f"incident {one}: has no audit records"
            for one in wanted
            if one not in flagged and not store.audit.records(one)
        ]
        checked = len(wanted)
    for line in problems:
        print(line)
    print(f"{checked} incident(s) checked, {len(problems)} problem(s)", file=sys.stderr)
    return EXIT_FOUND if problems else EXIT_OK
