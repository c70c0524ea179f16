"""The loaded playbooks of a folder, and which of them fire for a Signal, as `remediation.plans.Plan`s.

`loader` builds a `PlaybookSet`; the engine calls `match` once per new Signal. Playbooks are
indexed by (source, type), so a Signal only tests the playbooks written for its type; conditions
were compiled at load, so matching does no parsing. Parameters are filled in by `resolve`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring as _quote

from remediation.plans import MissingParam, Plan, PlannedStep
from remediation.playbooks.conditions import all_hold
from remediation.playbooks.model import Playbook
from remediation.playbooks.resolve import resolve_step
from remediation.signals.model import Signal, Source


class PlaybookSet:
    """Immutable once built; safe to share between threads and invocations."""

    def __init__(self, playbooks: Iterable[Playbook]) -> None:
        self.playbooks: tuple[Playbook, ...] = tuple(playbooks)
        self._by_name = {playbook.name: playbook for playbook in self.playbooks}
        self._index: dict[Source, dict[str, tuple[Playbook, ...]]] = {source: {} for source in Source}
        for playbook in self.playbooks:
            by_type = self._index[playbook.source]
            for kind in playbook.types:
                by_type[kind] = (*by_type.get(kind, ()), playbook)

    def __len__(self) -> int:
        return len(self.playbooks)

    def __iter__(self) -> Iterator[Playbook]:
        return iter(self.playbooks)

    def get(self, name: str) -> Playbook | None:
        return self._by_name.get(name)

    def match(self, signal: Signal) -> list[Plan]:
        """A Plan for every playbook that fires for `signal`, in folder order (file names sorted)."""
        candidates = self._index[signal.source].get(signal.type)
        if not candidates:
            return []
        plans = []
        for playbook in candidates:
            if playbook.min_severity is not None and signal.severity < playbook.min_severity:
                continue
            if playbook.when and not all_hold(playbook.when, signal):
                continue
            plan = build_plan(playbook, signal)
            if plan is not None:
                plans.append(plan)
        return plans


def build_plan(playbook: Playbook, signal: Signal) -> Plan | None:
    """The playbook's plan for `signal`; None when every step's `when` left it out (nothing to do)."""
    steps: list[PlannedStep] = []
    missing: list[MissingParam] = []
    for step in playbook.steps:
        if step.when and not all_hold(step.when, signal):
            continue
        params, absent = resolve_step(step, signal, len(steps))
        steps.append(PlannedStep(action=step.action, params=params))
        missing.extend(absent)
    if not steps:
        return None
    return Plan(
        playbook=playbook.name,
        steps=tuple(steps),
        approval=playbook.approval,
        notify=playbook.notify,
        group_window=playbook.group_window,
        group_key=group_key(playbook, signal),
        missing=tuple(missing),
        reason=reason(playbook, signal),
    )


def group_key(playbook: Playbook, signal: Signal) -> str:
    """`<playbook>|<16 hex>`: sha256 of the canonical JSON of the group-by fields' values (absent: null).

    Canonical JSON is `json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`,
    here filled into a per-playbook template because json.dumps costs more than the rest of a plan
    (the tests hold the two equal). `parse` keeps `group_by` sorted, which the template relies on.
    """
    values = tuple([_quote(value) if (value := get(signal)) else "null" for get in playbook.group_getters])
    canonical = _json_template(playbook.group_by) % values
    return f"{playbook.name}|{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


@functools.lru_cache(maxsize=1024)
def _json_template(paths: tuple[str, ...]) -> str:
    return "{" + ",".join(_quote(path).replace("%", "%%") + ":%s" for path in paths) + "}"


def reason(playbook: Playbook, signal: Signal) -> str:
    subject = _subject(signal)
    where = f" on {subject}" if subject else ""
    return f"{signal.type} ({signal.severity.label}){where} matched playbook {playbook.name}"


def _subject(signal: Signal) -> str | None:
    """The name a responder knows the target by: the cluster's, else the image's."""
    targets = signal.targets
    if targets.cluster_resource_id:
        return targets.cluster_resource_id.rstrip("/").rsplit("/", 1)[-1]
    if targets.image:
        return targets.image
    return targets.registry_login_server or targets.registry_resource_id
