"""`notify` honours its `channel`, and every post that names a channel is retried when Slack fails it.

Through the registered functions: the alert to `defender_alerts_http` opens a `mode: auto` incident
whose work message `remediation_executor` takes from the Azurite queue; `slack_outbox` then does the
Slack jobs against the local Slack Web API (`approval_timeouts` for the escalation). The incident's
own message is in the playbook's `notify` channel (#secops-alerts).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.messages import MessageRef
from functions import wiring
from harness import Host
from remediation.incidents import Incident, IncidentState
from slack_server import Call, SlackTest, run_outbox
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture
from test_announcements import outbox_name, tick
from test_decision_deadline import alert, at, playbook_yaml, use_playbook
from test_decision_deadline import playbooks_fixture as playbooks_fixture  # the `playbooks` fixture

FACTS = "Privileged pod ${targets.pod?} (${title})"
TITLE = "Privileged container <!channel> detected"


def executed(slack: SlackTest) -> Incident:
    """The alert in, its one notify step run by the executor; the Slack outbox has done its jobs."""
    incident = alert(AlertDisplayName=TITLE)
    report = Host(connection_string=slack.tables.connection_string).drain(slack.tables.queue, "remediation_executor")
    assert [call.error for call in report.calls] == [None]
    done = wiring.engine().incidents.get(incident.id)
    assert done is not None and done.state is IncidentState.SUCCEEDED
    return done


def message_of(incident: Incident) -> MessageRef:
    notifier = wiring.slack_notifier()
    assert notifier is not None
    ref = notifier._messages.get(incident.id)
    assert ref is not None
    return ref


def top_level(slack: SlackTest, channel: str | None = None) -> list[Call]:
    posts = [c for c in slack.api.called("chat.postMessage") if not c.args.get("thread_ts")]
    return [c for c in posts if channel is None or c.args["channel"] == channel]


def thread(slack: SlackTest) -> list[str]:
    return [c.args["text"] for c in slack.api.called("chat.postMessage") if c.args.get("thread_ts")]


def failing(slack: SlackTest, channel: str, *answers: tuple[int, dict[str, Any], dict[str, str]]) -> None:
    """Slack answers the next posts to `channel` with `answers`, one each, then as usual."""
    original: Callable[..., Any] = slack.api.answer
    pending = list(answers)

    def answer(method: str, args: dict[str, Any], headers: dict[str, str]) -> Any:
        if method == "chat.postMessage" and args.get("channel") == channel and pending:
            slack.api.calls.append(Call(method, args, headers))
            return pending.pop(0)
        return original(method, args, headers)

    slack.api.answer = answer  # type: ignore[method-assign]


class TestTheChannelParameter:
    def test_a_step_naming_a_channel_posts_there_linking_back_to_the_incident(
        self, slack: SlackTest, playbooks: Path
    ) -> None:
        use_playbook(playbooks, playbook_yaml(mode="auto", message=FACTS, channel="#secops-leads"))
        incident = executed(slack)
        ref = message_of(incident)
        [post] = top_level(slack, "#secops-leads")
        link = f"<https://example.slack.com/archives/{ref.channel}/p1|incident {incident.id}>"
        assert post.args["text"] == f"Privileged pod web-1 (Privileged container &lt;!channel&gt; detected) {link}"
        [permalink] = slack.api.called("chat.getPermalink")
        assert (permalink.args["channel"], permalink.args["message_ts"]) == (ref.channel, ref.ts)
        assert "Step 1 `notify`: posted in #secops-leads: Privileged pod web-1" in "\n".join(thread(slack))
        assert len(top_level(slack)) == 2  # the incident's own message, and the post in #secops-leads

    def test_without_a_channel_the_message_goes_to_the_incidents_thread_only(
        self, slack: SlackTest, playbooks: Path
    ) -> None:
        use_playbook(playbooks, playbook_yaml(mode="auto", message=FACTS))
        incident = executed(slack)
        [only] = top_level(slack)
        assert only.args["channel"] == "#secops-alerts"
        assert any(text.startswith("Step 1 `notify`: Privileged pod web-1") for text in thread(slack))
        assert slack.api.called("chat.getPermalink") == []
        assert message_of(incident).state == "succeeded"

    def test_naming_the_playbooks_own_channel_keeps_it_in_the_thread(self, slack: SlackTest, playbooks: Path) -> None:
        use_playbook(playbooks, playbook_yaml(mode="auto", message=FACTS, channel="#secops-alerts"))
        executed(slack)
        assert len(top_level(slack)) == 1
        assert "Step 1 `notify`: posted in #secops-alerts: Privileged pod web-1" in "\n".join(thread(slack))

    def test_a_user_group_is_mentioned_in_the_incidents_thread(self, slack: SlackTest, playbooks: Path) -> None:
        use_playbook(playbooks, playbook_yaml(mode="auto", message=FACTS, channel="@secops-oncall"))
        executed(slack)
        assert len(top_level(slack)) == 1
        replies = thread(slack)
        assert "<!subteam^S0SECOPS> Privileged pod web-1 (Privileged container &lt;!channel&gt; detected)" in replies
        assert "Step 1 `notify`: @secops-oncall notified in this thread" in replies


class TestChannelPostsAreRetried:
    def test_a_rate_limited_channel_post_is_posted_from_the_queue_after_retry_after(
        self, slack: SlackTest, playbooks: Path
    ) -> None:
        use_playbook(playbooks, playbook_yaml(mode="auto", message=FACTS, channel="#secops-leads"))
        limited = (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
        failing(slack, "#secops-leads", limited, limited)  # the client's own retry meets the second one
        incident = executed(slack)
        run_outbox(slack.tables.connection_string, outbox_name(), wait_seconds=10)
        refused_twice, taken = top_level(slack, "#secops-leads")[1:]
        assert refused_twice.args == taken.args
        assert incident.id in taken.args["text"]
        assert len(top_level(slack, "#secops-leads")) == 3  # two refused, then posted once

    @pytest.mark.parametrize("refusal", [(200, {"ok": False, "error": "internal_error"}, {}), (503, {"ok": False}, {})])
    def test_a_failed_escalation_post_is_sent_again(
        self, slack: SlackTest, playbooks: Path, refusal: tuple[int, dict[str, Any], dict[str, str]]
    ) -> None:
        use_playbook(playbooks, playbook_yaml(on_timeout="escalate"))
        incident = alert()
        assert incident.deadline is not None
        failing(slack, "#secops-leads", refusal)
        at(incident.deadline + timedelta(minutes=1))
        tick()
        assert "escalated to #secops-leads" in "\n".join(thread(slack))
        run_outbox(slack.tables.connection_string, outbox_name(), wait_seconds=15)
        refused, sent = top_level(slack, "#secops-leads")
        assert refused.args["text"] == sent.args["text"]
        assert sent.args["text"].startswith(":rotating_light: Escalated to you: [escalated]")
        assert "|in the incident's thread>" in sent.args["text"]
