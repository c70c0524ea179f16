"""A break-glass approval names what approved it: the playbook, its `on_timeout` rule, the timeout.

Through the registered functions: an alert to `defender_alerts_http`, the minute timer
`approval_timeouts` after the deadline, the executor `remediation_executor` on the work queue;
the audit chain is read back from its Azurite table.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from functions import wiring
from harness import Host
from remediation.audit import AuditRecord
from remediation.incidents import IncidentState
from remediation.incidents.history import duration
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture
from test_announcements import tick
from test_decision_deadline import alert, at, playbook_yaml, use_playbook
from test_decision_deadline import playbooks_fixture as playbooks_fixture  # the `playbooks` fixture

POLICY_ACTOR = "policy:unattended-notify/on_timeout=auto_approve"


def records(incident_id: str) -> list[AuditRecord]:
    found: list[AuditRecord] = wiring.engine().incidents.audit.records(incident_id)  # type: ignore[attr-defined]
    return found


def test_the_timers_break_glass_approval_is_recorded_as_the_playbooks_policy(slack: SlackTest, playbooks: Path) -> None:
    use_playbook(playbooks, playbook_yaml(name="unattended-notify", on_timeout="auto_approve"))
    incident = alert()
    assert incident.deadline is not None
    at(incident.deadline + timedelta(minutes=1))
    tick()
    approved = wiring.engine().incidents.get(incident.id)
    assert approved is not None and (approved.state, approved.break_glass) == (IncidentState.APPROVED, True)
    [record] = [r for r in records(incident.id) if r.kind == "break_glass"]
    assert (record.actor, record.from_state, record.to_state) == (POLICY_ACTOR, "awaiting_approval", "approved")
    assert record.details == {
        "reason": "nobody decided before the deadline; approved by the playbook's on_timeout, review required",
        "playbook": "unattended-notify",
        "on_timeout": "auto_approve",
        "timeout": "30m",
        "deadline": incident.deadline.isoformat(timespec="microseconds"),
    }
    assert wiring.engine().incidents.audit.verify(incident.id) == []  # type: ignore[attr-defined]


def test_the_steps_that_follow_stay_the_systems_so_a_reviewer_tells_them_apart(
    slack: SlackTest, playbooks: Path
) -> None:
    use_playbook(playbooks, playbook_yaml(name="unattended-notify", on_timeout="auto_approve"))
    incident = alert()
    assert incident.deadline is not None
    at(incident.deadline + timedelta(minutes=1))
    tick()
    report = Host(connection_string=slack.tables.connection_string).drain(slack.tables.queue, "remediation_executor")
    assert [call.error for call in report.calls] == [None]
    chain = records(incident.id)
    assert [r.to_state for r in chain][-1] == "succeeded"
    by_policy = [r.kind for r in chain if r.actor == POLICY_ACTOR]
    assert by_policy == ["break_glass"]
    assert {r.actor for r in chain if r.kind != "break_glass"} == {"system"}


@pytest.mark.parametrize(
    ("span", "written"),
    [(timedelta(minutes=30), "30m"), (timedelta(hours=1, minutes=30), "1h30m"), (timedelta(days=2), "2d")],
)
def test_the_timeout_reads_as_the_playbook_writes_it(span: timedelta, written: str) -> None:
    assert duration(span) == written
