"""A playbook's `steps`, checked against the action registry: names, parameters and literal values.

Every step names an action of `remediation.actions.catalogue`; its parameters must be that action's
(each required one given, as a literal or a reference), and literal values must pass the action's
parameter model. Values that come from references are only known per Signal; `resolve` checks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from remediation.actions.catalogue import ACTIONS, ActionClass, UnknownAction
from remediation.playbooks.conditions import parse_conditions
from remediation.playbooks.errors import Problems, at, did_you_mean, item
from remediation.playbooks.model import Step
from remediation.playbooks.references import INVALID, Ref, Template, parse_value, refs_of
from remediation.playbooks.schema import kind_of, mapping


def parse_steps(raw: Any, problems: Problems, *, actions: Mapping[str, ActionClass] = ACTIONS) -> tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        problems.add("steps", f"expected a non-empty list of steps, got {kind_of(raw)}")
        return ()
    parsed = (_step(entry, item("steps", index), problems, actions) for index, entry in enumerate(raw))
    return tuple(step for step in parsed if step is not None)


def _step(raw: Any, path: str, problems: Problems, actions: Mapping[str, ActionClass]) -> Step | None:
    obj = mapping(raw, path, problems, required=("action",), optional=("params", "when"))
    if obj is None:
        return None
    spec = _spec(obj.get("action"), at(path, "action"), problems, actions)
    when = parse_conditions(obj["when"], at(path, "when"), problems) if "when" in obj else ()
    raw_params = obj.get("params", {})
    if not isinstance(raw_params, dict):
        problems.add(at(path, "params"), f"expected a mapping of parameters, got {kind_of(raw_params)}")
        return None
    if spec is None:
        return None
    params = _params(spec, raw_params, at(path, "params"), problems)
    if params is None:
        return None
    referenced = {name: refs[0].path for name, value in params if (refs := refs_of(value))}
    return Step(action=spec.name, params=params, spec=spec, when=when, referenced=referenced)


def _spec(name: Any, path: str, problems: Problems, actions: Mapping[str, ActionClass]) -> ActionClass | None:
    if not isinstance(name, str):
        problems.add(path, f"expected an action name (one of {', '.join(sorted(actions))}), got {kind_of(name)}")
        return None
    if name not in actions:
        problems.add(path, f"{UnknownAction(name, actions)}{did_you_mean(name, actions)}")
        return None
    return actions[name]


def _params(
    spec: ActionClass, raw: Mapping[str, Any], path: str, problems: Problems
) -> tuple[tuple[str, Any], ...] | None:
    """The step's parameters with references parsed; None when any of them is wrong."""
    fields = spec.Params.model_fields
    before = len(problems)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in fields:
            expected = f"expected one of {', '.join(fields)}"
            hint = did_you_mean(str(name), fields)
            problems.add(at(path, str(name)), f"unknown parameter of {spec.name} ({expected}){hint}")
            continue
        values[name] = parse_value(value, at(path, name), problems)
    for name, info in fields.items():
        if info.is_required() and name not in raw:
            problems.add(at(path, name), f"missing required parameter of {spec.name}")
    _check_literals(spec, values, path, problems)
    if len(problems) > before:
        return None
    return tuple(values.items())


def _check_literals(spec: ActionClass, values: Mapping[str, Any], path: str, problems: Problems) -> None:
    """Validate the literal values; errors about parameters given by reference wait for a Signal."""
    deferred = {name for name, value in values.items() if isinstance(value, Ref | Template) or value is INVALID}
    literals = {name: value for name, value in values.items() if name not in deferred}
    try:
        spec.Params.model_validate(literals)
    except ValidationError as error:
        for detail in error.errors():
            loc = detail["loc"]
            name = str(loc[0]) if loc else ""
            if detail["type"] == "missing" or name in deferred or (not loc and deferred):
                continue  # missing ones are reported above; referenced ones are checked per Signal
            message = detail["msg"].removeprefix("Value error, ")
            problems.add(
                at(path, name) if name else path, f"invalid value {detail['input']!r} for {spec.name}: {message}"
            )
