"""The catalogue bound to runtimes: the one object the executor and the previewer run actions through.

Neighbours: the composition root (`remediation.compose`) gives `ActionSet` a factory per runtime
type (`KubernetesRuntime`, `RegistryRuntime`); each action class declares the runtime it needs.
An action whose runtime nobody provides is refused when the set is built, that is when the app
loads, never at execution. Runtimes are built on first use, so a registry-only deployment never
reaches for cluster clients. Every result is logged once here, with the incident and the target, and
every applied step's result carries the content hash of its snapshot.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from remediation.actions.base import AnyAction, NoRuntime
from remediation.actions.catalogue import CATALOGUE, ActionClass, UnknownAction, index
from remediation.actions.runtime import HashingSnapshots, Preview, StepContext, StepResult, content_hash

logger = logging.getLogger(__name__)

RuntimeFactory = Callable[[], Any]


class ActionsNotBuildable(TypeError):
    """Actions are declared whose runtime the composition root does not provide."""


class ActionSet:
    def __init__(
        self, *, runtimes: Mapping[type, RuntimeFactory], catalogue: Iterable[ActionClass] = CATALOGUE
    ) -> None:
        self.classes = index(catalogue)
        self._factories: dict[type, RuntimeFactory] = {NoRuntime: NoRuntime, **runtimes}
        unbuildable = sorted(name for name, cls in self.classes.items() if cls.Runtime not in self._factories)
        if unbuildable:
            raise ActionsNotBuildable(f"no runtime is provided for {', '.join(unbuildable)}")
        self._runtimes: dict[type, Any] = {}
        self._actions: dict[str, AnyAction] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> AnyAction:
        cls = self.classes.get(name)
        if cls is None:
            raise UnknownAction(name, self.classes)
        with self._lock:
            if name not in self._actions:
                if cls.Runtime not in self._runtimes:
                    self._runtimes[cls.Runtime] = self._factories[cls.Runtime]()
                self._actions[name] = cls(self._runtimes[cls.Runtime])
            return self._actions[name]

    def params(self, name: str, raw: Mapping[str, Any]) -> BaseModel:
        """The step's typed parameters; pydantic.ValidationError (a ValueError) when they do not fit."""
        cls = self.classes.get(name)
        if cls is None:
            raise UnknownAction(name, self.classes)
        return cls.validate(raw)

    def preview(self, name: str, params: BaseModel, ctx: StepContext) -> Preview:
        return self[name].preview(params, ctx)

    def apply(self, name: str, params: BaseModel, ctx: StepContext) -> StepResult:
        """Run the action and record its snapshot's content hash in the result (undo checks it)."""
        seen = HashingSnapshots(ctx.snapshots)
        result = self[name].apply(params, dataclasses.replace(ctx, snapshots=seen))
        if result.snapshot and not result.snapshot_hash:
            known = seen.hashes.get(result.snapshot)
            result = dataclasses.replace(
                result, snapshot_hash=known or content_hash(ctx.snapshots.load(result.snapshot))
            )
        return _logged(ctx, result)

    def undo(self, name: str, params: BaseModel, result: StepResult, ctx: StepContext) -> StepResult:
        return _logged(ctx, self[name].undo(params, result, ctx))

    def close(self) -> None:
        with self._lock:
            runtimes = list(self._runtimes.values())
            self._runtimes.clear()
            self._actions.clear()
        for runtime in runtimes:
            close = getattr(runtime, "close", None)
            if callable(close):
                close()


def _logged(ctx: StepContext, result: StepResult) -> StepResult:
    target = result.target
    logger.info(
        "%s: %s",
        result.action,
        result.message,
        extra={
            "incident_id": ctx.incident_id,
            "step": ctx.step,
            "action": result.action,
            "outcome": result.outcome.value,
            "target": f"{target.kind}/{target.namespace or ''}/{target.name}" if target else None,
        },
    )
    return result
