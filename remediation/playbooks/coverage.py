"""Coverage: which playbook answers each published Defender alert type, and which types none does.

`remediate playbooks coverage` and tests/test_coverage.py call `coverage(playbooks, alert_types)`.
A type counts as answered when, for every probe of it, at least one playbook makes a plan: probes
are Signals of the type at every severity with each of a few target profiles (an ordinary
workload, one in kube-system with `system:` RBAC names, and one with no targets at all), so a
playbook whose `when` leaves a case out (kube-system, `system:` objects, a severity) shows as a gap
unless a companion playbook takes that case. Matching is `PlaybookSet.match`, the engine's own.

The shipped list (`data/defender-container-alert-types.tsv`, see data/SOURCES.md) is read with
importlib.resources, so it is there in an installed package as in the repository.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from remediation.playbooks.matcher import PlaybookSet
from remediation.signals.model import Severity, Signal, Source, Targets

SHIPPED_TYPES = "defender-container-alert-types.tsv"
_COLUMNS = ("alert_type", "display_name", "severity", "tactics", "deprecated", "target_hint")
_CLUSTER = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.ContainerService/managedClusters/probe"
)
_PROFILES: dict[str, Targets] = {
    "workload": Targets(
        cluster_resource_id=_CLUSTER, namespace="payments", pod="api-1", container="api", node="node-1",
        image="probe.azurecr.io/payments/api:1.0", registry_login_server="probe.azurecr.io",
        repository="payments/api", tag="1.0", rbac_kind="ClusterRoleBinding", rbac_name="dev-admin",
    ),
    "protected": Targets(
        cluster_resource_id=_CLUSTER, namespace="kube-system", pod="coredns-1", node="node-1",
        image="mcr.microsoft.com/oss/kubernetes/coredns:v1.9", rbac_kind="ClusterRoleBinding",
        rbac_name="system:controller",
    ),
    "no targets": Targets(),
}  # fmt: skip


class AlertTypesError(ValueError):
    """The alert-type file cannot be read or lacks the alert_type column."""


@dataclass(frozen=True, slots=True)
class AlertType:
    alert_type: str
    display_name: str = ""
    severity: str = ""
    target_hint: str = ""
    deprecated: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """One playbook answering a type: its name and the actions its steps may take."""

    playbook: str
    actions: tuple[str, ...]

    @property
    def acts(self) -> bool:
        return any(action != "notify" for action in self.actions)


@dataclass(frozen=True, slots=True)
class TypeCoverage:
    alert_type: AlertType
    answers: tuple[Answer, ...]
    gaps: tuple[str, ...]  # the probes no playbook answered: "<severity>/<profile>"

    @property
    def answered(self) -> bool:
        return bool(self.answers) and not self.gaps

    @property
    def disposition(self) -> str:
        if not self.answers:
            return "unanswered"
        if self.gaps:
            return "partly answered"
        return "acted" if any(answer.acts for answer in self.answers) else "notified"


def read_alert_types(path: Path | None = None) -> list[AlertType]:
    """The rows of a tab-separated alert-type file (the shipped list when `path` is None)."""
    try:
        if path is None:
            text = resources.files("remediation.playbooks").joinpath("data", SHIPPED_TYPES).read_text("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        raise AlertTypesError(f"{path or SHIPPED_TYPES}: cannot read: {problem}") from None
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    if not rows or "alert_type" not in rows[0]:
        raise AlertTypesError(f"{path or SHIPPED_TYPES}: expected a tab-separated file with the columns {_COLUMNS}")
    return [
        AlertType(
            alert_type=row["alert_type"].strip(),
            display_name=(row.get("display_name") or "").strip(),
            severity=(row.get("severity") or "").strip(),
            target_hint=(row.get("target_hint") or "").strip(),
            deprecated=(row.get("deprecated") or "").strip().lower() == "yes",
        )
        for row in rows
        if (row.get("alert_type") or "").strip()
    ]


def coverage(playbooks: PlaybookSet, alert_types: Iterable[AlertType]) -> list[TypeCoverage]:
    return [_cover(playbooks, alert_type) for alert_type in alert_types]


def _cover(playbooks: PlaybookSet, alert_type: AlertType) -> TypeCoverage:
    listing = [book for book in playbooks if book.source is Source.DEFENDER and alert_type.alert_type in book.types]
    fired: set[str] = set()
    gaps = []
    for severity in Severity:
        for profile, targets in _PROFILES.items():
            plans = playbooks.match(_probe(alert_type.alert_type, severity, targets))
            fired.update(plan.playbook for plan in plans)
            if not plans:
                gaps.append(f"{severity.label}/{profile}")
    answers = tuple(
        Answer(book.name, tuple(dict.fromkeys(step.action for step in book.steps)))
        for book in listing
        if book.name in fired
    )
    return TypeCoverage(alert_type, answers, tuple(gaps) if answers else ())


def _probe(alert_type: str, severity: Severity, targets: Targets) -> Signal:
    return Signal(
        source=Source.DEFENDER,
        type=alert_type,
        id=f"defender:coverage-probe-{alert_type}",
        time=datetime(2024, 1, 1, tzinfo=UTC),
        severity=severity,
        targets=targets,
        title=alert_type,
        extended_properties={"Resource name": "probe-service"},
    )


def summary(rows: Iterable[TypeCoverage]) -> dict[str, int]:
    """Counts by disposition: acted, notified, partly answered, unanswered, and the total."""
    counts = {"acted": 0, "notified": 0, "partly answered": 0, "unanswered": 0}
    total = 0
    for row in rows:
        counts[row.disposition] += 1
        total += 1
    return {**counts, "total": total}
