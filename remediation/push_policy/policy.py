"""`PushPolicy.enrich`: what the registry knows about a push, added to the Signal before matching.

Neighbours: the engine calls `enrich` on every Signal before playbook matching; non-registry
signals pass through untouched. For ImagePushed of one of our registries it sets, as strings,
`overwritten_digest` (from `tag_index`), `disallowed_tag` and `pusher_not_allowed` (from `rules`),
and the findings counts (from `findings`), or `findings=pending` and a scheduled re-check
(`recheck`). ImageDeleted only updates the tag index. A findings outage never blocks a push's
playbooks: it logs, marks the push pending and schedules a re-check.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from remediation.actions.runtime import ActionFailure
from remediation.push_policy.findings import PENDING
from remediation.push_policy.recheck import FindingsSource, Recheck, RecheckQueue
from remediation.push_policy.rules import PushRules
from remediation.signals.acr import ACR_PREFIX
from remediation.signals.model import Signal, Source

logger = logging.getLogger(__name__)

PUSHED = ACR_PREFIX + "ImagePushed"
DELETED = ACR_PREFIX + "ImageDeleted"


class TagIndex(Protocol):
    def record_push(
        self, *, registry: str, repository: str, tag: str, digest: str, event_id: str, time: datetime
    ) -> str | None: ...

    def record_delete(self, *, registry: str, repository: str, digest: str | None, tag: str | None) -> int: ...


class PushPolicy:
    def __init__(
        self,
        *,
        tag_index: TagIndex,
        findings: FindingsSource | None = None,
        recheck: RecheckQueue | None = None,
        rules: PushRules | None = None,
        is_ours: Callable[[str], bool] | None = None,
    ) -> None:
        self._index = tag_index
        self._findings = findings
        self._recheck = recheck
        self._rules = rules or PushRules()
        self._is_ours = is_ours or (lambda login_server: True)

    @staticmethod
    def concerns(signal: Signal) -> bool:
        """Whether `enrich` looks at `signal` at all: a registry image pushed or deleted. The composition
        asks first, so that no other signal builds the policy's clients."""
        targets = signal.targets
        return (
            signal.source is Source.REGISTRY
            and signal.type in (PUSHED, DELETED)
            and bool(targets.registry_login_server)
            and bool(targets.repository)
        )

    def enrich(self, signal: Signal) -> Signal:
        targets = signal.targets
        registry, repository = targets.registry_login_server, targets.repository
        if not self.concerns(signal) or not registry or not repository:
            return signal
        if not self._is_ours(registry):
            logger.info("push to a registry that is not ours", extra={"event_id": signal.id, "registry": registry})
            return signal
        if signal.type == DELETED:
            self._index.record_delete(registry=registry, repository=repository, digest=targets.digest, tag=targets.tag)
            return signal
        marks: dict[str, str] = {}
        if targets.tag and targets.digest:
            previous = self._index.record_push(
                registry=registry, repository=repository, tag=targets.tag, digest=targets.digest,
                event_id=signal.id, time=signal.time,
            )  # fmt: skip
            if previous:
                marks["overwritten_digest"] = previous
        if targets.tag and self._rules.tag_disallowed(repository, targets.tag):
            marks["disallowed_tag"] = "true"
        if self._rules.pusher_not_allowed(repository, signal.actor):
            marks["pusher_not_allowed"] = "true"
        if targets.digest and self._findings is not None:
            marks.update(self._findings_of(signal, registry, repository, targets.digest))
        if not marks:
            return signal
        return dataclasses.replace(signal, extended_properties={**signal.extended_properties, **marks})

    def _findings_of(self, signal: Signal, registry: str, repository: str, digest: str) -> dict[str, str]:
        assert self._findings is not None
        try:
            summary = self._findings.lookup(digest=digest)
        except (ActionFailure, ValueError) as failure:
            logger.warning("findings lookup failed: %s", failure, extra={"event_id": signal.id, "digest": digest})
            summary = None
        if summary is not None:
            return summary.properties()
        if self._recheck is not None:
            tag, actor = signal.targets.tag, signal.actor
            self._recheck.schedule(Recheck(signal.id, registry, repository, digest, tag=tag, actor=actor))
        return dict(PENDING)
