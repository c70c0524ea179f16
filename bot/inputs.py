"""Checking what a responder typed into the input modal against the actions' parameter models.

Neighbours: `bot.views` builds the modal (one input per missing parameter) and reads the submitted
values; `bot.interactions` hands the checked values to `Engine.supply_input`, or returns the errors
to Slack (`response_action: errors`, keyed by the input's block id). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from bot.limits import cut
from bot.views import PARAM_BLOCK
from remediation.actions.catalogue import get_action
from remediation.incidents import Incident

ERROR_TEXT = 150


def check_inputs(incident: Incident, typed: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(values to supply, errors by block id). Each step missing a parameter is validated whole, with
    every value typed for it, so cross-field rules (a Role needs a namespace) are checked too."""
    errors: dict[str, str] = {}
    for missing in incident.plan.missing:
        if missing.param not in typed:
            errors.setdefault(PARAM_BLOCK + missing.param, "required")
    values: dict[str, Any] = {}
    for index in sorted({missing.step for missing in incident.plan.missing}):
        wanted = [m.param for m in incident.plan.missing if m.step == index]
        if any(param not in typed for param in wanted):
            continue  # "required" says it; the step is checked once it is complete
        step = incident.plan.steps[index]
        merged = {**{k: v for k, v in step.params.items() if v is not None}, **{p: typed[p] for p in wanted}}
        try:
            model = get_action(step.action).validate(merged)
        except ValidationError as invalid:
            for problem in invalid.errors():
                where = str(problem["loc"][0]) if problem["loc"] else wanted[0]
                field = where if where in wanted else wanted[0]
                errors.setdefault(PARAM_BLOCK + field, cut(_message(where, problem["msg"], field), ERROR_TEXT))
            continue
        dumped = model.model_dump(mode="json")
        values.update({param: dumped[param] for param in wanted})
    return (values, errors) if not errors else ({}, errors)


def _message(where: str, message: str, field: str) -> str:
    return message if where == field else f"{where}: {message}"
