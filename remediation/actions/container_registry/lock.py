"""Quarantine mode `lock`: disable read, write and delete on the tag and on its manifest, in place.

Neighbours: `handler` dispatches here after resolving the registry and checking the approved
digest; `acr_data` does the PATCHes; the snapshot (see `common`) keeps the previous attributes,
which `undo` restores exactly. Nothing is deleted: neither `repo:tag` nor `repo@digest` can be
pulled while locked, and the evidence stays.
"""

from __future__ import annotations

import logging
from typing import Any

from remediation.actions.container_registry.acr_data import LOCKED, RegistryData, TagState
from remediation.actions.container_registry.job import Job
from remediation.actions.runtime import Outcome, StepContext, StepResult, TargetChanged, prior_snapshot, snapshot_once

logger = logging.getLogger(__name__)


def lock_changes(state: TagState) -> dict[str, Any]:
    return {
        "mode": "lock",
        "tag": {"before": state.tag, "after": {**state.tag, **LOCKED}},
        "manifest": {"digest": state.digest, "before": state.manifest, "after": {**state.manifest, **LOCKED}},
    }


def apply_lock(data: RegistryData, job: Job, state: TagState, ctx: StepContext) -> StepResult:
    target = job.target(state.digest)
    if state.locked():
        earlier = prior_snapshot(ctx)
        if earlier is None:
            return job.result(Outcome.NOOP, f"{job.where} is already locked: nothing to do", target=target)
        return job.result(
            Outcome.APPLIED, f"{job.where} locked", target=target, snapshot=ctx.snapshot_key, undo=earlier
        )
    saved = snapshot_once(
        ctx, job.document("lock", state.digest, tag_attributes=state.tag, manifest_attributes=state.manifest)
    )
    ctx.progress(f"locking {job.where} and {state.digest}")
    data.set_tag(job.ref, job.repository, job.tag, dict(LOCKED))
    data.set_manifest(job.ref, job.repository, state.digest, dict(LOCKED))
    logger.info("tag locked", extra={"registry": job.ref.login_server, "target": job.name, "digest": state.digest})
    return job.result(
        Outcome.APPLIED,
        f"{job.where} locked: the tag and {state.digest} can no longer be pulled, overwritten or deleted",
        target=target,
        snapshot=ctx.snapshot_key,
        undo=saved,
    )


def undo_lock(data: RegistryData, job: Job, document: dict[str, Any]) -> StepResult:
    digest = str(document["digest"])
    current = data.exists(job.ref, job.repository, job.tag)
    if current != digest:
        raise TargetChanged(f"{job.where} now points at {current or 'nothing'}, not the locked {digest}: not restored")
    data.set_tag(job.ref, job.repository, job.tag, dict(document["tag_attributes"]))
    data.set_manifest(job.ref, job.repository, digest, dict(document["manifest_attributes"]))
    logger.info("tag unlocked", extra={"registry": job.ref.login_server, "target": job.name, "digest": digest})
    return job.result(
        Outcome.UNDONE, f"{job.where} released: its previous attributes are restored", target=job.target(digest)
    )
