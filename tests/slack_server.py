"""A local Slack Web API for tests, Slack's request signing, and the fixture that points the app at both.

`SlackServer` is a threaded HTTP server on loopback that answers `/api/<method>` like Slack
(`{"ok": true, ...}` with `ts`, `channel`, `usergroups`, `users`...), records every call (method,
form or JSON arguments, headers), and can be told to answer a method once with HTTP 429 and a
Retry-After, or with `ok: false` and an error. `sign` signs a body exactly as Slack does; the
`slack` fixture (import `slack_fixture` into a test module) sets the app's Slack settings, so the
registered function `slack_events` is called with real `func.HttpRequest` objects (tests/host.py).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import azure.functions as func
import pytest

import host
from conftest import AppTables
from functions import wiring

logger = logging.getLogger(__name__)

SIGNING_SECRET = "test-signing-secret-0123456789ab"
BOT_TOKEN = "xoxb-test-token"
DEFAULT_CHANNEL = "C0DEFAULT"
GROUPS = {"secops-oncall": ("S0SECOPS", ("U0ONCALL1", "U0ONCALL2"))}  # handle -> (id, members)


def sign(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's headers for `body`: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic, compare=False)  # when it arrived


@dataclass
class SlackServer:
    """Answers like Slack's Web API; `calls` in arrival order."""

    calls: list[Call] = field(default_factory=list)
    groups: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=lambda: dict(GROUPS))
    _failures: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""
    before_read: Callable[[], None] | None = None  # the host running the Slack outbox before we look
    throttle_all: bool = False  # every call answered 429 with Retry-After 30, as during a Slack incident

    def fail_next(self, method: str, *, status: int = 200, error: str = "", retry_after: int | None = None) -> None:
        """The next call of `method` gets `status` (429 with Retry-After) or `ok: false` with `error`."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"ok": False, "error": error or ("ratelimited" if status == 429 else "fatal_error")}
        with self._lock:
            self._failures.setdefault(method, []).append((status, body, headers))

    def called(self, method: str) -> list[Call]:
        if self.before_read is not None:
            self.before_read()
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def answer(self, method: str, args: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any], dict]:
        with self._lock:
            self.calls.append(Call(method, args, headers))
            if self.throttle_all:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}
            queued = self._failures.get(method)
            if queued:
                return queued.pop(0)
            ts = f"{1_700_000_000 + next(self._ts)}.000100"
        return 200, {"ok": True, **self._fields(method, args, ts)}, {}

    def _fields(self, method: str, args: dict[str, Any], ts: str) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        channel_id = (
            "C" + hashlib.sha1(channel.encode()).hexdigest()[:8].upper() if channel.startswith("#") else channel
        )
        match method:
            case "auth.test":
                return {"user_id": "U0BOT", "bot_id": "B0BOT", "team_id": "T111", "user": "remediation"}
            case "chat.postMessage":
                return {"channel": channel_id, "ts": ts, "message": {"text": args.get("text"), "ts": ts}}
            case "chat.update":
                return {"channel": channel_id, "ts": args.get("ts"), "text": args.get("text")}
            case "chat.postEphemeral":
                return {"message_ts": ts}
            case "chat.getPermalink":
                return {"channel": channel_id, "permalink": f"https://example.slack.com/archives/{channel_id}/p1"}
            case "usergroups.list":
                return {"usergroups": [{"id": gid, "handle": h, "name": h} for h, (gid, _) in self.groups.items()]}
            case "usergroups.users.list":
                members = {gid: users for gid, users in self.groups.values()}
                return {"users": list(members.get(str(args.get("usergroup")), ()))}
            case "views.open" | "views.publish":
                return {"view": {"id": "V" + uuid.uuid4().hex[:8].upper(), **(args.get("view") or {})}}
        return {}


def _handler(server: SlackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)))

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if "json" in (self.headers.get("Content-Type") or ""):
                self._serve(json.loads(raw or "{}"))
            else:
                args: dict[str, Any] = dict(urllib.parse.parse_qsl(raw))
                for key in ("blocks", "view", "attachments"):
                    if isinstance(args.get(key), str):
                        args[key] = json.loads(args[key])
                self._serve(args)

        def _serve(self, args: dict[str, Any]) -> None:
            method = urllib.parse.urlsplit(self.path).path.removeprefix("/api/")
            status, body, headers = server.answer(method, args, dict(self.headers.items()))
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json; charset=utf-8", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the calls are recorded instead
            pass

    return Handler


@dataclass
class SlackTest:
    """The app configured for Slack, its local Web API, and signed requests to `slack_events`."""

    api: SlackServer
    tables: AppTables

    def post(self, body: bytes, *, content_type: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
        signed = sign(body) if headers is None else headers
        request = func.HttpRequest(
            "POST",
            "http://localhost:7071/api/slack/events",
            headers={"Content-Type": content_type, **signed},
            body=body,
        )
        started = time.perf_counter()
        response: func.HttpResponse = host.call("slack_events", request)
        ack_ms = (time.perf_counter() - started) * 1000
        logger.info("slack ack %.1f ms (status %d)", ack_ms, response.status_code, extra={"ack_ms": ack_ms})
        return response

    def interact(self, payload: dict[str, Any], *, headers: dict[str, str] | None = None) -> func.HttpResponse:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return self.post(body, content_type="application/x-www-form-urlencoded", headers=headers)

    def click(self, action_id: str, incident_id: str, *, user: str, channel: str = "C0SECOPS") -> func.HttpResponse:
        return self.interact(block_actions(action_id, incident_id, user=user, channel=channel))

    def command(self, text: str, *, user: str) -> func.HttpResponse:
        form = {
            "token": "verification_token",
            "team_id": "T111",
            "channel_id": "C0SECOPS",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/remediate",
            "text": text,
            "response_url": self.api.url + "/commands/T111/1/x",
            "trigger_id": "111.222.valid",
        }
        return self.post(urllib.parse.urlencode(form).encode(), content_type="application/x-www-form-urlencoded")

    def ephemerals(self, user: str) -> list[str]:
        return [call.args["text"] for call in self.api.called("chat.postEphemeral") if call.args["user"] == user]


def run_outbox(connection_string: str, queue_name: str, *, wait_seconds: float = 5.0) -> int:
    """Run the `slack_outbox` trigger on every job, as the host does, until none is left: jobs put back
    for later (Slack's Retry-After) are waited for, up to `wait_seconds`. The number of jobs run."""
    import base64

    from azure.core.exceptions import AzureError
    from azure.storage.queue import QueueClient

    ran, deadline = 0, time.monotonic() + wait_seconds
    with QueueClient.from_connection_string(connection_string, queue_name, retry_total=0) as queue:
        while True:
            try:
                batch = list(queue.receive_messages(max_messages=32, visibility_timeout=30))
            except AzureError:  # no queue yet (nothing was ever queued), or storage is down: later
                return ran
            for message in batch:
                body = base64.b64decode(message.content)
                binding = host.queue_message(body, message_id=message.id, dequeue_count=message.dequeue_count or 1)
                host.call("slack_outbox", binding)
                queue.delete_message(message)
                ran += 1
            if batch:
                continue
            try:
                waiting = queue.get_queue_properties().approximate_message_count or 0
            except AzureError:
                return ran
            if not waiting or time.monotonic() >= deadline:
                return ran
            time.sleep(0.2)


def block_actions(action_id: str, incident_id: str, *, user: str, channel: str) -> dict[str, Any]:
    """A block_actions payload shaped like samples/slack-block_actions.interaction-payload.json."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T111"},
        "api_app_id": "A111",
        "token": "verification_token",
        "container": {"type": "message", "message_ts": "1700000001.000100", "channel_id": channel},
        "trigger_id": "111.222.valid",
        "team": {"id": "T111", "domain": "workspace-domain"},
        "channel": {"id": channel, "name": "secops-alerts"},
        "response_url": "https://hooks.slack.com/actions/T111/111/random-value",
        "actions": [
            {"action_id": action_id, "block_id": f"incident:{incident_id}", "value": incident_id, "type": "button"}
        ],
    }


@pytest.fixture(name="slack")
def slack_fixture(app_tables: AppTables, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackTest]:
    server = SlackServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="slack-api", daemon=True)
    thread.start()
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_API_BASE_URL", server.url + "/api/")
    monkeypatch.setenv("SLACK_DEFAULT_CHANNEL", DEFAULT_CHANNEL)
    monkeypatch.setenv("SLACK_MESSAGES_TABLE", "slackmessages" + app_tables.events.removeprefix("events"))
    outbox = "slack-outbox-" + app_tables.events.removeprefix("events")
    monkeypatch.setenv("SLACK_OUTBOX_QUEUE", outbox)
    # The account of the moment: a test may move the app to an Azurite of its own.
    server.before_read = lambda: run_outbox(wiring.components().settings.storage_connection, outbox, wait_seconds=0)
    host.after_call.append(server.before_read)
    wiring.reset()
    try:
        yield SlackTest(api=server, tables=app_tables)
    finally:
        if server.before_read in host.after_call:  # a test may have stopped the outbox on purpose
            host.after_call.remove(server.before_read)
        wiring.reset()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
