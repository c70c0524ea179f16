"""The incident message in Block Kit: pure functions of an Incident, within Slack's limits.

`bot.notifier` posts and updates it (one message per incident), `bot.interactions` and
`bot.commands` reuse it for Details and `/remediate show`; `bot.views` builds the modal and App
Home from the same pieces. The buttons' `value` is the incident id; their action ids are the
constants below, which `bot.app` routes. Everything taken from an alert (title, description,
resource names, parameters, preview summaries and errors) is escaped and cut (`bot.limits`), so no
alert can mention anyone, broadcast, link elsewhere or make the API call fail; the one link is to
portal.azure.com. Each step shows its preview (what it would do to which target version); a step a
guard rail refused at preview says which guard, and Approve is then not offered at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

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
from remediation.blast_radius import FIRST_FEW, headline, workload_lines
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
_DECIDABLE = frozenset({_S.AWAITING_APPROVAL, _S.ESCALATED})
PORTAL = "https://portal.azure.com"
_PORTAL_HOST = "portal.azure.com"
_GUARD = re.compile(r"^guard '([^']+)'")
_ROUTES = {
    "defender_alerts_eventhub": "Event Hub (continuous export)",
    "defender_alerts_eventgrid": "Event Grid",
    "defender_alerts_http": "HTTP (workflow automation)",
    "registry_events": "Event Grid (registry)",
}
_LINK_MAX = 1500


def incident_text(incident: Incident) -> str:
    """The notification text (and the fallback where blocks are not shown)."""
    signal = incident.signal
    headline = (
        f"{signal.get('severity', '?')} {signal.get('type', 'alert')}: {signal.get('title') or incident.playbook}"
    )
    return cut(f"[{incident.state.value}] {escape(headline)} ({incident.id})", FALLBACK_TEXT)


def incident_blocks(incident: Incident, *, buttons: bool = True) -> list[dict[str, Any]]:
    """The whole message: what happened, why, the steps, approval state or progress, and the buttons."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain(_headline(incident), limit=HEADER_TEXT)},
        {"type": "section", "text": mrkdwn(_what_happened(incident))},
    ]
    if where := blast_radius_text(incident, limit=FIRST_FEW):
        blocks.append({"type": "section", "text": mrkdwn(where)})
    blocks += [
        {"type": "section", "text": mrkdwn(f"*Why:* {escape(incident.plan.reason or incident.playbook)}")},
        {"type": "section", "text": mrkdwn(_steps(incident))},
    ]
    if previews := _previews(incident):
        blocks.append({"type": "section", "text": mrkdwn(previews)})
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


def blast_radius_text(incident: Incident, *, limit: int | None = FIRST_FEW) -> str:
    """Where the incident's image runs, as measured at opening: the headline ('runs in 7 pods of 3
    workloads on 2 clusters; unknown: ...'), when, and the first `limit` workloads (None: all).
    Empty for an incident about no image."""
    blast = incident.blast_radius
    if not blast:
        return ""
    quarantine = any(step.action.startswith("registry.quarantine") for step in incident.plan.steps)
    line = f"*Where it runs:* {escape(headline(blast, quarantine=quarantine))}"
    if measured := _when(blast.get("measured_at")):
        line += f" · measured {measured}"
    lines = [line]
    for text in workload_lines(blast, limit=limit):
        more = text.startswith("and ") and limit is not None
        lines.append(f"• {escape(text)}" + (" (all in Details)" if more else ""))
    return "\n".join(lines)


def _when(stamp: Any) -> str:
    """A stored timestamp in the reader's time zone, with the ISO text as the fallback."""
    if not isinstance(stamp, str) or not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return escape(stamp)
    fallback = moment.isoformat(timespec="seconds")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time_secs}}|{escape(fallback)}>"


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
    title = escape(str(signal.get("title") or signal.get("type") or incident.playbook))
    severity = escape(str(signal.get("severity", ""))).capitalize()
    return f"{_STATE_ICONS.get(incident.state, '')} {severity} {title}".strip()


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
    route = _ROUTES.get(str(signal.get("route") or ""))
    if route:
        lines.append(f"*Arrived by:* {route}")
    description = signal.get("description")
    if isinstance(description, str) and description.strip():
        lines.append(f"*Description:* {escape(cut(description.strip(), 1000))}")
    link = portal_link(signal)
    if link is not None:
        lines.append(f"<{link}|Open in the Azure portal>")
    if incident.requester:
        lines.append(f"*Requested by:* <@{incident.requester}> (manual run)")
    return "\n".join(lines)


def portal_link(signal: Mapping[str, Any]) -> str | None:
    """A link to portal.azure.com only: the alert's own when it points there, else the portal page of
    the cluster or registry the alert names; None when neither is known. Ready for `<link|text>`."""
    link = signal.get("link")
    if isinstance(link, str) and len(link) < _LINK_MAX and _on_portal(link):
        return escape(link)
    targets = signal.get("targets") or {}
    for key in ("cluster_resource_id", "registry_resource_id"):
        resource_id = targets.get(key)
        if isinstance(resource_id, str) and resource_id.lower().startswith("/subscriptions/"):
            return escape(f"{PORTAL}/#@/resource{quote(resource_id, safe='/')}")
    return None


def _on_portal(link: str) -> bool:
    if any(char in link for char in "|<> \t\r\n"):
        return False
    try:
        parts = urlsplit(link)
        port = parts.port
    except ValueError:
        return False
    return parts.scheme == "https" and parts.hostname == _PORTAL_HOST and port is None and not parts.username


def guard_refusals(incident: Incident) -> list[tuple[int, str]]:
    """(step, guard name) for every step a guard rail refused at preview: such an incident is never approvable."""
    refused = []
    for preview in incident.previews:
        found = _GUARD.match(str(preview.get("error") or ""))
        if found:
            refused.append((int(preview.get("step", 0)), found.group(1)))
    return refused


def _previews(incident: Incident) -> str:
    """What each step would do, as previewed when the incident opened; empty when nothing was previewed."""
    lines = []
    for preview in sorted(incident.previews, key=lambda p: int(p.get("step", 0))):
        number = int(preview.get("step", 0)) + 1
        error = preview.get("error")
        if error:
            guard = _GUARD.match(str(error))
            if guard:
                lines.append(f"{number}. :no_entry: refused by guard *{escape(guard.group(1))}*: {escape(str(error))}")
            else:
                lines.append(f"{number}. :warning: could not be previewed: {escape(str(error))}")
            continue
        line = f"{number}. {escape(str(preview.get('summary') or ''))}"
        if preview.get("noop"):
            line += " (nothing to do)"
        target = preview.get("target")
        if isinstance(target, Mapping) and target:
            line += f" · target {escape(_target(target))}"
        other = (preview.get("changes") or {}).get("other_tags")
        if isinstance(other, list) and other:
            line += f"\n    also stops being pullable: {escape(', '.join(str(tag) for tag in other))}"
        lines.append(line)
    if not lines:
        return ""
    return "*Preview:*\n" + "\n".join(lines)


def _target(target: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in target.items() if value not in (None, "", [], {}))


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
    if incident.state in _DECIDABLE and guard_refusals(incident):
        return [details]  # a guard rail refused a step: nothing to approve (the engine closes it)
    if incident.state in _DECIDABLE:
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
