"""A step's parameters for one Signal: references filled in, then checked against the action's model.

Called by `matcher` for each step of a firing playbook. Literal values were validated at load;
values read from the Signal are validated here, so a plan never asks anyone to approve a value the
action would refuse. What cannot be filled becomes a `MissingParam` for a person to supply:
- a required reference whose field is absent;
- a value the action refuses (a namespace that is not DNS-1123, say); when the values refused
  cannot be pinned on one parameter, every parameter read from the Signal is handed back.
An optional reference means "when the Signal has a value the action accepts": a refused optional
value is left out, like an absent one (a namespace beside a ClusterRoleBinding, for instance).
Values are passed on as read (text); the executor validates them with the model again, which is
where a numeric string becomes an int.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import ValidationError

from remediation.actions.catalogue import ActionClass
from remediation.plans import MissingParam
from remediation.playbooks.model import Step
from remediation.playbooks.references import Ref, Template
from remediation.signals.model import Signal


def resolve_step(step: Step, signal: Signal, index: int) -> tuple[dict[str, Any], list[MissingParam]]:
    """The parameters of plan step `index`, and what is missing from them."""
    params: dict[str, Any] = {}
    absent: dict[str, str] = {}  # parameter -> the Signal field it needed
    optional: list[str] = []
    for name, value in step.params:
        if type(value) is Ref:
            found = value.get(signal)
            if found:
                params[name] = found
                if value.optional:
                    optional.append(name)
            elif not value.optional:
                absent[name] = value.path
        elif type(value) is Template:
            text, unfilled = value.render(signal)
            if unfilled:
                absent[name] = unfilled[0].path
            else:
                params[name] = text
        else:
            params[name] = value
    if step.referenced:
        params = _checked(step, params, absent, optional)
    return params, [MissingParam(step=index, param=name, field=path) for name, path in absent.items()]


def _checked(step: Step, params: dict[str, Any], absent: dict[str, str], optional: list[str]) -> dict[str, Any]:
    refused = _refused(step.spec, params, absent)
    dropped = [name for name in optional if name in refused]
    if dropped:
        for name in dropped:
            del params[name]
        refused = _refused(step.spec, params, absent)
    if not refused:
        return params  # valid, or only the absent parameters failed and they are already missing
    # A refusal not pinned on a referenced parameter still comes from Signal values: literals passed at load.
    blamed = refused if refused <= step.referenced.keys() else set(step.referenced)
    for name in sorted(blamed - absent.keys()):
        params.pop(name, None)
        absent[name] = step.referenced[name]
    return params


def _refused(spec: ActionClass, params: dict[str, Any], absent: dict[str, str]) -> frozenset[str]:
    try:
        refused = _refusals(spec, tuple(params.items()))
    except TypeError:  # an unhashable literal: validate without the cache
        refused = _refusals.__wrapped__(spec, tuple(params.items()))
    return refused - absent.keys()


@functools.lru_cache(maxsize=4096)
def _refusals(spec: ActionClass, items: tuple[tuple[str, Any], ...]) -> frozenset[str]:
    """The parameters the action refuses ("" for the set as a whole).

    Cached because alert storms repeat the same cluster, node and names thousands of times, and
    validation is most of the cost of a plan.
    """
    try:
        spec.Params.model_validate(dict(items))
    except ValidationError as error:
        return frozenset(str(detail["loc"][0]) if detail["loc"] else "" for detail in error.errors())
    return frozenset()
