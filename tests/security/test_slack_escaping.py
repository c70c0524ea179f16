"""Attack: an alert whose text carries Slack markup: a broadcast, a mention, a disguised phishing link.

Everything an alert says (title, description, entity names, hence step parameters and thread lines)
reaches Slack escaped (`&lt;!channel&gt;`), and every link on the message points at the Azure
portal, whatever link the alert carried.
"""

from __future__ import annotations

import json
import re
from typing import Any

import host
from functions import wiring
from slack_server import SlackTest
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

EVIL = "<!channel> <@U123> <https://evil.example/login|Defender portal> & co"
ESCAPED = "&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example/login|Defender portal&gt; &amp; co"
RAW = ("<!channel>", "<@U123>", "<https://evil.example", "|Defender portal>")
CLUSTER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"
ALERT: dict[str, Any] = {
    "AlertType": "K8S_PrivilegedContainer",
    "SystemAlertId": "alert-escaping-1",
    "AlertDisplayName": f"Privileged container {EVIL}",
    "Description": f"Look here {EVIL}",
    "AlertUri": "https://evil.example/login",
    "Severity": "High",
    "StartTimeUtc": "2024-11-20T08:32:12.950321Z",
    "AzureResourceId": CLUSTER,
    "Entities": [{"$id": "1", "Type": "K8s-pod", "Name": f"web {EVIL}", "Namespace": {"$id": "2", "Name": "shop"}}],
}


def mrkdwn_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [text for value in node.values() for text in mrkdwn_texts(value)]
    if isinstance(node, list):
        return [text for value in node for text in mrkdwn_texts(value)]
    return [node] if isinstance(node, str) else []


def test_alert_markup_reaches_slack_only_escaped_and_links_only_to_the_portal(slack: SlackTest) -> None:
    host.call("defender_alerts_http", host.http_post("defender/alerts", json.dumps(ALERT).encode()))
    [incident] = wiring.engine().incidents.list()
    # A thread line that repeats an alert-derived name, as step results do.
    wiring.engine().notifier.step_progress(incident, step=0, message=f"isolated pod web {EVIL}")

    posts = slack.api.called("chat.postMessage")
    [message] = [post for post in posts if "thread_ts" not in post.args]
    thread = [post.args["text"] for post in posts if "thread_ts" in post.args]
    blocks = message.args["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    texts = [message.args["text"], *mrkdwn_texts(blocks), *thread]
    assert thread, "no thread line was posted"
    for text in texts:
        for raw in RAW:
            assert raw not in text, f"{raw!r} reached Slack unescaped in {text!r}"
    assert ESCAPED in message.args["text"]
    assert any(ESCAPED in text for text in thread)
    links = [link for text in texts for link in re.findall(r"<(https?://[^|>]*)", text)]
    assert links, "the message links to the alert's resource in the portal"
    assert all(link.startswith("https://portal.azure.com/") for link in links), links
