"""`registry.release_tag` on its own, without the quarantine step's snapshot to restore from.

Neighbours: `handler` dispatches here. Undoing a quarantine step (`handler.undo`) restores the
exact previous attributes from its snapshot; this standalone release cannot know them, so it sets
ACR's defaults for a pushed image (everything enabled) on a locked tag and its manifest, or, when
the tag is gone, imports the one quarantined copy `quarantine/<repo>:<tag>-<short digest>` back.
"""

from __future__ import annotations

from typing import Any

from remediation.actions.container_registry.acr_data import DEFAULTS, RegistryData
from remediation.actions.container_registry.arm import RegistryControl
from remediation.actions.container_registry.job import Job
from remediation.actions.runtime import Outcome, PermanentFailure, StepResult


def plan_release(data: RegistryData, job: Job) -> tuple[str, dict[str, Any], bool]:
    """(summary, changes, noop) of releasing the tag as it stands."""
    digest = data.exists(job.ref, job.repository, job.tag)
    if digest is not None:
        state = data.read(job.ref, job.repository, job.tag)
        changes = {"mode": "lock", "tag": {"before": state.tag, "after": DEFAULTS}, "manifest": state.manifest}
        noop = all(v for v in (*state.tag.values(), *state.manifest.values()))
        return f"enable reads, writes and deletes of {job.where} and {digest}", changes, noop
    copy_tag, _ = _quarantined_copy(data, job)
    source = f"{job.quarantine_repository}:{copy_tag}"
    return (
        f"import {source} back as {job.name}",
        {"mode": "move", "import": {"source": source, "target": job.name}},
        False,
    )


def apply_release(data: RegistryData, control: RegistryControl, job: Job) -> StepResult:
    digest = data.exists(job.ref, job.repository, job.tag)
    if digest is not None:
        state = data.read(job.ref, job.repository, job.tag)
        if all(v for v in (*state.tag.values(), *state.manifest.values())):
            return job.result(Outcome.NOOP, f"{job.where} is not locked: nothing to do", target=job.target(digest))
        data.set_tag(job.ref, job.repository, job.tag, dict(DEFAULTS))
        data.set_manifest(job.ref, job.repository, digest, dict(DEFAULTS))
        return job.result(Outcome.APPLIED, f"{job.where} unlocked", target=job.target(digest))
    copy_tag, copy_digest = _quarantined_copy(data, job)
    source = f"{job.quarantine_repository}@{copy_digest}"
    control.import_image(job.ref, source=source, target=job.name, mode="NoForce")
    data.delete_tag(job.ref, job.quarantine_repository, copy_tag)
    return job.result(
        Outcome.APPLIED,
        f"{job.where} imported back from {job.quarantine_repository}:{copy_tag}",
        target=job.target(copy_digest),
    )


def _quarantined_copy(data: RegistryData, job: Job) -> tuple[str, str]:
    pattern = job.quarantine_pattern()
    copies = {t: d for t, d in data.tags(job.ref, job.quarantine_repository).items() if pattern.fullmatch(t)}
    if not copies:
        raise PermanentFailure(f"{job.where} does not exist and has no quarantined copy in {job.quarantine_repository}")
    if len(copies) > 1:
        raise PermanentFailure(
            f"{job.where} has several quarantined copies ({', '.join(sorted(copies))}): "
            "undo the quarantine step that made the one you want"
        )
    return next(iter(copies.items()))
