"""The registry actions: `registry.quarantine_tag` (lock or move a tag) and `registry.release_tag`.

Neighbours: `RegistryRuntime` is what the composition root builds for this family: `resolve` maps
the step's `registry` parameter to one of our registries, `acr_data` (data plane) and `arm`
(control plane, importImage) reach it; `lock`, `move` and `release` are the three ways a tag
changes. The quarantine binds to the approved digest, and its undo restores exactly what its
snapshot recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field

from remediation.actions.base import Action
from remediation.actions.container_registry.acr_data import RegistryData, TagNotFound, TagState
from remediation.actions.container_registry.arm import RegistryControl
from remediation.actions.container_registry.clients import RegistryClients
from remediation.actions.container_registry.job import Job
from remediation.actions.container_registry.lock import apply_lock, lock_changes, undo_lock
from remediation.actions.container_registry.move import apply_move, move_changes, undo_move
from remediation.actions.container_registry.params import Digest, TagParams, azure_data_actions
from remediation.actions.container_registry.release import apply_release, plan_release
from remediation.actions.container_registry.resolve import RegistryResolver
from remediation.actions.runtime import (
    Outcome,
    PermanentFailure,
    Preview,
    SnapshotRefused,
    StepContext,
    StepResult,
    TargetChanged,
    verified_snapshot,
)
from remediation.retry import RetryPolicy

# What the family's runtime needs whatever the action: `registries.get` to resolve a registry named
# by resource id, and reading the image's content when importImage copies it into quarantine.
RUNTIME_PERMISSIONS = azure_data_actions("read", "repositories/content/read")
_DIGEST = "sha256:60cc59004e8e9bfdbfad641fd5dc34b9a0c67345768ba5d5d957214b686f4fcb"


@dataclass(frozen=True, slots=True)
class RegistryRuntime:
    """Our registries and the clients that reach them, shared by both actions."""

    resolver: RegistryResolver
    data: RegistryData
    control: RegistryControl
    quarantine_prefix: str = "quarantine/"

    @classmethod
    def build(
        cls,
        *,
        clients: RegistryClients,
        registries: dict[str, str],
        retry: RetryPolicy | None = None,
        import_deadline_seconds: float = 300.0,
    ) -> RegistryRuntime:
        retry = retry or RetryPolicy()
        return cls(
            resolver=RegistryResolver(clients=clients, registries=registries, retry=retry),
            data=RegistryData(clients=clients, retry=retry),
            control=RegistryControl(clients=clients, retry=retry, import_deadline_seconds=import_deadline_seconds),
        )

    def job(self, action: str, params: TagParams) -> Job:
        return Job(
            action, self.resolver.resolve(params.registry), params.repository, params.tag, self.quarantine_prefix
        )


class QuarantineTagParams(TagParams):
    digest: Digest | None = Field(
        default=None, description="sha256:...; when set, the tag must still point at this image"
    )
    mode: Literal["lock", "move"] = Field(
        default="lock", description="lock: disable reads and writes in place; move: to a quarantine repository"
    )


class ReleaseTagParams(TagParams):
    pass


P = TypeVar("P", bound=TagParams)


class RegistryAction(Action[P, RegistryRuntime]):
    Runtime: ClassVar[type] = RegistryRuntime

    def _job(self, params: P) -> Job:
        return self.runtime.job(self.name, self.typed(params))


class QuarantineTag(RegistryAction[QuarantineTagParams]):
    name = "registry.quarantine_tag"
    summary = (
        "Quarantine an image tag: `lock` disables reads and writes of the tag in place; `move` imports "
        "the image into a quarantine repository and removes the tag. Undo: registry.release_tag."
    )
    Params = QuarantineTagParams
    permissions = azure_data_actions(
        "repositories/metadata/read", "repositories/metadata/write", "importImage/action", "repositories/content/delete"
    )
    example = {"registry": "myregistry.azurecr.io", "repository": "prod/api", "tag": "latest", "digest": _DIGEST}
    destructive = True
    inverse = "registry.release_tag"

    def preview(self, params: QuarantineTagParams, ctx: StepContext) -> Preview:
        job = self._job(params)
        state = self._bound_state(job, params, ctx)
        if params.mode == "lock":
            # The lock disables the manifest too, so every tag on the same digest stops being pullable.
            others = sorted(t for t, d in self.runtime.data.tags(job.ref, job.repository).items() if d == state.digest)
            others = [t for t in others if t != job.tag]
            summary = f"lock {job.where} ({state.digest}): no pulls, pushes or deletes of the tag or the digest"
            if others:
                summary += f"; also stops being pullable: {', '.join(others)}"
            changes = {**lock_changes(state), "other_tags": others}
            return Preview(self.name, summary, changes, job.target(state.digest), noop=state.locked())
        changes = move_changes(job, state)
        summary = f"move {job.where} ({state.digest}) to {changes['import']['target']} and remove the tag"
        return Preview(self.name, summary, changes, job.target(state.digest))

    def apply(self, params: QuarantineTagParams, ctx: StepContext) -> StepResult:
        job, data = self._job(params), self.runtime.data
        if params.mode == "lock":
            return apply_lock(data, job, self._bound_state(job, params, ctx), ctx)
        try:
            state: TagState | None = self._bound_state(job, params, ctx)
        except TagNotFound:
            state = None
        return apply_move(data, self.runtime.control, job, state, ctx)

    def undo(self, params: QuarantineTagParams, result: StepResult, ctx: StepContext) -> StepResult:
        job = self._job(params)
        if result.outcome is Outcome.NOOP:
            return job.result(Outcome.NOOP, f"nothing to undo: {job.where} was already locked", target=result.target)
        document = _document(result, job, ctx)
        if document.get("mode") == "move":
            return undo_move(self.runtime.data, self.runtime.control, job, document)
        return undo_lock(self.runtime.data, job, document)

    def _bound_state(self, job: Job, params: QuarantineTagParams, ctx: StepContext) -> TagState:
        """The tag as it stands, refused when it no longer points at the approved digest."""
        state = self.runtime.data.read(job.ref, job.repository, job.tag)
        expected = params.digest or (ctx.expected.version if ctx.expected else None)
        if expected and state.digest != expected:
            raise TargetChanged(f"{job.where} now points at {state.digest}, not {expected} as approved: approve again")
        return state


class ReleaseTag(RegistryAction[ReleaseTagParams]):
    name = "registry.release_tag"
    summary = (
        "Release a quarantined tag: re-enable its reads and writes, or import it back from the "
        "quarantine repository when it was moved."
    )
    Params = ReleaseTagParams
    permissions = azure_data_actions("repositories/metadata/read", "repositories/metadata/write", "importImage/action")
    example = {"registry": "myregistry.azurecr.io", "repository": "prod/api", "tag": "latest"}
    destructive = False

    def preview(self, params: ReleaseTagParams, ctx: StepContext) -> Preview:
        job = self._job(params)
        summary, changes, noop = plan_release(self.runtime.data, job)
        return Preview(self.name, summary, changes, job.target(None), noop=noop)

    def apply(self, params: ReleaseTagParams, ctx: StepContext) -> StepResult:
        return apply_release(self.runtime.data, self.runtime.control, self._job(params))

    def undo(self, params: ReleaseTagParams, result: StepResult, ctx: StepContext) -> StepResult:
        raise PermanentFailure(f"{self.name} has no undo: quarantine {self._job(params).where} again instead")


def _document(result: StepResult, job: Job, ctx: StepContext) -> dict[str, Any]:
    """What the quarantine recorded: its snapshot when the step recorded its hash (checked), else the
    copy in the step result; either must name this very tag and the digest the step bound to."""
    if result.snapshot and result.snapshot_hash:
        document = verified_snapshot(ctx.snapshots, result.snapshot, expected_hash=result.snapshot_hash, target=None)
    elif result.undo:
        document = dict(result.undo)
    else:
        raise PermanentFailure("the quarantine step recorded nothing to restore from")
    named = (document.get("registry"), document.get("repository"), document.get("tag"))
    digest = result.target.version if result.target else None
    if named != (job.ref.login_server, job.repository, job.tag) or (digest and document.get("digest") != digest):
        raise SnapshotRefused(f"the quarantine record names {named[1]}:{named[2]}, not {job.where} as the step did")
    return document


ACTIONS = (QuarantineTag, ReleaseTag)
