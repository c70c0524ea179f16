"""One Slack message per incident, within Block Kit's limits, through storms and rate limits.

Alerts go in through `defender_alerts_http`; what the notifier sent is read from the local Slack
Web API's record of calls.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient

import host
from functions import wiring
from remediation.signals import decode_batch, parse_defender_alert
from slack_server import DEFAULT_CHANNEL, SlackTest, run_outbox
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

CLUSTER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"


def pod_alert(alert_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "AlertType": "K8S_PrivilegedContainer",
        "SystemAlertId": alert_id,
        "Severity": "High",
        "StartTimeUtc": "2024-11-20T08:32:12.950321Z",
        "AzureResourceId": CLUSTER,
        "Entities": [{"$id": "1", "Type": "K8s-pod", "Name": "web-1", "Namespace": {"$id": "2", "Name": "shop"}}],
        **changes,
    }


def post(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    response = host.call("defender_alerts_http", host.http_post("defender/alerts", json.dumps(alerts).encode()))
    document: dict[str, Any] = json.loads(response.get_body())
    return document


def top_level_posts(slack: SlackTest) -> list[dict[str, Any]]:
    return [call.args for call in slack.api.called("chat.postMessage") if not call.args.get("thread_ts")]


def assert_within_limits(message: dict[str, Any]) -> None:
    blocks = message["blocks"]
    assert len(blocks) <= 50
    assert len(message["text"]) <= 3000
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
            assert all(len(element["text"]) <= 2000 for element in block["elements"])
        if block["type"] == "actions":
            assert all(len(button["text"]["text"]) <= 75 for button in block["elements"])
            assert all(len(button["value"]) <= 2000 for button in block["elements"])


class TestTheIncidentMessage:
    def test_it_says_what_happened_why_what_will_be_done_and_offers_the_buttons(self, slack: SlackTest) -> None:
        post(
            [pod_alert("a-1", AlertDisplayName="Privileged container detected", AlertUri="https://portal.azure.com/#x")]
        )
        [message] = top_level_posts(slack)
        assert message["channel"] == "#secops-alerts"  # the playbook's notify channel
        text = json.dumps(message["blocks"])
        for expected in (
            "Privileged container detected",
            "K8S_PrivilegedContainer",
            "namespace=shop",
            "pod=web-1",
            "https://portal.azure.com/#x",
            "matched playbook pod-isolate",
            "kubernetes.isolate_pod",
            "0 of 1 approvals",
        ):
            assert expected in text
        [actions] = [block for block in message["blocks"] if block["type"] == "actions"]
        [incident] = wiring.engine().incidents.list()
        assert [(b["action_id"], b["value"]) for b in actions["elements"]] == [
            ("incident.approve", incident.id),
            ("incident.reject", incident.id),
            ("incident.details", incident.id),
        ]
        assert_within_limits(message)

    def test_an_overlong_alert_is_cut_to_slacks_limits(self, slack: SlackTest) -> None:
        huge = "A" * 20_000
        entities = [{"$id": str(n), "Type": "K8s-pod", "Name": f"pod-{n}" * 40} for n in range(5)]
        alert = pod_alert("long-1", AlertDisplayName=huge, Description=huge, ExtendedProperties={"k": huge})
        post([{**alert, "Entities": [*alert["Entities"], *entities]}])
        [message] = top_level_posts(slack)
        assert_within_limits(message)
        header = next(block for block in message["blocks"] if block["type"] == "header")
        assert header["text"]["text"].endswith("…")

    def test_without_a_playbook_channel_the_default_channel_is_used(self, slack: SlackTest) -> None:
        engine = wiring.engine()
        [signal] = decode_batch(json.dumps(pod_alert("default-1")), parse_defender_alert)
        [plan] = engine.playbooks.match(signal)
        engine.open_manual(plan=dataclasses.replace(plan, notify=None), signal=signal, requester="U0REQUESTER")
        [message] = top_level_posts(slack)
        assert message["channel"] == DEFAULT_CHANNEL
        assert "<@U0REQUESTER> (manual run)" in json.dumps(message["blocks"])


class TestOneMessagePerIncident:
    def test_an_alert_storm_is_one_message_and_few_updates(self, slack: SlackTest) -> None:
        started = time.perf_counter()
        report = post([pod_alert(f"storm-{n}") for n in range(50)])
        assert report["accepted"] == 50
        [incident] = wiring.engine().incidents.list()
        assert incident.occurrences == 50
        assert len(top_level_posts(slack)) == 1
        seconds = time.perf_counter() - started
        assert len(slack.api.called("chat.update")) <= int(seconds) + 1  # at most one a second

    def test_a_fold_after_the_interval_shows_the_latest_count(self, slack: SlackTest) -> None:
        post([pod_alert("fold-1"), pod_alert("fold-2")])
        time.sleep(1.05)
        post([pod_alert("fold-3")])
        update = slack.api.called("chat.update")[-1].args
        assert "3 occurrences" in json.dumps(update["blocks"])

    def test_the_timer_shows_folds_the_throttle_held_back_once(self, slack: SlackTest) -> None:
        post([pod_alert("held-1"), pod_alert("held-2")])  # the second fold falls inside the interval
        assert "2 occurrences" not in json.dumps(slack.api.called("chat.update")[-1:])
        notifier = wiring.slack_notifier()
        assert notifier is not None
        later = datetime.now(UTC) + timedelta(seconds=2)
        notifier._clock = lambda: later  # the interval has passed, without sleeping
        host.call("approval_timeouts", TimerRequest(past_due=False))
        updates = slack.api.called("chat.update")
        assert "2 occurrences" in json.dumps(updates[-1].args["blocks"])
        host.call("approval_timeouts", TimerRequest(past_due=False))
        assert len(slack.api.called("chat.update")) == len(updates)  # already shown: no new call


class TestSlackFailures:
    def test_a_429_is_retried_after_retry_after(self, slack: SlackTest) -> None:
        slack.api.fail_next("chat.postMessage", status=429, retry_after=1)
        post([pod_alert("limited-1")])
        calls = slack.api.called("chat.postMessage")
        assert len(calls) == 2
        [incident] = wiring.engine().incidents.list()
        assert wiring.slack_notifier()._messages.get(incident.id) is not None

    def test_a_long_retry_after_is_not_waited_for_in_a_request(self, slack: SlackTest) -> None:
        slack.api.fail_next("chat.postMessage", status=429, retry_after=30)
        started = time.perf_counter()
        assert post([pod_alert("limited-2")])["accepted"] == 1
        assert time.perf_counter() - started < 5
        assert len(slack.api.called("chat.postMessage")) == 1

    def test_a_rate_limited_update_waits_out_slacks_retry_after_on_the_queue(self, slack: SlackTest) -> None:
        post([pod_alert("limited-3")])
        [incident] = wiring.engine().incidents.list()
        notifier, settings = wiring.slack_notifier(), wiring.components().settings
        assert notifier is not None
        slack.api.fail_next("chat.update", status=429, retry_after=30)
        wiring.engine().reject(incident.id, user="U000SECOPS1")  # its update is refused, Retry-After 30 s
        run_outbox(slack.tables.connection_string, settings.slack_outbox_queue, wait_seconds=0)
        assert notifier._messages.get(incident.id).state != "rejected"  # the record does not lie
        with QueueClient.from_connection_string(slack.tables.connection_string, settings.slack_outbox_queue) as queue:
            assert queue.get_queue_properties().approximate_message_count == 1  # the job is back on the queue,
            assert list(queue.receive_messages()) == []  # invisible until Slack's Retry-After has passed

    def test_the_last_word_survives_a_rate_limit(self, slack: SlackTest) -> None:
        post([pod_alert("limited-4")])
        [incident] = wiring.engine().incidents.list()
        for _ in range(2):
            slack.api.fail_next("chat.update", status=429, retry_after=1)
        started = time.monotonic()
        wiring.engine().reject(incident.id, user="U000SECOPS1")
        settings = wiring.components().settings
        run_outbox(slack.tables.connection_string, settings.slack_outbox_queue, wait_seconds=10)
        assert time.monotonic() - started >= 2  # two Retry-After waits, on the queue, not in a worker
        assert wiring.slack_notifier()._messages.get(incident.id).state == "rejected"  # type: ignore[union-attr]
        assert "rejected" in json.dumps(slack.api.called("chat.update")[-1].args).lower()

    def test_an_unknown_channel_is_logged_and_the_alert_still_taken(self, slack: SlackTest) -> None:
        slack.api.fail_next("chat.postMessage", error="channel_not_found")
        assert post([pod_alert("nochannel-1")])["accepted"] == 1
        [incident] = wiring.engine().incidents.list()
        assert wiring.slack_notifier()._messages.get(incident.id) is None

    def test_the_token_is_sent_only_as_a_bearer_header(self, slack: SlackTest) -> None:
        post([pod_alert("token-1")])
        [call] = slack.api.called("chat.postMessage")
        assert call.headers["Authorization"] == "Bearer xoxb-test-token"
        assert "xoxb" not in json.dumps(call.args)
