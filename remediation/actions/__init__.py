"""Remediation actions: one class per action, grouped by family, listed once in the catalogue.

`base` defines what an action declares (`Action`, `ActionParams`); `runtime` the contract it keeps
(failures, target versions, previews, step results, snapshots); `catalogue` is the one list;
`dispatch.ActionSet` binds it to runtimes for the executor; `docs` renders it. The families:
`kubernetes/`, `container_registry/` and `notify`.
"""

from __future__ import annotations

from remediation.actions.base import Action, ActionParams
from remediation.actions.catalogue import ACTIONS, CATALOGUE, UnknownAction, get_action

__all__ = ["ACTIONS", "CATALOGUE", "Action", "ActionParams", "UnknownAction", "get_action"]
