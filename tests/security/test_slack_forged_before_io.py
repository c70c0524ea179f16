"""Attack: a forged request while storage is unreachable, to reach code before the signature check.

The endpoint checks Slack's signature with the settings alone: a forged request is 401 even when
storage cannot be reached, and no storage connection is even tried (the app, its engine and its
storage clients are not built).
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

import host
from functions import wiring
from slack_server import SlackTest, block_actions, sign
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture

ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def test_a_forged_request_with_storage_unreachable_is_401_and_touches_no_storage(
    slack: SlackTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    connections: list[object] = []
    with socket.socket() as listener:  # storage that counts and drops every connection
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        stop = threading.Event()

        def count() -> None:
            while not stop.is_set():
                try:
                    peer, _ = listener.accept()
                except OSError:
                    continue
                connections.append(peer)
                peer.close()

        counter = threading.Thread(target=count, daemon=True)
        counter.start()
        endpoint = f"http://127.0.0.1:{port}/devstoreaccount1"
        monkeypatch.setenv(
            "AzureWebJobsStorage",
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint={endpoint};QueueEndpoint={endpoint};BlobEndpoint={endpoint};",
        )
        monkeypatch.setattr(host, "after_call", [])  # no outbox run against that storage
        wiring.reset()
        try:
            payload = block_actions("incident.approve", "inc-any", user="U000SECOPS1", channel="C0SECOPS")
            response = slack.interact(payload, headers=sign(json.dumps(payload).encode()))  # signed another body
            assert response.status_code == 401
            assert connections == []
            assert wiring.slack_app.cache_info().currsize == 0  # the Bolt app and its engine were not built
        finally:
            stop.set()
            counter.join(timeout=2)
            wiring.reset()
