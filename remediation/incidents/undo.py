"""Undo decisions: who may ask to revert a succeeded incident, and who must approve before it runs.

An undo that re-grants access or lifts a containment is as consequential as the step it reverses,
so it needs the same approval policy: `min_approvals` approvers other than the one who asked, never
the alert's subject. Which undos those are is `UNDO_REOPENS`, keyed by the action a step ran (the
actions declare their `inverse`; what the inverse does to security is said here, in one place).
Other undos (re-cordoning after an uncordon, say) are queued on the request alone.

Pure functions like `.decisions`: the engine applies them through `store.update` and enqueues the
undo once `undo_requested` is set; `.history` audits the requester and every approver.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from remediation.incidents.decisions import ApproverDirectory, DecisionRefused, refuse_subject, require_approver
from remediation.incidents.model import Approval, Incident, IncidentState, UndoRequest
from remediation.plans import Plan

UNDO_REOPENS: Mapping[str, str] = {
    "kubernetes.delete_rbac_object": "restoring the RBAC object re-grants its access",
    "kubernetes.isolate_pod": "releasing the pod lifts its network isolation",
    "kubernetes.cordon_node": "uncordoning the node lets workloads land on it again",
    "kubernetes.drain_node": "uncordoning the drained node lets workloads land on it again",
    "kubernetes.scale_to_zero": "scaling the workload back up runs it again",
    "registry.quarantine_tag": "releasing the tag lets it be pulled again",
}
"""Actions whose undo re-grants access or lifts a containment, with what the undo would do."""


def undo_reopens(plan: Plan) -> list[str]:
    """What undoing the plan's steps would re-grant or lift (empty: a single approver's request is enough)."""
    return [UNDO_REOPENS[step.action] for step in plan.steps if step.action in UNDO_REOPENS]


def request_undo(incident: Incident, *, user: str, at: datetime, directory: ApproverDirectory) -> Incident:
    """`user`, an approver, asks for the undo. Queued at once (`undo_requested`) when it reopens
    nothing; otherwise it waits for the policy's approvals. A second approver asking for the undo
    already pending agrees with it: that counts as their approval."""
    if incident.state is not IncidentState.SUCCEEDED:
        raise DecisionRefused(f"only a succeeded incident can be undone; {incident.id} is {incident.state.value}")
    if incident.undo_requested:
        raise DecisionRefused("an undo of this incident is already queued for the executor")
    if incident.undo_pending:
        return approve_undo(incident, user=user, at=at, directory=directory)
    _require_undo_approver(incident, user=user, directory=directory)
    refuse_subject(incident, user=user, directory=directory)
    required = incident.required_approvals if undo_reopens(incident.plan) else 0
    undo = UndoRequest(requester=user, at=at, required=required)
    return dataclasses.replace(incident, undo=undo, undo_requested=required == 0, updated_at=at)


def approve_undo(incident: Incident, *, user: str, at: datetime, directory: ApproverDirectory) -> Incident:
    """One approval of the pending undo; the last one needed queues it (`undo_requested`)."""
    undo = incident.undo
    if undo is None or not incident.undo_pending:
        raise DecisionRefused(f"no undo of {incident.id} is waiting for approval")
    if user == undo.requester:
        raise DecisionRefused(f"you asked for this undo, so other approvers must approve it ({undo.progress()})")
    if user in undo.approved_by:
        raise DecisionRefused(f"already approved by you ({undo.progress()})")
    _require_undo_approver(incident, user=user, directory=directory)
    refuse_subject(incident, user=user, directory=directory)
    approved = dataclasses.replace(undo, approvals=(*undo.approvals, Approval(user=user, at=at)))
    queued = len(approved.approvals) >= approved.required
    return dataclasses.replace(incident, undo=approved, undo_requested=queued, updated_at=at)


def reject_undo(incident: Incident, *, user: str, at: datetime, directory: ApproverDirectory) -> Incident:
    """An approver withdraws the pending undo (its requester included): nothing is queued."""
    if not incident.undo_pending:
        raise DecisionRefused(f"no undo of {incident.id} is waiting for approval")
    _require_undo_approver(incident, user=user, directory=directory)
    return dataclasses.replace(incident, undo=None, updated_at=at)


def _require_undo_approver(incident: Incident, *, user: str, directory: ApproverDirectory) -> None:
    try:
        require_approver(incident, user=user, directory=directory)
    except DecisionRefused:
        raise DecisionRefused(f"only an approver of playbook {incident.playbook} may undo its incidents") from None
