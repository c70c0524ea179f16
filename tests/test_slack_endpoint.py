"""The Slack endpoint: signature and replay window checked by Bolt, before anything changes.

Requests reach the registered function `slack_events` as real `func.HttpRequest` objects, signed
as Slack signs them (tests/slack_server.py); the shared test vector must verify with our signer
and through Bolt.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier

import host
from functions import wiring
from remediation.incidents import IncidentState
from slack_server import BOT_TOKEN, SIGNING_SECRET, SlackTest, block_actions, sign
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

SAMPLE = Path("/work/shared/samples/slack-slash-command.signed-request.json")
PRIVILEGED_POD: dict[str, Any] = {
    "AlertType": "K8S_PrivilegedContainer",
    "SystemAlertId": "alert-endpoint-1",
    "Severity": "High",
    "StartTimeUtc": "2024-11-20T08:32:12.950321Z",
    "AzureResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1",
    "Entities": [{"$id": "1", "Type": "K8s-pod", "Name": "web-1", "Namespace": {"$id": "2", "Name": "shop"}}],
}


def sample() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SAMPLE.read_text())
    return document


def open_incident() -> str:
    host.call("defender_alerts_http", host.http_post("defender/alerts", json.dumps(PRIVILEGED_POD).encode()))
    [incident] = wiring.engine().incidents.list()
    return incident.id


class TestTheTestVector:
    def test_our_signer_reproduces_slacks_signature(self) -> None:
        vector = sample()
        headers = sign(
            vector["raw_body"].encode(),
            secret=vector["signing_secret_for_test_only"],
            timestamp=int(vector["headers"]["X-Slack-Request-Timestamp"]),
        )
        assert headers["X-Slack-Signature"] == vector["headers"]["X-Slack-Signature"]

    def test_it_verifies_through_bolt_at_its_own_time_and_is_stale_now(self, slack: SlackTest) -> None:
        from bot.adapter import to_bolt_request
        from bot.app import build_app

        vector = sample()
        request = host.http_post("slack/events", vector["raw_body"].encode(), vector["headers"])
        secret = vector["signing_secret_for_test_only"]
        outbox = wiring.components().notifications().notifier  # type: ignore[union-attr]
        app = build_app(engine=wiring.engine(), client=wiring.slack()[1], signing_secret=secret, outbox=outbox)
        assert app.dispatch(to_bolt_request(request)).status == 401  # five years past the replay window

        class Then:
            def now(self) -> float:
                return float(vector["headers"]["X-Slack-Request-Timestamp"]) + 10

        [verification] = [m for m in app._middleware_list if type(m).__name__ == "RequestVerification"]
        verification._verifier = SignatureVerifier(vector["signing_secret_for_test_only"], clock=Then())
        response = app.dispatch(to_bolt_request(request))
        assert response.status == 404  # verified; no listener for /webhook-collect
        assert vector["parsed_form"]["command"] == "/webhook-collect"


class TestRefusedRequests:
    def test_a_forged_signature_is_refused_and_changes_nothing(self, slack: SlackTest) -> None:
        incident_id = open_incident()
        payload = block_actions("incident.approve", incident_id, user="U000SECOPS1", channel="C0SECOPS")
        forged = sign(b"something else")
        response = slack.interact(payload, headers=forged)
        assert response.status_code == 401
        assert wiring.engine().incidents.get(incident_id).state is IncidentState.AWAITING_APPROVAL
        assert slack.api.called("chat.postEphemeral") == []

    def test_a_wrong_secret_is_refused(self, slack: SlackTest) -> None:
        incident_id = open_incident()
        payload = block_actions("incident.approve", incident_id, user="U000SECOPS1", channel="C0SECOPS")
        body = ("payload=" + json.dumps(payload)).encode()
        response = slack.post(body, content_type="application/x-www-form-urlencoded", headers=sign(body, secret="nope"))
        assert response.status_code == 401
        assert wiring.engine().incidents.get(incident_id).approvals == ()

    def test_a_stale_timestamp_is_refused_and_changes_nothing(self, slack: SlackTest) -> None:
        import urllib.parse

        incident_id = open_incident()
        payload = block_actions("incident.approve", incident_id, user="U000SECOPS1", channel="C0SECOPS")
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        stale = sign(body, secret=SIGNING_SECRET, timestamp=int(time.time()) - 6 * 60)
        response = slack.post(body, content_type="application/x-www-form-urlencoded", headers=stale)
        assert response.status_code == 401
        assert wiring.engine().incidents.get(incident_id).state is IncidentState.AWAITING_APPROVAL

    def test_the_route_is_anonymous_post_slack_events(self) -> None:
        [trigger, _] = host.bindings("slack_events")
        assert (trigger["type"], trigger["route"], trigger["authLevel"]) == ("httpTrigger", "slack/events", "ANONYMOUS")
        assert trigger["methods"] == ["POST"]


class TestSecrets:
    def test_neither_the_token_nor_the_signing_secret_is_logged(
        self, slack: SlackTest, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        incident_id = open_incident()
        slack.click("incident.approve", incident_id, user="U000SECOPS1")
        slack.click("incident.approve", incident_id, user="U0STRANGER")
        assert caplog.records
        logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
        assert BOT_TOKEN not in logged
        assert SIGNING_SECRET not in logged
        assert BOT_TOKEN not in repr(wiring.slack()[0])
