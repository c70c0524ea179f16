"""`SlackNotifier`: what the Slack outbox worker does, one Slack message per incident plus a threaded audit.

Neighbours: `bot.outbox.OutboxWorker` calls it with the incident as it is now (the engine's own
notifier is `bot.outbox.Outbox`, an enqueue); `bot.blocks` renders the message; `bot.messages`
remembers which message shows which incident, and at which revision. The first job posts the
message (a missing record always means post, never skip); every later one updates it
(`chat.update`), so a storm of alerts is one message whose count grows. Folds (nothing new but the
count) update at most once per `min_interval` per incident; a fold held back is shown when the
interval is over (`held_back`: the outbox runs its job again then), so a storm's last count is on
the message a second after its last alert.
Decisions, steps and results are also posted as replies in the message's thread. Which state is
newer is the incident's revision, never a clock. A call Slack did not take now (429, 5xx, a dropped
connection, or an `ok: false` Slack calls temporary: `TRANSIENT_ERRORS`) raises `SlackRetry` with
Slack's Retry-After, after undoing the record's claim, so the job runs again later and shows the same
news; other Slack errors are logged and dropped. Posts in another channel (an escalation, a `notify`
step's `channel`) link back to the incident's message and are retried the same way.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from bot.blocks import incident_blocks, incident_text
from bot.limits import FALLBACK_TEXT, cut, escape
from bot.messages import MessageRef
from bot.outbox import SlackRetry
from remediation import telemetry
from remediation.clock import utcnow
from remediation.incidents import Incident, IncidentState

if TYPE_CHECKING:
    from slack_sdk import WebClient

logger = logging.getLogger(__name__)

MIN_UPDATE_INTERVAL = timedelta(seconds=1)
DEFAULT_RETRY_SECONDS = 5.0
# Errors Slack answers with `ok: false` (often HTTP 200) that say "not now" rather than "never".
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "ratelimited", "request_timeout"})
_CLAIM_ATTEMPTS = 3
_S = IncidentState


class MessageStore(Protocol):
    def get(self, incident_id: str) -> MessageRef | None: ...

    def create(self, ref: MessageRef) -> bool: ...

    def claim(self, old: MessageRef, new: MessageRef) -> MessageRef | None: ...


class SlackNotifier:
    def __init__(
        self,
        *,
        client: WebClient,
        messages: MessageStore,
        default_channel: str | None,
        min_interval: timedelta = MIN_UPDATE_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._client = client
        self._messages = messages
        self._default_channel = default_channel
        self._min_interval = min_interval
        self._clock = clock

    def has_message(self, incident_id: str) -> bool:
        return self._messages.get(incident_id) is not None

    def held_back(self, incident: Incident, shown: MessageRef | None) -> float | None:
        """Seconds until the message, which `show` left at `shown`, may show `incident` (a fold inside
        the update interval); None when it shows `incident` or newer, or there is no message."""
        if shown is None or shown.incident_revision >= incident.revision:
            return None
        waited = (self._clock() - shown.updated_at).total_seconds()
        return max(0.0, self._min_interval.total_seconds() - waited)

    def show(self, incident: Incident, *, force: bool) -> MessageRef | None:
        """Post the incident's message if it has none, else bring it up to `incident`'s revision."""
        return self._refresh(incident, force=force)

    def incident_opened(self, incident: Incident) -> None:
        self.show(incident, force=True)

    def incident_updated(self, incident: Incident) -> None:
        self.show(incident, force=False)

    def incident_finished(self, incident: Incident) -> None:
        self.show(incident, force=True)

    def approval_needed(self, incident: Incident) -> None:
        """Show the incident; once escalated to a channel, ask there too (linking to the incident's
        thread). Either call failing for now raises SlackRetry, so the job, the post included, runs again."""
        ref = self.show(incident, force=True)
        target = incident.plan.approval.escalate_to
        if not incident.escalated or not target or not target.startswith(("#", "C", "G")):
            return
        link = self._link(ref, incident, label="in the incident's thread")
        text = f":rotating_light: Escalated to you: {incident_text(incident)}; decide{link or ''}"
        self.call("chat_postMessage", incident, channel=target, text=cut(text, FALLBACK_TEXT))

    def channel_post(self, incident: Incident, *, channel: str, text: str) -> None:
        """A `notify` step's message in `channel`, linking to the incident's message (posted first if
        need be); a user-group handle (`@name`) is mentioned with it in the incident's thread instead."""
        ref = self.show(incident, force=False)
        if channel.startswith("@"):
            if ref is None:
                logger.warning("no incident thread to mention %s in", channel, extra=_fields(incident))
                return
            self._reply(ref, incident, f"{self._group_mention(incident, channel)} {escape(text)}")
            return
        link = self._link(ref, incident, label=f"incident {incident.id}") or f" (incident {incident.id})"
        body = cut(escape(text), FALLBACK_TEXT - len(link)) + link
        self.call("chat_postMessage", incident, channel=channel, text=body)

    def _link(self, ref: MessageRef | None, incident: Incident, *, label: str) -> str | None:
        """` <permalink|label>` to the incident's message; None when it has none, or Slack gave no link."""
        if ref is None:
            return None
        found = self.call("chat_getPermalink", incident, channel=ref.channel, message_ts=ref.ts)
        return f" <{found['permalink']}|{label}>" if found is not None else None

    def _group_mention(self, incident: Incident, handle: str) -> str:
        """`<!subteam^ID>` for a user-group handle, which notifies its members; the handle as text
        when Slack does not know it."""
        listed = self.call("usergroups_list", incident, include_disabled=False)
        for group in (listed or {}).get("usergroups", []):
            if group.get("handle") == handle.removeprefix("@"):
                return f"<!subteam^{group['id']}>"
        return escape(handle)

    def step_progress(self, incident: Incident, *, step: int, message: str) -> None:
        ref = self.show(incident, force=True)
        action = incident.plan.steps[step].action if step < len(incident.plan.steps) else "?"
        if ref is not None:
            self._reply(ref, incident, f"Step {step + 1} `{escape(action)}`: {escape(message)}")

    def note(self, incident: Incident, text: str) -> None:
        """A line in the incident's thread (an undo request, say), its message posted first if need be."""
        ref = self.show(incident, force=False)
        if ref is not None:
            self._reply(ref, incident, text)

    def ephemeral(self, *, channel: str, user: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        arguments: dict[str, Any] = {"channel": channel, "user": user, "text": cut(text, FALLBACK_TEXT)}
        if blocks is not None:
            arguments["blocks"] = blocks
        self.call("chat_postEphemeral", None, **arguments)

    def _post(self, incident: Incident) -> MessageRef | None:
        channel = incident.plan.notify or self._default_channel
        if not channel:
            logger.warning("no Slack channel for the incident", extra=_fields(incident))
            return None
        response = self.call("chat_postMessage", incident, channel=channel, **_message(incident))
        if response is None:
            return None
        ref = MessageRef.showing(incident, channel=response["channel"], ts=response["ts"], now=self._clock())
        if not self._messages.create(ref):
            logger.warning("the incident got a second message in a race", extra=_fields(incident))
        return self._messages.get(incident.id)

    def _refresh(self, incident: Incident, *, force: bool) -> MessageRef | None:
        """Update the message unless a newer revision is shown, or it is a fold within `min_interval`."""
        for _ in range(_CLAIM_ATTEMPTS):
            ref = self._messages.get(incident.id)
            if ref is None:
                return self._post(incident)
            if incident.revision < ref.incident_revision:
                return ref  # a newer state is already shown
            if not force and incident.revision == ref.incident_revision:
                return ref  # exactly this state is already shown
            lines = news(ref, incident)
            now = self._clock()
            if not lines and not force and now - ref.updated_at < self._min_interval:
                return ref
            claimed = self._messages.claim(ref, MessageRef.showing(incident, channel=ref.channel, ts=ref.ts, now=now))
            if claimed is not None:
                try:
                    self.call("chat_update", incident, channel=ref.channel, ts=ref.ts, **_message(incident))
                    for line in lines:
                        self._reply(ref, incident, line)
                except SlackRetry:
                    # Slack did not take it: the record must not claim the message shows this state,
                    # so the retried job renders it, and its news, again.
                    current = self._messages.get(incident.id)
                    if current is not None:
                        self._messages.claim(current, ref)
                    raise
                # The interval counts from when Slack took the update, not from the claim: under load
                # a call can reach Slack late, and the next one must still come a full interval after it.
                shown = dataclasses.replace(claimed, updated_at=self._clock())
                return self._messages.claim(claimed, shown) or claimed
            if not lines and not force:
                return ref  # another writer is updating this message right now
        logger.warning("Slack message update lost every race", extra=_fields(incident))
        return None

    def _reply(self, ref: MessageRef, incident: Incident | None, text: str) -> None:
        self.call("chat_postMessage", incident, channel=ref.channel, thread_ts=ref.ts, text=cut(text, FALLBACK_TEXT))

    def call(self, method: str, incident: Incident | None = None, **arguments: Any) -> Any:
        """The Web API call's answer; None when Slack refused it for good (logged); SlackRetry when
        it should be tried again later (429 with its Retry-After, 5xx, a connection failure, one of
        `TRANSIENT_ERRORS`)."""
        from slack_sdk.errors import SlackApiError, SlackClientError

        extra = {**(_fields(incident) if incident is not None else {}), "slack_method": method}
        try:
            return getattr(self._client, method)(**arguments)
        except SlackApiError as problem:
            status = problem.response.status_code
            if status == 429:
                telemetry.SLACK_THROTTLED.add(1, {"method": method})
            if status == 429 or status >= 500:
                delay = _retry_after(problem.response.headers) if status == 429 else None
                raise SlackRetry(f"Slack {method}: HTTP {status}", delay=delay or DEFAULT_RETRY_SECONDS) from problem
            if (error := problem.response.get("error")) in TRANSIENT_ERRORS:
                raise SlackRetry(f"Slack {method}: {error}", delay=DEFAULT_RETRY_SECONDS) from problem
            logger.warning("Slack %s failed: %s", method, problem.response.get("error"), extra=extra)
            return None
        except (SlackClientError, OSError) as problem:
            raise SlackRetry(f"Slack {method}: {type(problem).__name__}", delay=DEFAULT_RETRY_SECONDS) from problem


def _retry_after(headers: Any) -> float | None:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return None
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
    if state is _S.REJECTED and incident.rejected_by is None:
        return f":no_entry: Refused by a guard rail: {escape(incident.last_error or 'no reason recorded')}"
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
