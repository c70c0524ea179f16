"""Why a playbook does not fire for a Signal, in words a responder can act on.

Neighbours: `matcher.PlaybookSet.match` decides silently, which suits alerts; a manual run
(`Engine.run_manual`, from `/remediate run`) must refuse with the reason instead, so it asks here.
The test is the matcher's own (`on` then `when`); only the wording is added.
"""

from __future__ import annotations

from remediation.playbooks.conditions import Condition, Equals, In, Matches, Not
from remediation.playbooks.model import Playbook
from remediation.signals.model import Signal


def why_not(playbook: Playbook, signal: Signal) -> str | None:
    """None when `playbook`'s `on` and `when` hold for `signal`, else the first that does not."""
    if signal.source is not playbook.source or signal.type not in playbook.types:
        return f"playbook {playbook.name} is for {playbook.source.value} {', '.join(playbook.types)}, not {signal.type}"
    if playbook.min_severity is not None and signal.severity < playbook.min_severity:
        return f"on.min_severity: {signal.severity.label} is below {playbook.min_severity.label}"
    for index, condition in enumerate(playbook.when):
        if not condition.test(signal):
            return f"when[{index}] does not hold: {describe(condition)}"
    return None


def describe(condition: Condition) -> str:
    """`targets.rbac_name regex '^system:'`, `not (...)`: a condition as the playbook wrote it."""
    if isinstance(condition, Not):
        return f"not ({describe(condition.inner)})"
    if isinstance(condition, Equals):
        return f"{condition.path} equals {condition.value!r}"
    if isinstance(condition, In):
        return f"{condition.path} in {sorted(condition.values)!r}"
    if isinstance(condition, Matches):
        how = "glob" if condition.anchored else "regex"
        return f"{condition.path} {how} {condition.pattern.pattern!r}"
    return repr(condition)
