"""Incidents: what a Plan became once it met the world, its state machine, decisions and stores.

Neighbours: `remediation.playbooks` builds the Plan and `remediation.intake` hands the Signal; an
IncidentStore (`InMemoryIncidentStore` here, `remediation.store.incidents.TableIncidentStore` in
Azure) opens or folds the incident and audits every change into `remediation.audit`; the bot applies
people's decisions (`approve`, `reject`, `supply_input`) and the timer `on_timeout` through
`store.update`; the executor moves approved incidents on with the `.lifecycle` functions; a
`remediation.notifier.Notifier` tells Slack. Everything here but the stores is pure.
"""

from remediation.incidents.decisions import (
    ApproverDirectory,
    DecisionRefused,
    StaticDirectory,
    approve,
    approver_entries,
    is_approver,
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
    mark_undone,
    open_incident,
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
    check_transition,
    new_incident_id,
    transition,
)
from remediation.incidents.storage import Change, IncidentStore, InMemoryIncidentStore, UnknownIncident, checked, is_due

__all__ = [
    "SYSTEM_ACTOR",
    "TERMINAL_FOR_GROUPING",
    "TRANSITIONS",
    "WAITING",
    "Approval",
    "ApproverDirectory",
    "Change",
    "DecisionRefused",
    "IllegalTransition",
    "InMemoryIncidentStore",
    "Incident",
    "IncidentState",
    "IncidentStore",
    "StaticDirectory",
    "UnknownIncident",
    "approve",
    "approver_entries",
    "can_fold",
    "check_transition",
    "checked",
    "complete_step",
    "describe",
    "fail",
    "fold",
    "is_approver",
    "is_due",
    "mark_undone",
    "new_incident_id",
    "on_timeout",
    "open_incident",
    "reject",
    "start_execution",
    "succeed",
    "supply_input",
    "transition",
]
