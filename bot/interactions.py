"""What a click does: Approve, Reject, Details, Undo, Provide input and the input modal's submission.

Neighbours: `bot.app` routes Bolt's listeners here; the engine (`remediation.engine.Engine`) records
each decision and enqueues approved work itself, and everything Slack should show (the shared
message, thread lines, the clicker's ephemeral answer) goes on the Slack outbox, so nothing in a
click waits on Slack or Kubernetes. Refusals (`DecisionRefused`: not an approver, the two-person
rule, already decided, expired, or too late: the deadline passed, and the engine applied the
playbook's `on_timeout` instead) are shown to the clicker alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.directory import Visibility
from bot.inputs import check_inputs
from bot.limits import FALLBACK_TEXT, cut
from bot.outbox import Outbox
from bot.views import NOT_VISIBLE, PARAM_BLOCK, details_blocks, input_modal, submitted_values
from remediation.engine import Engine
from remediation.incidents import DecisionRefused, Incident, IncidentState, UnknownIncident

if TYPE_CHECKING:
    from slack_sdk import WebClient

logger = logging.getLogger(__name__)


class Interactions:
    def __init__(self, *, engine: Engine, client: WebClient, outbox: Outbox, visibility: Visibility) -> None:
        self._engine = engine
        self._client = client
        self._outbox = outbox
        self._visibility = visibility

    def approve(self, *, payload: dict[str, Any]) -> None:
        pending = self._engine.incidents.get(_who_and_what(payload)[1])
        if pending is not None and pending.undo_pending:
            self.undo(payload=payload)  # Approve on an undo awaiting approval approves the undo
            return
        self._decide(payload, self._engine.approve, done="Your approval is recorded")

    def reject(self, *, payload: dict[str, Any]) -> None:
        self._decide(payload, self._engine.reject, done="Your rejection is recorded")

    def details(self, *, payload: dict[str, Any]) -> None:
        incident = self._incident(payload)
        if incident is None:
            return
        if not self._visibility.may_see(incident, user=payload["user"]["id"]):
            self._tell(payload, NOT_VISIBLE)  # names nobody: no list of whom to ask
            return
        self._tell(payload, f"Details of {incident.id}", blocks=details_blocks(incident))

    def undo(self, *, payload: dict[str, Any]) -> None:
        """Ask for the undo, or, on an undo another approver asked for, approve it."""
        user, incident_id = _who_and_what(payload)
        try:
            incident = self._engine.request_undo(incident_id, user=user)
        except (DecisionRefused, UnknownIncident) as refused:
            self._tell(payload, f"Not undone: {_reason(refused)}")
            return
        line, answer = undo_news(incident, user=user)
        self._outbox.note(incident_id, line)
        self._tell(payload, answer)

    def open_input(self, *, payload: dict[str, Any]) -> None:
        incident = self._incident(payload)
        if incident is None:
            return
        if incident.state is not IncidentState.NEEDS_INPUT:
            self._tell(payload, f"{incident.id} does not need input (it is {incident.state.value})")
            return
        if not self._engine.is_approver(incident, user=payload["user"]["id"]):
            # The input chooses the target: only those who may decide about the incident supply it.
            self._tell(payload, f"Only an approver of playbook {incident.playbook} may provide its input")
            return
        self._client.views_open(trigger_id=payload["trigger_id"], view=input_modal(incident))

    def submit_input(self, *, payload: dict[str, Any]) -> dict[str, Any] | None:
        """None to close the modal, or the `response_action: errors` answer naming each bad field."""
        view, user = payload["view"], payload["user"]["id"]
        incident = self._engine.incidents.get(view.get("private_metadata", ""))
        if incident is None:
            return None  # nothing to attach an error to; the incident is gone
        first = PARAM_BLOCK + (incident.plan.missing[0].param if incident.plan.missing else "")
        if not self._engine.is_approver(incident, user=user):  # the engine refuses too; say so before checking
            return {
                "response_action": "errors",
                "errors": {first: cut(f"only an approver of playbook {incident.playbook} may provide input", 150)},
            }
        values, errors = check_inputs(incident, submitted_values(view))
        if not errors:
            try:
                self._engine.supply_input(incident.id, user=user, params=values)
            except (DecisionRefused, UnknownIncident) as refused:
                errors = {first: cut(_reason(refused), 150)}
        if errors:
            logger.info("input refused", extra={"incident_id": incident.id, "fields": sorted(errors)})
            return {"response_action": "errors", "errors": errors}
        return None

    def _decide(self, payload: dict[str, Any], decide: Callable[..., Incident], *, done: str) -> None:
        user, incident_id = _who_and_what(payload)
        try:
            incident = decide(incident_id, user=user)
        except (DecisionRefused, UnknownIncident) as refused:
            logger.info(
                "decision refused", extra={"incident_id": incident_id, "actor": user, "reason": _reason(refused)}
            )
            self._tell(payload, f"Not recorded: {_reason(refused)}")
            return
        self._tell(payload, f"{done} ({incident.approval_progress()}; the incident is {incident.state.value})")

    def _incident(self, payload: dict[str, Any]) -> Incident | None:
        _, incident_id = _who_and_what(payload)
        incident = self._engine.incidents.get(incident_id)
        if incident is None:
            self._tell(payload, f"There is no incident {incident_id}")
        return incident

    def _tell(self, payload: dict[str, Any], text: str, *, blocks: list[dict[str, Any]] | None = None) -> None:
        """An ephemeral reply to the clicker, in the channel of the message they clicked (queued)."""
        channel = (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id")
        if channel:
            self._outbox.tell(channel=channel, user=payload["user"]["id"], text=cut(text, FALLBACK_TEXT), blocks=blocks)


def undo_news(incident: Incident, *, user: str) -> tuple[str, str]:
    """(thread line, answer to `user`) after `user`'s undo request or undo approval was recorded."""
    undo = incident.undo
    asked = undo is None or undo.requester == user
    progress = "" if undo is None or not undo.required else f" ({undo.progress()})"
    verb = "Undo requested" if asked else "Undo approved"
    if incident.undo_requested:
        line = f":leftwards_arrow_with_hook: {verb} by <@{user}>{progress}: queued for the executor"
        return line, "Undo queued: the executor reverts the steps and this message will show it"
    needed = "it re-grants access or lifts a containment, so other approvers must approve it (Undo or Approve)"
    line = f":leftwards_arrow_with_hook: {verb} by <@{user}>{progress}: {needed}"
    return line, f"{verb}{progress}: nothing runs until enough other approvers approve it"


def _who_and_what(payload: dict[str, Any]) -> tuple[str, str]:
    return payload["user"]["id"], str(payload["actions"][0].get("value", ""))


def _reason(problem: Exception) -> str:
    if isinstance(problem, DecisionRefused):
        return problem.reason
    if isinstance(problem, UnknownIncident):
        return f"there is no incident {problem.incident_id}"
    return str(problem)
