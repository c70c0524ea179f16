"""The incident message in Block Kit: pure functions of an Incident, within Slack's limits.

`bot.notifier` posts and updates it (one message per incident), `bot.interactions` and
`bot.commands` reuse it for Details and `/remediate show`; `bot.views` builds the modal and App
Home from the same pieces. The buttons' `value` is the incident id; their action ids are the
constants below, which `bot.app` routes. Everything taken from an alert is escaped and cut
(`bot.limits`), so no alert can make the API call fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.limits import (
    BUTTON_TEXT,
    CONTEXT_ELEMENTS,
    CONTEXT_TEXT,
    FALLBACK_TEXT,
    HEADER_TEXT,
    cut,
    escape,
    fit_blocks,
    mrkdwn,
    plain,
)
from remediation.incidents import Incident, IncidentState
from remediation.plans import PlannedStep

APPROVE = "incident.approve"
REJECT = "incident.reject"
DETAILS = "incident.details"
PROVIDE_INPUT = "incident.input"
UNDO = "incident.undo"

_S = IncidentState
_STATE_ICONS: Mapping[IncidentState, str] = {
    _S.OPEN: ":new:",
    _S.NEEDS_INPUT: ":pencil2:",
    _S.AWAITING_APPROVAL: ":hourglass_flowing_sand:",
    _S.ESCALATED: ":rotating_light:",
    _S.APPROVED: ":white_check_mark:",
    _S.EXECUTING: ":gear:",
    _S.SUCCEEDED: ":large_green_circle:",
    _S.FAILED: ":x:",
    _S.REJECTED: ":no_entry:",
    _S.EXPIRED: ":alarm_clock:",
    _S.UNDONE: ":leftwards_arrow_with_hook:",
}
_RUNNING = frozenset({_S.APPROVED, _S.EXECUTING, _S.SUCCEEDED, _S.FAILED, _S.UNDONE})


def incident_text(incident: Incident) -> str:
    """The notification text (and the fallback where blocks are not shown)."""
    signal = incident.signal
    headline = (
        f"{signal.get('severity', '?')} {signal.get('type', 'alert')}: {signal.get('title') or incident.playbook}"
    )
    return cut(f"[{incident.state.value}] {headline} ({incident.id})", FALLBACK_TEXT)


def incident_blocks(incident: Incident, *, buttons: bool = True) -> list[dict[str, Any]]:
    """The whole message: what happened, why, the steps, approval state or progress, and the buttons."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain(_headline(incident), limit=HEADER_TEXT)},
        {"type": "section", "text": mrkdwn(_what_happened(incident))},
        {"type": "section", "text": mrkdwn(f"*Why:* {escape(incident.plan.reason or incident.playbook)}")},
        {"type": "section", "text": mrkdwn(_steps(incident))},
    ]
    if incident.plan.missing:
        wanted = "\n".join(f"• {escape(missing.describe())}" for missing in incident.plan.missing)
        blocks.append({"type": "section", "text": mrkdwn(f"*Needs input:*\n{wanted}")})
    if incident.last_error:
        blocks.append({"type": "section", "text": mrkdwn(f"*Error:*\n```{escape(incident.last_error)}```")})
    blocks.append(_status(incident))
    if buttons and (actions := _buttons(incident)):
        blocks.append({"type": "actions", "block_id": f"incident:{incident.id}", "elements": actions})
    return fit_blocks(blocks)


def approval_state(incident: Incident) -> str:
    """E.g. "1 of 2 approvals: <@U1>"."""
    progress = incident.approval_progress()
    if not incident.approvals:
        return progress
    return f"{progress}: " + ", ".join(f"<@{user}>" for user in incident.approved_by)


def step_line(step: PlannedStep) -> str:
    params = ", ".join(f"{key}={value}" for key, value in step.params.items() if value is not None)
    return f"`{escape(step.action)}`" + (f" {escape(params)}" if params else "")


def resource_of(signal: Mapping[str, Any]) -> str:
    """The target in the words a responder knows it by: `key=value` for every target the alert named."""
    targets = signal.get("targets") or {}
    named = [f"{key}={value}" for key, value in targets.items() if value]
    return ", ".join(named) or "(no target named)"


def button(text: str, *, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": plain(text, limit=BUTTON_TEXT),
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def _headline(incident: Incident) -> str:
    signal = incident.signal
    title = signal.get("title") or signal.get("type") or incident.playbook
    return f"{_STATE_ICONS.get(incident.state, '')} {str(signal.get('severity', '')).capitalize()} {title}".strip()


def _what_happened(incident: Incident) -> str:
    signal = incident.signal
    lines = [
        f"*{escape(str(signal.get('type', 'alert')))}* · severity *{escape(str(signal.get('severity', '?')))}*"
        f" · playbook `{escape(incident.playbook)}`",
        f"*Resource:* {escape(resource_of(signal))}",
        f"*Seen:* {escape(str(signal.get('time', incident.first_seen.isoformat())))}",
    ]
    if incident.occurrences > 1:
        lines[-1] += f" · {incident.occurrences} occurrences, last {incident.last_seen.isoformat(timespec='seconds')}"
    link = signal.get("link")
    if isinstance(link, str) and link.startswith("https://") and len(link) < 1500:
        lines.append(f"<{escape(link)}|Open the alert in Defender for Cloud>")
    if incident.requester:
        lines.append(f"*Requested by:* <@{incident.requester}> (manual run)")
    return "\n".join(lines)


def _steps(incident: Incident) -> str:
    running = incident.state in _RUNNING
    lines = []
    for index, step in enumerate(incident.plan.steps):
        mark = _step_mark(incident, index) if running else f"{index + 1}."
        lines.append(f"{mark} {step_line(step)}")
    return "*Planned steps:*\n" + "\n".join(lines)


def _step_mark(incident: Incident, index: int) -> str:
    if index < incident.completed_steps:
        return ":white_check_mark:"
    if incident.state is _S.FAILED and index == incident.completed_steps:
        return ":x:"
    if incident.state is _S.EXECUTING and index == incident.completed_steps:
        return ":gear:"
    return ":white_small_square:"


def _status(incident: Incident) -> dict[str, Any]:
    elements = [mrkdwn(f"{_STATE_ICONS.get(incident.state, '')} *{incident.state.value}*", limit=CONTEXT_TEXT)]
    elements.append(mrkdwn(approval_state(incident), limit=CONTEXT_TEXT))
    approvers = ", ".join(_mention(entry) for entry in incident.plan.approval.approvers) or "nobody"
    elements.append(mrkdwn(f"approvers: {approvers}", limit=CONTEXT_TEXT))
    if incident.deadline is not None:
        stamp = int(incident.deadline.timestamp())
        fallback = incident.deadline.isoformat(timespec="minutes")
        elements.append(mrkdwn(f"decide by <!date^{stamp}^{{date_short_pretty}} {{time}}|{fallback}>"))
    if incident.rejected_by:
        elements.append(mrkdwn(f"rejected by <@{incident.rejected_by}>"))
    if incident.break_glass:
        elements.append(mrkdwn(":warning: approved at timeout (break-glass): review required"))
    elements.append(mrkdwn(f"`{incident.id}`"))
    return {"type": "context", "elements": elements[:CONTEXT_ELEMENTS]}


def _mention(entry: str) -> str:
    if entry.startswith("@"):
        return escape(entry)
    if entry.startswith("S"):
        return f"<!subteam^{entry}>"
    return f"<@{entry}>"


def _buttons(incident: Incident) -> list[dict[str, Any]]:
    value = incident.id
    details = button("Details", action_id=DETAILS, value=value)
    if incident.state in (_S.AWAITING_APPROVAL, _S.ESCALATED):
        return [
            button("Approve", action_id=APPROVE, value=value, style="primary"),
            button("Reject", action_id=REJECT, value=value, style="danger"),
            details,
        ]
    if incident.state is _S.NEEDS_INPUT:
        return [
            button("Provide input", action_id=PROVIDE_INPUT, value=value, style="primary"),
            button("Reject", action_id=REJECT, value=value, style="danger"),
            details,
        ]
    if incident.state is _S.SUCCEEDED:
        return [button("Undo", action_id=UNDO, value=value), details]
    return [details]
