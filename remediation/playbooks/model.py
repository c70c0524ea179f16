"""The loaded form of a playbook: immutable, validated, with conditions and references compiled.

`parse` and `steps` build these from YAML; `matcher` turns them into `remediation.plans.Plan`s
for each Signal. Nothing here is read from YAML again after load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from remediation.actions.catalogue import ActionClass
from remediation.plans import ApprovalPolicy
from remediation.playbooks.conditions import Condition
from remediation.playbooks.paths import Getter
from remediation.playbooks.references import Ref, Value, refs_of
from remediation.signals.model import Severity, Source


@dataclass(frozen=True, slots=True)
class Step:
    action: str
    params: tuple[tuple[str, Value], ...]  # in the order written; values are literals, Refs or Templates
    spec: ActionClass = field(repr=False, compare=False)
    when: tuple[Condition, ...] = ()
    referenced: Mapping[str, str] = field(default_factory=dict)  # parameter -> the (first) field it reads

    def refs(self) -> tuple[tuple[str, Ref], ...]:
        """(parameter, reference) for every reference in this step's parameters."""
        return tuple((name, ref) for name, value in self.params for ref in refs_of(value))


@dataclass(frozen=True, slots=True)
class Playbook:
    name: str
    description: str
    file: Path
    source: Source
    types: tuple[str, ...]  # ACR types in their full Microsoft.ContainerRegistry.* form
    steps: tuple[Step, ...]
    approval: ApprovalPolicy
    min_severity: Severity | None = None
    when: tuple[Condition, ...] = ()
    notify: str | None = None
    group_window: timedelta = timedelta(minutes=15)
    group_by: tuple[str, ...] = ()  # sorted Signal field paths; by default every field the steps reference
    group_getters: tuple[Getter, ...] = field(default=(), repr=False, compare=False)
