"""One playbook's YAML mapping into a `Playbook`: name, trigger, conditions, steps, approval, grouping.

`loader` reads files and calls `parse_playbook` once per file; the pieces are checked by
`schema` (plain values), `conditions`, `steps` (actions and parameters) and `references`. All
problems go to the file's `Problems`; a playbook is returned only when there were none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from remediation.actions.catalogue import ACTIONS, ActionClass
from remediation.actions.notify import slack_channel
from remediation.plans import ApprovalMode, ApprovalPolicy, OnTimeout
from remediation.playbooks.conditions import parse_conditions
from remediation.playbooks.errors import Problems, at
from remediation.playbooks.model import Playbook, Step
from remediation.playbooks.paths import Getter, UnknownPath, compile_path
from remediation.playbooks.schema import choice, duration, kind_of, mapping, positive_int, text, texts
from remediation.playbooks.steps import parse_steps
from remediation.signals.acr import ACR_EVENT_TYPES, DERIVED_EVENT_TYPES, full_event_type
from remediation.signals.model import Severity, Source

NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ALERT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_APPROVER = re.compile(r"^(?:[UW][A-Z0-9]{2,}|@[a-z0-9][a-z0-9._-]*)$")
_TOP_REQUIRED = ("name", "description", "on", "steps", "approval")
_TOP_OPTIONAL = ("when", "notify", "group_by")
DEFAULT_GROUP_WINDOW = timedelta(minutes=15)


def parse_playbook(
    raw: Any, file: Path, problems: Problems, *, actions: Mapping[str, ActionClass] = ACTIONS
) -> Playbook | None:
    obj = mapping(raw, "", problems, required=_TOP_REQUIRED, optional=_TOP_OPTIONAL)
    if obj is None:
        return None
    name = text(obj, "name", "", problems, pattern=NAME, expected="a name of a-z, 0-9 and '-' (at most 63)")
    problems.name = name if name is not None else _readable(obj.get("name"))
    description = text(obj, "description", "", problems, expected="a non-empty description")
    trigger = _trigger(obj.get("on"), problems)
    when = parse_conditions(obj["when"], "when", problems) if "when" in obj else ()
    steps = parse_steps(obj.get("steps"), problems, actions=actions)
    approval = _approval(obj.get("approval"), problems)
    notify = _channel(obj, "notify", "", problems)
    window, group_by = _group_by(obj.get("group_by"), steps, problems)
    raw_steps = obj.get("steps")
    if approval is not None and isinstance(raw_steps, list) and len(raw_steps) == len(steps):  # indices line up
        _check_unattended(approval, steps, problems)
    if problems or name is None or description is None or trigger is None or approval is None:
        return None
    source, types, min_severity = trigger
    return Playbook(
        name=name,
        description=description,
        file=file,
        source=source,
        types=types,
        steps=steps,
        approval=approval,
        min_severity=min_severity,
        when=when,
        notify=notify,
        group_window=window,
        group_by=tuple(path for path, _ in group_by),
        group_getters=tuple(get for _, get in group_by),
    )


def _readable(value: Any) -> str | None:
    """A bad name is still worth naming in messages when it is a short string."""
    return value if isinstance(value, str) and value and len(value) <= 100 else None


def _trigger(raw: Any, problems: Problems) -> tuple[Source, tuple[str, ...], Severity | None] | None:
    obj = mapping(raw, "on", problems, required=("source", "types"), optional=("min_severity",))
    if obj is None:
        return None
    source = choice(obj, "source", "on", problems, tuple(s.value for s in Source))
    types = texts(obj, "types", "on", problems, pattern=_ALERT_TYPE, expected="an alert or event type")
    if types == []:
        problems.add("on.types", "expected at least one type")
    severity = None
    if "min_severity" in obj:
        severity = Severity.parse(obj["min_severity"])
        if severity is None:
            labels = ", ".join(s.label for s in Severity)
            problems.add("on.min_severity", f"unknown severity {obj['min_severity']!r} (expected one of {labels})")
    if source is None or not types:
        return None
    return Source(source), _event_types(Source(source), types, problems), severity


def _event_types(source: Source, types: list[str], problems: Problems) -> tuple[str, ...]:
    """Registry types are normalised to their full form and must be ACR events (or ones the app derives)."""
    if source is not Source.REGISTRY:
        return tuple(types)
    known = ACR_EVENT_TYPES | DERIVED_EVENT_TYPES
    full = tuple(full_event_type(kind) for kind in types)
    for index, kind in enumerate(full):
        if kind not in known:
            expected = ", ".join(sorted(known))
            problems.add(
                f"on.types[{index}]", f"unknown registry event type {types[index]!r} (expected one of {expected})"
            )
    return full


def _approval(raw: Any, problems: Problems) -> ApprovalPolicy | None:
    keys = ("mode", "approvers", "min_approvals", "timeout", "on_timeout", "escalate_to")
    obj = mapping(raw, "approval", problems, required=(), optional=keys)
    if obj is None:
        return None
    default = ApprovalPolicy()
    mode = ApprovalMode(choice(obj, "mode", "approval", problems, tuple(m.value for m in ApprovalMode)) or default.mode)
    before = len(problems)
    approvers = texts(
        obj,
        "approvers",
        "approval",
        problems,
        pattern=_APPROVER,
        expected="a Slack user id (U...) or group handle (@name)",
    )
    approvers_readable = len(problems) == before
    on_timeout = OnTimeout(
        choice(obj, "on_timeout", "approval", problems, tuple(t.value for t in OnTimeout)) or default.on_timeout
    )
    policy = ApprovalPolicy(
        mode=mode,
        approvers=tuple(approvers or ()),
        min_approvals=positive_int(obj, "min_approvals", "approval", problems) or default.min_approvals,
        timeout=duration(obj, "timeout", "approval", problems) or default.timeout,
        on_timeout=on_timeout,
        escalate_to=_channel(obj, "escalate_to", "approval", problems),
    )
    _check_consistency(policy, obj, problems, count_approvers=approvers_readable)
    return policy


def _check_consistency(
    policy: ApprovalPolicy, obj: Mapping[str, Any], problems: Problems, *, count_approvers: bool
) -> None:
    """Cross-field rules; `count_approvers` is False when a bad approver entry was already reported."""
    for approver in sorted({a for a in policy.approvers if policy.approvers.count(a) > 1}):
        problems.add("approval.approvers", f"{approver} is listed more than once")
    if policy.mode is ApprovalMode.REQUIRED:
        has_groups = any(a.startswith("@") for a in policy.approvers)
        if not policy.approvers and "approvers" not in obj:
            problems.add("approval.approvers", "required when mode is required: who may approve?")
        elif count_approvers and not has_groups and policy.min_approvals > len(set(policy.approvers)):
            problems.add(
                "approval.min_approvals",
                f"{policy.min_approvals} approvals needed but only {len(set(policy.approvers))} approver(s) listed",
            )
    if policy.on_timeout is OnTimeout.ESCALATE and policy.escalate_to is None and "escalate_to" not in obj:
        problems.add("approval.escalate_to", "required when on_timeout is escalate")


def _check_unattended(policy: ApprovalPolicy, steps: tuple[Step, ...], problems: Problems) -> None:
    """A destructive step never runs without a person's approval: not by `mode: auto`, not at timeout."""
    unattended = []
    if policy.mode is ApprovalMode.AUTO:
        unattended.append(("approval.mode", "mode: auto"))
    if policy.on_timeout is OnTimeout.AUTO_APPROVE:
        unattended.append(("approval.on_timeout", "on_timeout: auto_approve"))
    for index, step in enumerate(steps):
        if not step.spec.destructive:
            continue
        for path, setting in unattended:
            problems.add(
                path,
                f"{setting} would run steps[{index}] ({step.action}) without an approver, and it is destructive: "
                "use mode: required (and on_timeout: deny or escalate)",
            )


def _channel(obj: Mapping[str, Any], key: str, path: str, problems: Problems) -> str | None:
    value = obj.get(key)
    if key not in obj:
        return None
    try:
        if isinstance(value, str):
            return slack_channel(value)
        raise ValueError("must be a Slack channel (#name or a C... id) or a user-group handle (@name)")
    except ValueError as problem:
        problems.add(at(path, key), f"{problem}, got {kind_of(value)}")
        return None


def _group_by(raw: Any, steps: tuple[Step, ...], problems: Problems) -> tuple[timedelta, list[tuple[str, Getter]]]:
    """The window and the key fields, sorted and unique; without `keys`, every field the steps reference."""
    if raw is None:
        return DEFAULT_GROUP_WINDOW, _referenced(steps)
    obj = mapping(raw, "group_by", problems, required=(), optional=("window", "keys"))
    if obj is None:
        return DEFAULT_GROUP_WINDOW, []
    window = duration(obj, "window", "group_by", problems) or DEFAULT_GROUP_WINDOW
    paths = texts(obj, "keys", "group_by", problems, expected="a Signal field path")
    if paths is None:
        return window, _referenced(steps)
    keys = []
    for index, path in enumerate(paths):
        try:
            keys.append((path, compile_path(path)))
        except UnknownPath as problem:
            problems.add(f"group_by.keys[{index}]", str(problem))
    return window, sorted(dict(keys).items())


def _referenced(steps: tuple[Step, ...]) -> list[tuple[str, Getter]]:
    found = {ref.path: ref.get for step in steps for _, ref in step.refs()}
    return sorted(found.items())
