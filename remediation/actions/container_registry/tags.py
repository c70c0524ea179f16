"""`RegistryActions`: the ActionHandler of `registry.quarantine_tag` and `registry.release_tag`.

Neighbours: the executor looks the handler up by action name (`RegistryActions.ACTIONS`) and calls
preview / apply / undo with the parameter models of `remediation.actions.acr`; this module resolves
the registry (`resolve`), binds the step to the approved digest, and dispatches to `lock`, `move`
or `release`. The quarantine's undo restores exactly what its snapshot recorded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel

from remediation.actions.acr import QuarantineTagParams, ReleaseTagParams, TagParams
from remediation.actions.containerregistry.acr_data import RegistryData, TagNotFound, TagState
from remediation.actions.containerregistry.arm import RegistryControl
from remediation.actions.containerregistry.calls import RetryPolicy
from remediation.actions.containerregistry.clients import Endpoints, RegistryClients
from remediation.actions.containerregistry.common import Job
from remediation.actions.containerregistry.lock import apply_lock, lock_changes, undo_lock
from remediation.actions.containerregistry.move import apply_move, move_changes, undo_move
from remediation.actions.containerregistry.release import apply_release, plan_release
from remediation.actions.containerregistry.resolve import (
    REGISTRIES_SETTING,
    RegistryResolver,
    parse_registries_setting,
)
from remediation.actions.runtime import (
    Outcome,
    PermanentFailure,
    Preview,
    StepContext,
    StepResult,
    TargetChanged,
)

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

QUARANTINE = "registry.quarantine_tag"
RELEASE = "registry.release_tag"


class RegistryActions:
    ACTIONS = (QUARANTINE, RELEASE)

    def __init__(
        self,
        *,
        resolver: RegistryResolver,
        clients: RegistryClients,
        retry: RetryPolicy | None = None,
        quarantine_prefix: str = "quarantine/",
        import_deadline_seconds: float = 300.0,
    ) -> None:
        retry = retry or RetryPolicy()
        self.resolver = resolver
        self._data = RegistryData(clients=clients, retry=retry)
        self._control = RegistryControl(clients=clients, retry=retry, import_deadline_seconds=import_deadline_seconds)
        self._prefix = quarantine_prefix

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        credential: TokenCredential | None = None,
        endpoints: Endpoints | None = None,
        retry: RetryPolicy | None = None,
    ) -> Self:
        """Configured from REMEDIATION_REGISTRIES; the credential defaults to DefaultAzureCredential."""
        values = os.environ if env is None else env
        clients = RegistryClients(credential=credential, endpoints=endpoints)
        registries = parse_registries_setting(values.get(REGISTRIES_SETTING, ""))
        return cls(
            resolver=RegistryResolver(clients=clients, registries=registries, retry=retry), clients=clients, retry=retry
        )

    def preview(self, action: str, params: BaseModel, ctx: StepContext) -> Preview:
        job = self._job(action, params)
        if isinstance(params, QuarantineTagParams):
            state = self._bound_state(job, params, ctx)
            if params.mode == "lock":
                summary = f"lock {job.where} ({state.digest}): no pulls, pushes or deletes of the tag or the digest"
                return Preview(action, summary, lock_changes(state), job.target(state.digest), noop=state.locked())
            changes = move_changes(job, state)
            summary = f"move {job.where} ({state.digest}) to {changes['import']['target']} and remove the tag"
            return Preview(action, summary, changes, job.target(state.digest))
        summary, changes, noop = plan_release(self._data, job)
        return Preview(action, summary, changes, job.target(None), noop=noop)

    def apply(self, action: str, params: BaseModel, ctx: StepContext) -> StepResult:
        job = self._job(action, params)
        if not isinstance(params, QuarantineTagParams):
            return apply_release(self._data, self._control, job)
        if params.mode == "lock":
            return apply_lock(self._data, job, self._bound_state(job, params, ctx), ctx)
        try:
            state: TagState | None = self._bound_state(job, params, ctx)
        except TagNotFound:
            state = None
        return apply_move(self._data, self._control, job, state, ctx)

    def undo(self, action: str, params: BaseModel, result: StepResult, ctx: StepContext) -> StepResult:
        job = self._job(action, params)
        if action != QUARANTINE:
            raise PermanentFailure(f"{action} has no undo: quarantine {job.where} again instead")
        if result.outcome is Outcome.NOOP:
            return job.result(Outcome.NOOP, f"nothing to undo: {job.where} was already locked", target=result.target)
        document = self._document(result, ctx)
        if document.get("mode") == "move":
            return undo_move(self._data, self._control, job, document)
        return undo_lock(self._data, job, document)

    def _job(self, action: str, params: BaseModel) -> Job:
        expected = QuarantineTagParams if action == QUARANTINE else ReleaseTagParams if action == RELEASE else None
        if expected is None or not isinstance(params, expected):
            raise PermanentFailure(f"{action} with {type(params).__name__} is not a registry action")
        assert isinstance(params, TagParams)
        ref = self.resolver.resolve(params.registry)
        return Job(action, ref, params.repository, params.tag, self._prefix)

    def _bound_state(self, job: Job, params: QuarantineTagParams, ctx: StepContext) -> TagState:
        """The tag as it stands, refused when it no longer points at the approved digest."""
        state = self._data.read(job.ref, job.repository, job.tag)
        expected = params.digest or (ctx.expected.version if ctx.expected else None)
        if expected and state.digest != expected:
            raise TargetChanged(f"{job.where} now points at {state.digest}, not {expected} as approved: approve again")
        return state

    @staticmethod
    def _document(result: StepResult, ctx: StepContext) -> dict[str, Any]:
        if result.snapshot:
            try:
                return ctx.snapshots.load(result.snapshot)
            except LookupError:
                pass  # the result carries the same document
        if not result.undo:
            raise PermanentFailure("the quarantine step recorded nothing to restore from")
        return dict(result.undo)
