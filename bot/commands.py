"""`/remediate`: help, list, show, undo, run and simulate, answered ephemerally in the ack.

Neighbours: `bot.app` routes the slash command here and acknowledges with the returned answer
(`response_type: ephemeral`). `run` builds a synthetic Signal for the playbook from `key=value`
targets and asks `Engine.run_manual` for a manual incident (approvers of the playbook only, its
conditions must hold, previewed; the requester may not approve it); `simulate` normalises pasted
event JSON and plans it like `remediate simulate`, storing nothing.
"""

from __future__ import annotations

import dataclasses
import shlex
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.blocks import incident_blocks
from bot.directory import Visibility
from bot.limits import FALLBACK_TEXT, SECTION_TEXT, cut, escape
from bot.views import NOT_VISIBLE
from remediation.engine import Engine
from remediation.incidents import WAITING, DecisionRefused, IncidentState, UnknownIncident
from remediation.signals import TARGET_FIELDS, Rejection, Severity, Signal, Targets, decode_batch, parse_any

HELP = """*`/remediate`* — the remediation bot
• `list` — open incidents (approvers and viewers)
• `show ID` — one incident with its buttons (its approvers and viewers)
• `undo ID` — revert a succeeded incident (approvers only)
• `run PLAYBOOK key=value ...` — a manual run; targets are Signal fields (e.g. `namespace=shop pod=web-1`); \
another approver must approve it
• `simulate {event JSON}` — what the playbooks would do with an alert or registry event; nothing is stored
• `help` — this text"""
OPEN_STATES = (*sorted(WAITING), IncidentState.APPROVED, IncidentState.EXECUTING)

Note = Callable[[str, str], None]


class Commands:
    def __init__(self, *, engine: Engine, visibility: Visibility, note: Note | None = None) -> None:
        self._engine = engine
        self._visibility = visibility
        self._note = note

    def answer(self, *, text: str, user: str) -> dict[str, Any]:
        """The ephemeral reply to `/remediate text` from `user`."""
        verb, _, rest = text.strip().partition(" ")
        handlers: dict[str, Callable[[str, str], dict[str, Any]]] = {
            "list": self._list,
            "show": self._show,
            "undo": self._undo,
            "run": self._run,
            "simulate": self._simulate,
        }
        handler = handlers.get(verb.lower())
        if handler is None:
            return _reply(HELP if verb in ("", "help") else f"Unknown command `{escape(verb)}`.\n{HELP}")
        return handler(rest.strip(), user)

    def _list(self, _: str, user: str) -> dict[str, Any]:
        policies = (playbook.approval for playbook in self._engine.playbooks)
        if not self._visibility.may_see_any(user=user, policies=policies):
            return _reply(NOT_VISIBLE)
        incidents = self._engine.incidents.live(states=OPEN_STATES)
        if not incidents:
            return _reply("No open incidents.")
        lines = [
            f"`{i.id}` {i.state.value} · {escape(i.playbook)} · {i.approval_progress()} · {i.occurrences} alert(s)"
            for i in incidents
        ]
        return _reply(f"{len(incidents)} open incident(s):\n" + "\n".join(lines))

    def _show(self, incident_id: str, user: str) -> dict[str, Any]:
        incident = self._engine.incidents.get(incident_id) if incident_id else None
        if incident is not None and not self._visibility.may_see(incident, user=user):
            return _reply(NOT_VISIBLE)
        if incident is None:
            return _reply(f"There is no incident `{escape(incident_id)}`. Try `/remediate list`.")
        from remediation.blast_radius import headline

        where = f" · {escape(headline(incident.blast_radius))}" if incident.blast_radius else ""  # where its image runs
        return {**_reply(f"Incident {incident.id}{where}"), "blocks": incident_blocks(incident)}

    def _undo(self, incident_id: str, user: str) -> dict[str, Any]:
        try:
            incident = self._engine.request_undo(incident_id, user=user)
        except DecisionRefused as refused:
            return _reply(f"Not undone: {refused.reason}")
        except UnknownIncident:
            return _reply(f"There is no incident `{escape(incident_id)}`.")
        undo = incident.undo
        verb = "requested" if undo is None or undo.requester == user else "approved"
        progress = f" ({undo.progress()})" if undo is not None and undo.required else ""
        if self._note is not None:
            self._note(incident_id, f":leftwards_arrow_with_hook: Undo {verb} by <@{user}> with /remediate{progress}")
        if incident.undo_requested:
            return _reply(f"Undo of `{incident_id}` queued for the executor.")
        return _reply(f"Undo of `{incident_id}` {verb}{progress}: other approvers must approve it before it runs.")

    def _run(self, arguments: str, user: str) -> dict[str, Any]:
        try:
            name, *pairs = shlex.split(arguments)
            targets = dict(pair.split("=", 1) for pair in pairs)
        except ValueError:
            return _reply("Usage: `/remediate run PLAYBOOK key=value ...`")
        playbook = self._engine.playbooks.get(name)
        if playbook is None:
            known = ", ".join(f"`{p.name}`" for p in self._engine.playbooks)
            return _reply(f"There is no playbook `{escape(name)}`. Playbooks: {known}")
        unknown = sorted(set(targets) - set(TARGET_FIELDS))
        if unknown:
            return _reply(f"Unknown target field(s): {escape(', '.join(unknown))}. Known: {', '.join(TARGET_FIELDS)}")
        signal = _manual_signal(playbook.source, playbook.types[0], targets=targets, user=user)
        if playbook.min_severity is not None:  # a person asking is the alert: as severe as the playbook asks
            signal = dataclasses.replace(signal, severity=playbook.min_severity)
        try:
            incident = self._engine.run_manual(playbook=name, signal=signal, requester=user)
        except DecisionRefused as refused:
            return _reply(f"Not run: {escape(refused.reason)}")
        return _reply(f"Opened `{incident.id}` ({incident.state.value}); another approver must approve it.")

    def _simulate(self, text: str, _: str) -> dict[str, Any]:
        if not text:
            return _reply("Paste the event JSON after `simulate`.")
        lines = []
        for outcome in decode_batch(text, parse_any):
            if isinstance(outcome, Rejection):
                lines.append(f"rejected: {escape(outcome.reason)}")
            elif isinstance(outcome, Signal):
                lines += _simulated(self._engine, outcome)
            else:
                lines.append(f"skipped: {escape(outcome.kind)}")
        return _reply("*Simulation* (nothing stored)\n" + "\n".join(lines))


def _simulated(engine: Engine, signal: Signal) -> list[str]:
    targets = ", ".join(f"{key}={value}" for key, value in signal.targets.as_dict().items() if value)
    lines = [
        f"*{escape(signal.type)}* ({signal.severity.label}) `{escape(signal.id)}`: {escape(targets or 'no targets')}"
    ]
    plans = engine.playbooks.match(signal)
    if not plans:
        lines.append("  no playbook fires")
    for plan in plans:
        approval = plan.approval
        lines.append(f"  playbook `{plan.playbook}`: approval {approval.mode.value} ({approval.min_approvals} needed)")
        lines += [
            f"    {step.action}({escape(', '.join(f'{k}={v}' for k, v in step.params.items()))})" for step in plan.steps
        ]
        lines += [f"    needs input: {escape(missing.describe())}" for missing in plan.missing]
    return lines


def _manual_signal(source: Any, kind: str, *, targets: dict[str, str], user: str) -> Signal:
    return Signal(
        source=source,
        type=kind,
        id=f"manual:{uuid.uuid4()}",
        time=datetime.now(UTC),
        severity=Severity.INFORMATIONAL,
        targets=Targets(**targets),
        title=f"Manual run requested by {user}",
        actor=user,
    )


def _reply(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": cut(text, min(SECTION_TEXT, FALLBACK_TEXT))}
