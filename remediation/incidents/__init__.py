"""Incidents: what a Plan became once it met the world, its state machine, decisions and stores.

Neighbours: `remediation.playbooks` builds the Plan and `remediation.intake` hands the Signal; an
IncidentStore (`InMemoryIncidentStore` here, `remediation.store.incidents.TableIncidentStore` in
Azure) opens or folds the incident and audits every change into `remediation.audit`; the bot applies
people's decisions (`approve`, `reject`, `supply_input`, and for undos `.undo`'s `request_undo`,
`approve_undo`, `reject_undo`) and the timer `on_timeout` through `store.update`; the executor
moves approved incidents on with the `.lifecycle` functions; a `remediation.notifier.Notifier`
tells Slack. Everything here but the stores is pure.
"""

from remediation.incidents.decisions import (
    ApproverDirectory,
    DecisionRefused,
    IdentityDirectory,
    StaticDirectory,
    alert_subjects,
    approve,
    approver_entries,
    is_approver,
    is_policy_approver,
    on_timeout,
    reject,
    supply_input,
)
from remediation.incidents.history import SYSTEM_ACTOR, describe
from remediation.incidents.lifecycle import (
    can_fold,
    complete_step,
    fail,
    fold,
    guard_refusal,
    mark_undone,
    open_incident,
    refuse_guarded,
    start_execution,
    succeed,
)
from remediation.incidents.model import (
    TERMINAL_FOR_GROUPING,
    TRANSITIONS,
    WAITING,
    Approval,
    IllegalTransition,
    Incident,
    IncidentState,
    UndoRequest,
    check_transition,
    new_incident_id,
    transition,
)
from remediation.incidents.storage import Change, IncidentStore, InMemoryIncidentStore, UnknownIncident, checked, is_due
from remediation.incidents.undo import UNDO_REOPENS, approve_undo, reject_undo, request_undo, undo_reopens

__all__ = [
    "SYSTEM_ACTOR",
    "TERMINAL_FOR_GROUPING",
    "TRANSITIONS",
    "UNDO_REOPENS",
    "WAITING",
    "Approval",
    "ApproverDirectory",
    "Change",
    "DecisionRefused",
    "IdentityDirectory",
    "IllegalTransition",
    "InMemoryIncidentStore",
    "Incident",
    "IncidentState",
    "IncidentStore",
    "StaticDirectory",
    "UndoRequest",
    "UnknownIncident",
    "alert_subjects",
    "approve",
    "approve_undo",
    "approver_entries",
    "can_fold",
    "check_transition",
    "checked",
    "complete_step",
    "describe",
    "fail",
    "fold",
    "guard_refusal",
    "is_approver",
    "is_due",
    "is_policy_approver",
    "mark_undone",
    "new_incident_id",
    "on_timeout",
    "open_incident",
    "refuse_guarded",
    "reject",
    "reject_undo",
    "request_undo",
    "start_execution",
    "succeed",
    "supply_input",
    "transition",
    "undo_reopens",
]
