"""Remediation actions: the typed registry of what a playbook step may do.

`registry` holds the one list (`ACTIONS`, `get_action`); the families hold parameter models
(`kubernetes`, `acr`, `notify`); `catalogue` renders the registry as `docs/actions.md`.
`remediation.playbooks` validates steps against this registry; the executor (a later issue)
will attach preview, apply and undo to the same names.
"""

from __future__ import annotations

from remediation.actions.params import ActionParams
from remediation.actions.registry import ACTIONS, ActionSpec, UnknownAction, get_action

__all__ = ["ACTIONS", "ActionParams", "ActionSpec", "UnknownAction", "get_action"]
