"""`SlackNotifier`: the engine's Notifier, as one Slack message per incident plus a threaded audit.

Neighbours: the engine (`remediation.engine`) and the executor call it; `bot.blocks` renders the
message; `bot.messages` remembers which message shows which incident. The first notice posts the
message, every later one updates it (`chat.update`), so a storm of alerts is one message whose count
grows. Folds (nothing new but the count) update at most once per `min_interval` per incident, the
skipped ones show with the next update. Decisions, steps and results are also posted as replies in
the message's thread. A Slack failure is logged and swallowed: the engine's decision is already
stored, and the next notice brings the message up to date.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from bot.blocks import incident_blocks, incident_text
from bot.limits import FALLBACK_TEXT, cut, escape
from bot.messages import MessageRef
from remediation.clock import timestamp, utcnow
from remediation.incidents import Incident, IncidentState

if TYPE_CHECKING:
    from slack_sdk import WebClient

logger = logging.getLogger(__name__)

MIN_UPDATE_INTERVAL = timedelta(seconds=1)
_CLAIM_ATTEMPTS = 3
_FINAL_RETRY_PAUSES = (2.0, 5.0)  # seconds; the executor can wait, a click cannot
_S = IncidentState


class MessageStore(Protocol):
    def get(self, incident_id: str) -> MessageRef | None: ...

    def create(self, ref: MessageRef) -> bool: ...

    def claim(self, old: MessageRef, new: MessageRef) -> bool: ...


class SlackNotifier:
    def __init__(
        self,
        *,
        client: WebClient,
        messages: MessageStore,
        default_channel: str | None,
        min_interval: timedelta = MIN_UPDATE_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._messages = messages
        self._default_channel = default_channel
        self._min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._update_failed = False

    def incident_opened(self, incident: Incident) -> None:
        channel = incident.plan.notify or self._default_channel
        if not channel:
            logger.warning("no Slack channel for the incident", extra=_fields(incident))
            return
        response = self._call("chat_postMessage", incident, channel=channel, **_message(incident))
        if response is not None:
            ref = MessageRef.showing(incident, channel=response["channel"], ts=response["ts"], now=self._clock())
            self._messages.create(ref)

    def incident_updated(self, incident: Incident) -> None:
        self._refresh(incident, force=False)

    def approval_needed(self, incident: Incident) -> None:
        ref = self._refresh(incident, force=True)
        target = incident.plan.approval.escalate_to
        if ref is None or not incident.escalated or not target or not target.startswith(("#", "C", "G")):
            return
        link = self._call("chat_getPermalink", incident, channel=ref.channel, message_ts=ref.ts)
        where = f" <{link['permalink']}|in the incident's thread>" if link is not None else ""
        text = f":rotating_light: Escalated to you: {incident_text(incident)}; decide{where}"
        self._call("chat_postMessage", incident, channel=target, text=cut(text, FALLBACK_TEXT))

    def step_progress(self, incident: Incident, *, step: int, message: str) -> None:
        ref = self._refresh(incident, force=True)
        action = incident.plan.steps[step].action if step < len(incident.plan.steps) else "?"
        if ref is not None:
            self._reply(ref, incident, f"Step {step + 1} `{escape(action)}`: {escape(message)}")

    def incident_finished(self, incident: Incident) -> None:
        """The last word on an incident: worth a short wait when Slack is rate limiting."""
        for pause in (*_FINAL_RETRY_PAUSES, None):
            self._refresh(incident, force=True)
            if not self._update_failed or pause is None:
                return
            self._sleep(pause)

    def note(self, incident_id: str, text: str) -> None:
        """A line in the incident's thread (an undo request, say); nothing when it has no message."""
        ref = self._messages.get(incident_id)
        if ref is not None:
            self._reply(ref, None, text)

    def _refresh(self, incident: Incident, *, force: bool) -> MessageRef | None:
        """Update the message unless another writer did, or it is a fold within `min_interval`."""
        self._update_failed = False
        for _ in range(_CLAIM_ATTEMPTS):
            ref = self._messages.get(incident.id)
            if ref is None:
                logger.info("no Slack message for the incident yet: update skipped", extra=_fields(incident))
                return None
            if timestamp(incident.updated_at) < ref.incident_updated_at:
                return ref  # a newer state is already shown
            if not force and timestamp(incident.updated_at) == ref.incident_updated_at:
                return ref  # exactly this state is already shown
            lines = news(ref, incident)
            now = self._clock()
            if not lines and not force and now - ref.updated_at < self._min_interval:
                return ref
            shown = MessageRef.showing(incident, channel=ref.channel, ts=ref.ts, now=now)
            if self._messages.claim(ref, shown):
                if self._call("chat_update", incident, channel=ref.channel, ts=ref.ts, **_message(incident)) is None:
                    # Slack did not take it: the record must not claim the message shows this state,
                    # so the next news of this incident renders it again.
                    current = self._messages.get(incident.id)
                    if current is not None:
                        self._messages.claim(current, ref)
                    self._update_failed = True
                    return None
                for line in lines:
                    self._reply(ref, incident, line)
                return shown
            if not lines and not force:
                return ref  # another writer is updating this message right now
        logger.warning("Slack message update lost every race", extra=_fields(incident))
        return None

    def _reply(self, ref: MessageRef, incident: Incident | None, text: str) -> None:
        self._call("chat_postMessage", incident, channel=ref.channel, thread_ts=ref.ts, text=cut(text, FALLBACK_TEXT))

    def _call(self, method: str, incident: Incident | None, **arguments: Any) -> Any:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            return getattr(self._client, method)(**arguments)
        except (SlackApiError, SlackClientError, OSError) as problem:
            extra = _fields(incident) if incident is not None else {}
            error = problem.response.get("error") if isinstance(problem, SlackApiError) else type(problem).__name__
            logger.warning("Slack %s failed: %s", method, error, extra={**extra, "slack_method": method})
            return None


def news(ref: MessageRef, incident: Incident) -> list[str]:
    """Thread lines for what changed since the message last showed `ref`: approvals, then the new state."""
    lines = [
        f":white_check_mark: Approved by <@{user}> ({incident.approval_progress()})"
        for user in incident.approved_by
        if user not in ref.approvers
    ]
    if incident.state.value != ref.state:
        lines.append(_state_line(incident, previous=ref.state))
    return lines


def _state_line(incident: Incident, *, previous: str) -> str:
    state = incident.state
    if state is _S.REJECTED:
        return f":no_entry: Rejected by <@{incident.rejected_by}>"
    if state is _S.APPROVED and incident.break_glass:
        return ":warning: Approved at timeout (break-glass) by policy: review required"
    if state is _S.APPROVED:
        return ":white_check_mark: Approved: queued for execution"
    if state is _S.AWAITING_APPROVAL and previous == _S.NEEDS_INPUT.value:
        supplied = ", ".join(f"{key}={value}" for key, value in incident.inputs.items())
        return f":pencil2: Input supplied ({escape(supplied)}): awaiting approval"
    if state is _S.ESCALATED:
        return f":rotating_light: No decision in time: escalated to {escape(incident.plan.approval.escalate_to or '?')}"
    if state is _S.EXPIRED:
        return ":alarm_clock: Expired: nobody decided before the deadline"
    if state is _S.FAILED:
        return f":x: Failed: {escape(incident.last_error or 'no error recorded')}"
    if state is _S.SUCCEEDED:
        return ":large_green_circle: Succeeded: every step done (Undo is on the message)"
    return f"State: {previous} → {state.value}"


def _message(incident: Incident) -> dict[str, Any]:
    return {"text": incident_text(incident), "blocks": incident_blocks(incident)}


def _fields(incident: Incident) -> dict[str, Any]:
    return {"incident_id": incident.id, "state": incident.state.value, "playbook": incident.playbook}
