"""Block Kit beyond the incident message: Details, the input modal and App Home. Pure functions.

Neighbours: `bot.blocks` (the incident message and its pieces), `bot.interactions` (opens the
modal, shows Details), `bot.home` (publishes App Home), `bot.app` (App Home's refusal). Whoever
calls these has already checked that the reader may see the incident (`bot.directory.Visibility`);
everything from an alert is escaped here as in `bot.blocks`. The modal's inputs are named
`param:<name>` so a validation error can name the field it belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.blocks import approval_state, blast_radius_text, incident_blocks, resource_of, step_line
from bot.limits import (
    INPUT_HINT,
    INPUT_LABEL,
    MODAL_TITLE,
    PLAIN_INPUT_MAX,
    SECTION_TEXT,
    VIEW_BLOCKS,
    cut,
    escape,
    fit_blocks,
    mrkdwn,
    plain,
)
from remediation.blast_radius import FIRST_FEW, cluster_name
from remediation.incidents import Incident

INPUT_CALLBACK = "incident.input.submit"
PARAM_BLOCK = "param:"
PARAM_ACTION = "value"
# Names nobody: a refusal must not tell a stranger whom to ask for a remediation.
NOT_VISIBLE = "You cannot see incidents here: only approvers and the configured viewers can."


def details_blocks(incident: Incident) -> list[dict[str, Any]]:
    """The incident message without buttons, plus the alert's extended properties and the deadline."""
    blocks = incident_blocks(incident, buttons=False)
    blocks += _blast_radius_blocks(incident)
    extended = incident.signal.get("extended_properties") or {}
    if extended:
        text = json.dumps(extended, indent=1, ensure_ascii=False)
        blocks.append({"type": "section", "text": mrkdwn(f"*Alert properties:*\n```{escape(cut(text, 2800))}```")})
    blocks.append({"type": "section", "text": mrkdwn(f"*Signal id:* `{escape(str(incident.signal.get('id')))}`")})
    return fit_blocks(blocks)


def _blast_radius_blocks(incident: Incident) -> list[dict[str, Any]]:
    """Every workload running the image and every cluster asked, when the message shows only the first few."""
    blast = incident.blast_radius
    if not blast or blast.get("status") != "measured":
        return []
    clusters = [
        f"{escape(cluster_name(str(c['cluster'])))}: "
        + (f"unknown ({escape(str(c['unknown']))})" if "unknown" in c else f"{c.get('pods', 0)} pod(s)")
        for c in blast.get("clusters") or ()
    ]
    blocks = [{"type": "section", "text": mrkdwn("*Clusters asked:* " + " · ".join(clusters))}]
    if len(blast.get("running") or ()) <= FIRST_FEW and not blast.get("more"):
        return blocks  # the message names them all already
    lines = blast_radius_text(incident, limit=None).split("\n")[1:]
    chunk: list[str] = ["*Every workload running it:*"]
    for line in lines:
        if sum(len(part) + 1 for part in chunk) + len(line) > SECTION_TEXT - 100 and len(chunk) > 1:
            blocks.append({"type": "section", "text": mrkdwn("\n".join(chunk))})
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append({"type": "section", "text": mrkdwn("\n".join(chunk))})
    return blocks


def input_modal(incident: Incident) -> dict[str, Any]:
    """One plain-text input per missing parameter; `private_metadata` carries the incident id."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": mrkdwn(f"*{escape(incident.playbook)}* · {escape(resource_of(incident.signal))}")}
    ]
    seen: set[str] = set()
    for missing in incident.plan.missing:
        if missing.param in seen:
            continue
        seen.add(missing.param)
        step = incident.plan.steps[missing.step]
        blocks.append(
            {
                "type": "input",
                "block_id": PARAM_BLOCK + missing.param,
                "label": plain(missing.param, limit=INPUT_LABEL),
                "hint": plain(
                    f"step {missing.step + 1}: {step.action} (the alert lacked {missing.field})", limit=INPUT_HINT
                ),
                "element": {"type": "plain_text_input", "action_id": PARAM_ACTION, "max_length": PLAIN_INPUT_MAX},
            }
        )
    return {
        "type": "modal",
        "callback_id": INPUT_CALLBACK,
        "private_metadata": incident.id,
        "title": plain("Provide input", limit=MODAL_TITLE),
        "submit": plain("Submit", limit=MODAL_TITLE),
        "close": plain("Cancel", limit=MODAL_TITLE),
        "blocks": fit_blocks(blocks, limit=VIEW_BLOCKS),
    }


def submitted_values(view: dict[str, Any]) -> dict[str, str]:
    """parameter -> the text typed in, from a view_submission's `view.state.values`."""
    values = view.get("state", {}).get("values", {})
    typed = {}
    for block_id, actions in values.items():
        if block_id.startswith(PARAM_BLOCK):
            value = (actions.get(PARAM_ACTION) or {}).get("value")
            if isinstance(value, str) and value.strip():
                typed[block_id.removeprefix(PARAM_BLOCK)] = value.strip()
    return typed


def refused_home_view() -> dict[str, Any]:
    """App Home for someone who may see no incident: says so, and names nobody to ask."""
    return {"type": "home", "blocks": [{"type": "section", "text": mrkdwn(NOT_VISIBLE)}]}


def home_view(*, incidents: Iterable[Incident], decisions: Iterable[tuple[datetime, str]]) -> dict[str, Any]:
    """App Home: the open incidents, then the last decisions (time, text)."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": plain("Open incidents")}]
    for incident in incidents:
        steps = "; ".join(step_line(step) for step in incident.plan.steps)
        text = (
            f"*{escape(incident.playbook)}* · {incident.state.value} · {approval_state(incident)}\n"
            f"{escape(resource_of(incident.signal))}\n{steps}\n`{incident.id}`"
        )
        blocks.append({"type": "section", "text": mrkdwn(text, limit=SECTION_TEXT)})
    if len(blocks) == 1:
        blocks.append({"type": "section", "text": mrkdwn("Nothing is waiting. :relieved:")})
    blocks.append({"type": "header", "text": plain("Last decisions")})
    lines = [f"{at.isoformat(timespec='minutes')} {text}" for at, text in decisions]
    blocks.append({"type": "section", "text": mrkdwn("\n".join(lines) or "No decisions yet.")})
    if len(blocks) > VIEW_BLOCKS:  # keep the decisions, drop the oldest open incidents from the listing
        blocks = [*blocks[: VIEW_BLOCKS - 3], *blocks[-2:]]
    return {"type": "home", "blocks": blocks}
