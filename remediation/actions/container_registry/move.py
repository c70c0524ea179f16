"""Quarantine mode `move`: import the image as `quarantine/<repo>:<tag>-<short digest>`, then untag it.

Neighbours: `arm` runs the import (a long-running operation), `acr_data` deletes the original tag;
`handler` dispatches here. The snapshot (see `common`) names the quarantine copy and keeps the
tag's attributes; `undo_move` imports the copy back under the original tag, restores them and
removes the copy. The manifest itself stays in the original repository (only the tag is gone), so
`repo@digest` remains pullable: `lock` is the mode that blocks digest pulls.
"""

from __future__ import annotations

import logging
from typing import Any

from remediation.actions.container_registry.acr_data import RegistryData, TagNotFound, TagState
from remediation.actions.container_registry.arm import RegistryControl
from remediation.actions.container_registry.job import Job
from remediation.actions.runtime import Outcome, StepContext, StepResult, TargetChanged, prior_snapshot, snapshot_once

logger = logging.getLogger(__name__)


def move_changes(job: Job, state: TagState) -> dict[str, Any]:
    return {
        "mode": "move",
        "import": {"source": f"{job.repository}@{state.digest}", "target": _copy(job, state.digest)},
        "delete_tag": job.name,
        "tag": {"before": state.tag},
    }


def _copy(job: Job, digest: str) -> str:
    return f"{job.quarantine_repository}:{job.quarantine_tag(digest)}"


def apply_move(
    data: RegistryData, control: RegistryControl, job: Job, state: TagState | None, ctx: StepContext
) -> StepResult:
    """`state` is None when the tag is gone: finish an earlier attempt of this step, or fail."""
    if state is None:
        return _resume(data, control, job, ctx)
    saved = snapshot_once(
        ctx,
        job.document(
            "move",
            state.digest,
            tag_attributes=state.tag,
            manifest_attributes=state.manifest,
            quarantine=_copy(job, state.digest),
        ),
    )
    _ensure_copy(data, control, job, state.digest, ctx)
    if not state.tag.get("can_delete", True):
        data.set_tag(job.ref, job.repository, job.tag, {"can_delete": True})
    data.delete_tag(job.ref, job.repository, job.tag)
    logger.info("tag moved", extra={"registry": job.ref.login_server, "target": job.name, "digest": state.digest})
    return job.result(
        Outcome.APPLIED,
        f"{job.where} moved to {_copy(job, state.digest)} and removed",
        target=job.target(state.digest),
        snapshot=ctx.snapshot_key,
        undo=saved,
    )


def _ensure_copy(data: RegistryData, control: RegistryControl, job: Job, digest: str, ctx: StepContext) -> None:
    copy_tag = job.quarantine_tag(digest)
    if data.exists(job.ref, job.quarantine_repository, copy_tag) == digest:
        return  # an earlier attempt imported it
    ctx.progress(f"importing {job.repository}@{digest} as {_copy(job, digest)}")
    # Force: the target name carries the digest, so overwriting it can only write the same image.
    control.import_image(job.ref, source=f"{job.repository}@{digest}", target=_copy(job, digest), mode="Force")


def _resume(data: RegistryData, control: RegistryControl, job: Job, ctx: StepContext) -> StepResult:
    earlier = prior_snapshot(ctx)
    if earlier is None or earlier.get("mode") != "move":
        raise TagNotFound(f"{job.where} does not exist")
    digest = str(earlier["digest"])
    _ensure_copy(data, control, job, digest, ctx)
    return job.result(
        Outcome.APPLIED,
        f"{job.where} moved to {earlier['quarantine']} and removed",
        target=job.target(digest),
        snapshot=ctx.snapshot_key,
        undo=earlier,
    )


def undo_move(data: RegistryData, control: RegistryControl, job: Job, document: dict[str, Any]) -> StepResult:
    digest = str(document["digest"])
    copy_repository, _, copy_tag = str(document["quarantine"]).rpartition(":")
    current = data.exists(job.ref, job.repository, job.tag)
    if current is None:
        # NoForce: a tag pushed since the quarantine is never overwritten.
        control.import_image(job.ref, source=f"{copy_repository}@{digest}", target=job.name, mode="NoForce")
    elif current != digest:
        raise TargetChanged(f"{job.where} was pushed again ({current}) since the quarantine: not overwritten")
    data.set_tag(job.ref, job.repository, job.tag, dict(document["tag_attributes"]))
    data.set_manifest(job.ref, job.repository, digest, dict(document["manifest_attributes"]))
    if data.exists(job.ref, copy_repository, copy_tag) is not None:
        data.delete_tag(job.ref, copy_repository, copy_tag)
    logger.info("tag restored", extra={"registry": job.ref.login_server, "target": job.name, "digest": digest})
    return job.result(
        Outcome.UNDONE,
        f"{job.where} restored from {document['quarantine']} with its previous attributes",
        target=job.target(digest),
    )
