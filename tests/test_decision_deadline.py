"""The approval deadline binds people as it binds the timer: a decision after it is refused.

Through the registered functions (`defender_alerts_http`, `slack_events`, `approval_timeouts`,
`slack_outbox`) against Azurite and the local Slack Web API. The app's clock is moved past the
deadline while the timer has not run yet: the click is refused privately, records nothing of its
own, and the playbook's `on_timeout` (expire, escalate, break-glass approve) applies at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import host
from functions import wiring
from harness import Host
from remediation.incidents import Incident, IncidentState
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture
from test_announcements import tick
from test_slack_approvals import PRIVILEGED_POD
from test_slack_commands import answer, submission

S = IncidentState
APPROVER, OTHER = "U000SECOPS1", "U000SECOPS2"
MESSAGE = "Privileged pod ${targets.pod?} in ${targets.namespace?}: look at it"


def playbook_yaml(
    *,
    name: str = "late-decisions",
    on_timeout: str = "deny",
    mode: str = "required",
    message: str = MESSAGE,
    channel: str | None = None,
    notify: str = "#secops-alerts",
) -> str:
    """A notify-only playbook on K8S_PrivilegedContainer, approved by U000SECOPS1/2, 30 minutes to decide."""
    params: dict[str, Any] = {"message": message, **({"channel": channel} if channel else {})}
    escalate = '\n  escalate_to: "#secops-leads"' if on_timeout == "escalate" else ""
    return f"""
name: {name}
description: A notify step only, so the approval and what follows it are all there is to see.
on: {{source: defender, types: [K8S_PrivilegedContainer]}}
steps:
  - action: notify
    params: {json.dumps(params)}
approval:
  mode: {mode}
  approvers: [{APPROVER}, {OTHER}]
  timeout: 30m
  on_timeout: {on_timeout}{escalate}
notify: "{notify}"
"""


@pytest.fixture(name="playbooks")
def playbooks_fixture(slack: SlackTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty playbook folder the app reads; a test writes its playbook there with `use_playbook`."""
    monkeypatch.setenv("REMEDIATION_PLAYBOOKS_DIR", str(tmp_path))
    wiring.reset()
    yield tmp_path


def use_playbook(folder: Path, text: str) -> None:
    (folder / "playbook.yaml").write_text(text)
    wiring.use()


def alert(alert_id: str = "alert-deadline-1", **changes: Any) -> Incident:
    """The alert posted to `defender_alerts_http`; the incident it opened."""
    body = json.dumps({**PRIVILEGED_POD, "SystemAlertId": alert_id, **changes}).encode()
    assert host.call("defender_alerts_http", host.http_post("defender/alerts", body)).status_code == 200
    [incident] = [i for i in wiring.engine().incidents.list() if i.signal.get("id") == f"defender:{alert_id}"]
    return incident


def at(moment: datetime) -> None:
    """The app's clock reads `moment` from now on (the timer does not run by itself)."""
    wiring.use(clock=lambda: moment)


def current(incident_id: str) -> Incident:
    found = wiring.engine().incidents.get(incident_id)
    assert found is not None
    return found


def queued(slack: SlackTest) -> list[dict[str, Any]]:
    """The work messages waiting for the executor (none when the queue was never needed)."""
    bodies = Host(connection_string=slack.tables.connection_string).peek(slack.tables.queue)
    return [json.loads(body) for body in bodies]


def shown(moment: datetime | None) -> str:
    assert moment is not None
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def audit_kinds(incident_id: str) -> list[tuple[str, str]]:
    return [(r.kind, r.actor) for r in wiring.engine().incidents.audit.records(incident_id)]  # type: ignore[attr-defined]


class TestAfterTheDeadline:
    def test_an_approve_before_the_timer_ran_is_refused_and_the_incident_expires_at_once(
        self, slack: SlackTest, playbooks: Path
    ) -> None:
        use_playbook(playbooks, playbook_yaml(on_timeout="deny"))
        incident = alert()
        assert incident.deadline is not None
        at(incident.deadline + timedelta(seconds=20))  # the timer's next run is up to a minute away
        slack.click("incident.approve", incident.id, user=APPROVER)
        [reply] = slack.ephemerals(APPROVER)
        assert reply == (
            f"Not recorded: the approval window closed at {shown(incident.deadline)}; "
            "instead, as the playbook says on timeout, the incident expired"
        )
        after = current(incident.id)
        assert (after.state, after.approvals) == (S.EXPIRED, ())
        assert queued(slack) == []  # nothing for the executor
        kinds = audit_kinds(incident.id)
        assert kinds[-1] == ("expiry", "system") and "approval" not in {kind for kind, _ in kinds}
        assert "[expired]" in slack.api.called("chat.update")[-1].args["text"]
        tick()  # the timer, when it comes, finds nothing left to do
        assert audit_kinds(incident.id) == kinds

    def test_a_click_at_the_deadline_still_counts(self, slack: SlackTest, playbooks: Path) -> None:
        use_playbook(playbooks, playbook_yaml(on_timeout="deny"))
        incident = alert()
        assert incident.deadline is not None
        at(incident.deadline)  # "decide by": the deadline itself is inside the window
        slack.click("incident.approve", incident.id, user=APPROVER)
        assert current(incident.id).state is S.APPROVED
        assert queued(slack) == [{"incident_id": incident.id, "kind": "execute"}]

    def test_a_click_a_millisecond_after_the_deadline_is_late(self, slack: SlackTest, playbooks: Path) -> None:
        use_playbook(playbooks, playbook_yaml(on_timeout="deny"))
        incident = alert()
        assert incident.deadline is not None
        at(incident.deadline + timedelta(milliseconds=1))
        slack.click("incident.approve", incident.id, user=APPROVER)
        assert current(incident.id).state is S.EXPIRED

    def test_a_late_reject_is_refused_the_same_way(self, slack: SlackTest, playbooks: Path) -> None:
        use_playbook(playbooks, playbook_yaml(on_timeout="deny"))
        incident = alert()
        assert incident.deadline is not None
        at(incident.deadline + timedelta(seconds=5))
        slack.click("incident.reject", incident.id, user=APPROVER)
        assert "the approval window closed" in slack.ephemerals(APPROVER)[-1]
        after = current(incident.id)
        assert (after.state, after.rejected_by) == (S.EXPIRED, None)

    def test_an_escalating_playbook_escalates_instead_and_asks_the_escalation_channel(
        self, slack: SlackTest, playbooks: Path
    ) -> None:
        use_playbook(playbooks, playbook_yaml(on_timeout="escalate"))
        incident = alert()
        assert incident.deadline is not None
        late = incident.deadline + timedelta(seconds=30)
        at(late)
        slack.click("incident.approve", incident.id, user=APPROVER)
        after = current(incident.id)
        assert (after.state, after.approvals, after.deadline) == (S.ESCALATED, (), late + timedelta(minutes=30))
        assert slack.ephemerals(APPROVER)[-1] == (
            f"Not recorded: the approval window closed at {shown(incident.deadline)}; instead, as the playbook says "
            f"on timeout, it is escalated to #secops-leads, and its approvers may decide until {shown(after.deadline)}"
        )
        asked = [c for c in slack.api.called("chat.postMessage") if c.args["channel"] == "#secops-leads"]
        assert len(asked) == 1 and "Escalated to you" in asked[0].args["text"]
        tick()  # the timer does not escalate it a second time
        assert [kind for kind, _ in audit_kinds(incident.id)].count("escalation") == 1
        slack.click("incident.approve", incident.id, user=APPROVER)  # inside the new window: it counts
        assert current(incident.id).state is S.APPROVED

    def test_a_late_decision_on_an_escalated_incident_expires_it(self, slack: SlackTest, playbooks: Path) -> None:
        use_playbook(playbooks, playbook_yaml(on_timeout="escalate"))
        incident = alert()
        assert incident.deadline is not None
        at(incident.deadline + timedelta(seconds=1))
        tick()
        escalated = current(incident.id)
        assert escalated.state is S.ESCALATED and escalated.deadline is not None
        at(escalated.deadline + timedelta(seconds=1))
        slack.click("incident.approve", incident.id, user=OTHER)
        assert slack.ephemerals(OTHER)[-1] == (
            f"Not recorded: the approval window closed at {shown(escalated.deadline)}; "
            "instead, as the playbook says on timeout, the incident expired"
        )
        assert current(incident.id).state is S.EXPIRED
        assert queued(slack) == []

    def test_under_auto_approve_the_break_glass_policy_approves_not_the_clicker(
        self, slack: SlackTest, playbooks: Path
    ) -> None:
        use_playbook(playbooks, playbook_yaml(on_timeout="auto_approve"))
        incident = alert()
        assert incident.deadline is not None
        at(incident.deadline + timedelta(seconds=10))
        slack.click("incident.approve", incident.id, user=APPROVER)
        assert slack.ephemerals(APPROVER)[-1].endswith(
            "instead, as the playbook says on timeout, it was approved at timeout (break-glass, review required)"
        )
        after = current(incident.id)
        assert (after.state, after.break_glass, after.approvals) == (S.APPROVED, True, ())
        assert queued(slack) == [{"incident_id": incident.id, "kind": "execute"}]
        assert audit_kinds(incident.id)[-1] == ("break_glass", "policy:late-decisions/on_timeout=auto_approve")

    def test_input_supplied_after_the_deadline_is_refused_in_the_form(self, slack: SlackTest, playbooks: Path) -> None:
        use_playbook(playbooks, playbook_yaml(on_timeout="escalate", message="Privileged pod ${targets.pod}"))
        incident = alert(Entities=[])  # no pod named: the incident asks for it
        assert incident.state is S.NEEDS_INPUT and incident.deadline is not None
        at(incident.deadline + timedelta(seconds=3))
        [missing] = incident.plan.missing
        document = answer(slack.interact(submission(incident.id, {missing.param: "web-1"}, user=APPROVER)))
        assert document["response_action"] == "errors"
        [error] = document["errors"].values()
        assert error.startswith(f"the approval window closed at {shown(incident.deadline)}")
        after = current(incident.id)
        assert (after.state, dict(after.inputs)) == (S.EXPIRED, {})  # input cannot escalate: it expires
