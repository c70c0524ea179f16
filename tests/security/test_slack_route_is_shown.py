"""Responders see by which route an alert arrived: an HTTP post (a function key) is not Defender's export.

Whoever holds the function key can post an alert shaped like Defender's; the message says the
alert came over HTTP, so nobody mistakes it for continuous export.
"""

from __future__ import annotations

import json

import host
from functions import wiring
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture
from test_slack_approvals import PRIVILEGED_POD


def test_an_alert_posted_over_http_says_so_on_the_message(slack: SlackTest) -> None:
    body = json.dumps({**PRIVILEGED_POD, "SystemAlertId": "alert-route-1"}).encode()
    host.call("defender_alerts_http", host.http_post("defender/alerts", body))
    [incident] = wiring.engine().incidents.list()
    assert incident.signal["route"] == "defender_alerts_http"
    [post] = [c for c in slack.api.called("chat.postMessage") if not c.args.get("thread_ts")]
    assert "HTTP (workflow automation)" in json.dumps(post.args["blocks"])
