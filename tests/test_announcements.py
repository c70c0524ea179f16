"""Every incident is announced exactly once, and no click waits on Slack, whatever Slack does.

Through the registered functions against Azurite and the local Slack Web API; the host's run of the
`slack_outbox` trigger after each invocation is `slack_server.run_outbox`.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.storage.queue import QueueClient

import host
from functions import wiring
from remediation.incidents import Incident, IncidentState
from slack_server import SlackTest, block_actions, run_outbox, sign
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture
from test_slack_approvals import PRIVILEGED_POD, two_person_incident

ALERT: dict[str, Any] = {**PRIVILEGED_POD, "SystemAlertId": "alert-announce-1"}


def post(alert: dict[str, Any] = ALERT) -> Any:
    return host.call("defender_alerts_http", host.http_post("defender/alerts", json.dumps(alert).encode()))


def only_incident() -> Incident:
    [incident] = wiring.engine().incidents.list()
    return incident


def top_level_posts(slack: SlackTest) -> list[Any]:
    return [c for c in slack.api.called("chat.postMessage") if not c.args.get("thread_ts")]


def outbox_name() -> str:
    return wiring.components().settings.slack_outbox_queue


def tick() -> None:
    from azure.functions import meta
    from azure.functions.timer import TimerRequestConverter

    status = {"Last": "2026-01-01T00:00:00+00:00", "Next": "2026-01-01T00:01:00+00:00"}
    datum = meta.Datum(json.dumps({"IsPastDue": False, "ScheduleStatus": status}), "json")
    host.call("approval_timeouts", TimerRequestConverter.decode(datum, trigger_metadata={}))


class TestAnnouncedOnce:
    def test_slack_refusing_the_first_post_is_retried_from_the_queue_after_retry_after(self, slack: SlackTest) -> None:
        slack.api.fail_next("chat.postMessage", status=429, retry_after=1)
        assert post().status_code == 200
        run_outbox(slack.tables.connection_string, outbox_name(), wait_seconds=5)
        refused, taken = top_level_posts(slack)  # the refused post, then the one Slack took a second later
        assert refused.args["text"] == taken.args["text"]
        assert only_incident().announced
        assert wiring.slack_notifier()._messages.get(only_incident().id) is not None  # type: ignore[union-attr]

    def test_an_announcement_lost_before_it_was_posted_is_made_by_the_timer(self, slack: SlackTest) -> None:
        host.after_call.clear()  # the process dies before the outbox runs ...
        assert post().status_code == 200
        with QueueClient.from_connection_string(slack.tables.connection_string, outbox_name()) as queue:
            queue.clear_messages()  # ... and its job is lost with it
        assert slack.api.calls == [] or all(c.method != "chat.postMessage" for c in slack.api.calls)
        assert not only_incident().announced
        later = datetime.now(UTC) + timedelta(minutes=3)
        wiring.use(clock=lambda: later)
        tick()
        assert len(top_level_posts(slack)) == 1
        assert only_incident().announced
        tick()
        assert len(top_level_posts(slack)) == 1  # announced once

    def test_a_retry_after_a_partial_open_counts_the_alert_once_and_posts_it_once(
        self, slack: SlackTest, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SLACK_OUTBOX_QUEUE", "Not_A_Valid_Queue")  # the enqueue after the open fails
        wiring.reset()
        with pytest.raises(Exception, match=r"(?i)queue|invalid|name"):
            post()
        opened = only_incident()
        assert (opened.occurrences, opened.announced) == (1, False)
        monkeypatch.setenv("SLACK_OUTBOX_QUEUE", outbox_name_for(slack))
        wiring.reset()
        assert post().status_code == 200  # the sender's retry of the same alert
        again = only_incident()
        assert (again.id, again.occurrences) == (opened.id, 1)
        assert len(top_level_posts(slack)) == 1
        assert only_incident().announced


def outbox_name_for(slack: SlackTest) -> str:
    return "slack-outbox-" + slack.tables.events.removeprefix("events")


class TestClicksNeverWaitOnSlack:
    def test_a_click_while_slack_answers_429_retry_after_30_records_the_decision_and_calls_no_slack(
        self, slack: SlackTest
    ) -> None:
        incident_id = two_person_incident()
        slack.api.throttle_all = True
        before = len(slack.api.calls)
        payload = block_actions("incident.approve", incident_id, user="U000SECOPS1", channel="C0SECOPS")
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        request = func.HttpRequest(
            "POST",
            "http://localhost:7071/api/slack/events",
            headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body)},
            body=body,
        )
        response = host.registered()["slack_events"].get_user_function()(request)  # the click alone
        assert response.status_code == 200
        assert len(slack.api.calls) == before  # not one Slack Web API call inside the click
        assert wiring.engine().incidents.get(incident_id).approved_by == ("U000SECOPS1",)  # type: ignore[union-attr]
        with QueueClient.from_connection_string(slack.tables.connection_string, outbox_name()) as queue:
            kinds = sorted(
                json.loads(__import__("base64").b64decode(m.content))["kind"] for m in queue.peek_messages(32)
            )
        assert kinds == ["ephemeral", "updated"]  # what Slack should show, queued for the outbox

    def test_two_instances_with_clocks_a_minute_apart_show_the_newest_state(self, slack: SlackTest) -> None:
        incident_id = two_person_incident()
        ahead = datetime.now(UTC) + timedelta(seconds=60)
        wiring.use(clock=lambda: ahead)  # the instance that takes the approval runs a minute fast
        slack.click("incident.approve", incident_id, user="U000SECOPS1")
        wiring.use()  # the instance that takes the rejection has the right time
        slack.click("incident.reject", incident_id, user="U0ONCALL1")
        assert wiring.engine().incidents.get(incident_id).state is IncidentState.REJECTED  # type: ignore[union-attr]
        shown = slack.api.called("chat.update")[-1].args
        assert "rejected" in shown["text"].lower()
        ref = wiring.slack_notifier()._messages.get(incident_id)  # type: ignore[union-attr]
        assert ref.state == "rejected"
