"""Coverage of the published Defender for Containers alert types by the shipped playbooks.

Every type of the shipped list gets a disposition (an action with approval, or the alert's facts),
`remediate playbooks coverage` says so and exits 1 on a gap, a few representative alerts plan the
steps the README promises, and REMEDIATION_DISALLOWED_TAGS alone decides what the registry playbook
quarantines.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from remediation.cli import main as remediate
from remediation.playbooks import DEFAULT_PLAYBOOKS_DIR, PlaybookSet, load_playbooks
from remediation.playbooks.coverage import coverage, read_alert_types, summary
from remediation.push_policy import PushPolicy, PushRules
from remediation.settings import Settings
from remediation.signals.model import Severity, Signal, Source, Targets

SHARED_LIST = Path("/work/shared/data/defender-container-alert-types.tsv")
CLUSTER = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
)


@pytest.fixture(scope="module")
def shipped() -> PlaybookSet:
    return load_playbooks(DEFAULT_PLAYBOOKS_DIR)


def test_the_shipped_list_is_the_58_published_types() -> None:
    types = read_alert_types()
    assert len(types) == len({t.alert_type for t in types}) == 58
    assert sum(t.alert_type.startswith("K8S.NODE_") for t in types) == 39
    assert {t.severity for t in types} == {"High", "Medium", "Low", "Informational"}
    if SHARED_LIST.is_file():  # the copy in the package is the shared list, unchanged
        assert read_alert_types(SHARED_LIST) == types


def test_every_published_type_is_answered_by_the_shipped_playbooks(shipped: PlaybookSet) -> None:
    rows = coverage(shipped, read_alert_types())
    assert [row.alert_type.alert_type for row in rows if not row.answered] == []
    assert summary(rows) == {"acted": 31, "notified": 27, "partly answered": 0, "unanswered": 0, "total": 58}
    dispositions = {row.alert_type.alert_type: row.disposition for row in rows}
    for acted in ("K8S.NODE_Webshell", "K8S.NODE_ReverseShell", "K8S_ExposedRedis", "K8S.NODE_KubeConfigAccess"):
        assert dispositions[acted] == "acted"
    for notified in ("K8S_AdmissionController", "K8S_CoreDnsModification", "K8S_DeleteEvents", "K8S.NODE_EICAR"):
        assert dispositions[notified] == "notified"


def test_a_playbook_that_leaves_a_case_out_shows_as_a_gap(tmp_path: Path) -> None:
    (tmp_path / "only-high.yaml").write_text(
        "name: only-high\ndescription: d\non: {source: defender, types: [K8S_DeleteEvents], min_severity: high}\n"
        "steps: [{action: notify, params: {message: m}}]\napproval: {mode: auto}\n"
    )
    types = [t for t in read_alert_types() if t.alert_type in ("K8S_DeleteEvents", "K8S_TI_Proxy")]
    deleted, proxy = coverage(load_playbooks(tmp_path), types)
    assert (deleted.disposition, proxy.disposition) == ("partly answered", "unanswered")
    assert "low/workload" in deleted.gaps and not any(gap.startswith("high/") for gap in deleted.gaps)


def test_the_cli_lists_every_type_and_exits_0_on_the_shipped_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert remediate(["playbooks", "coverage"]) == 0
    out = capsys.readouterr().out.splitlines()
    for alert_type in read_alert_types():
        [line] = [line for line in out if line.split()[0] == alert_type.alert_type]
        assert "unanswered" not in line
    assert "K8S.NODE_Webshell" in "\n".join(out)
    webshell = next(line for line in out if line.startswith("K8S.NODE_Webshell "))
    assert "workload-isolate-compromised: kubernetes.isolate_pod, kubernetes.cordon_node" in webshell
    assert out[-1] == "58 alert types: 31 acted on with approval, 27 notified, 0 partly answered, 0 unanswered"


def test_the_cli_exits_1_when_a_type_of_the_file_is_unanswered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    types = tmp_path / "types.tsv"
    types.write_text(
        "alert_type\tseverity\tdeprecated\nK8S_SomethingNew\tHigh\tno\nK8S_AnomalousSecretAccess\tMedium\tyes\n"
    )
    assert remediate(["playbooks", "coverage", "--types", str(types)]) == 1
    out = capsys.readouterr().out
    assert "K8S_SomethingNew" in out and "K8S_AnomalousSecretAccess" in out and "(deprecated)" in out
    assert out.splitlines()[-1].endswith("2 unanswered")


def test_the_cli_refuses_an_unreadable_types_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert remediate(["playbooks", "coverage", "--types", str(tmp_path / "absent.tsv")]) == 2
    (tmp_path / "bad.tsv").write_text("type\tseverity\nK8S_X\tHigh\n")
    assert remediate(["playbooks", "coverage", "--types", str(tmp_path / "bad.tsv")]) == 2
    assert "alert_type" in capsys.readouterr().err


def test_every_shipped_playbook_loads_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert remediate(["playbooks", "check", str(DEFAULT_PLAYBOOKS_DIR)]) == 0
    assert "ok" in capsys.readouterr().out


# --- representative alerts, through `remediate simulate` ---------------------------------------------


def _alert(
    alert_type: str, severity: str, *, entities: list[dict[str, Any]], extended: dict[str, str]
) -> dict[str, Any]:
    return {
        "AlertType": alert_type,
        "SystemAlertId": f"coverage-{alert_type}",
        "Severity": severity,
        "StartTimeUtc": "2024-11-21T10:05:00Z",
        "AlertDisplayName": alert_type,
        "AzureResourceId": CLUSTER,
        "Entities": entities,
        "ExtendedProperties": extended,
    }


POD = [
    {"$id": "1", "Type": "K8s-pod", "Name": "web-1", "Namespace": {"$id": "2", "Type": "K8s-namespace", "Name": "shop"}}
]
HOST = [{"$id": "1", "Type": "host", "HostName": "aks-nodepool1-12345678-vmss000000"}]


@pytest.mark.parametrize(
    ("alert", "playbook", "steps", "approvals"),
    [
        (
            _alert("K8S.NODE_Webshell", "Medium", entities=POD, extended={}),
            "workload-isolate-compromised",
            [("kubernetes.isolate_pod", {"cluster": CLUSTER, "namespace": "shop", "pod": "web-1"})],
            1,
        ),
        (
            _alert("K8S.NODE_KubeConfigAccess", "Medium", entities=HOST, extended={}),
            "node-cordon",
            [("kubernetes.cordon_node", {"cluster": CLUSTER, "node": "aks-nodepool1-12345678-vmss000000"})],
            1,
        ),
        (
            _alert("K8S_ExposedDashboard", "High", entities=[], extended={"Namespace": "ui", "Resource name": "dash"}),
            "dashboard-restrict-exposed",
            [
                (
                    "kubernetes.restrict_service",
                    {"cluster": CLUSTER, "namespace": "ui", "service": "dash", "mode": "cluster_ip"},
                )
            ],
            2,
        ),
    ],
)
def test_a_simulated_alert_plans_its_steps(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    alert: dict[str, Any],
    playbook: str,
    steps: list[tuple[str, dict[str, Any]]],
    approvals: int,
) -> None:
    (tmp_path / "alert.json").write_text(json.dumps(alert))
    assert remediate(["simulate", "--format", "json", str(tmp_path / "alert.json")]) == 0
    [plan] = json.loads(capsys.readouterr().out)["incidents"]
    assert plan["playbook"] == playbook
    assert [(step["action"], step["params"]) for step in plan["steps"]] == steps
    assert (plan["approval"]["mode"], plan["approval"]["min_approvals"], plan["missing"]) == ("required", approvals, [])


def test_a_simulated_admission_webhook_alert_notifies_the_facts(capsys: pytest.CaptureFixture[str]) -> None:
    sample = (
        Path(__file__).parent
        / "fixtures/samples/defender-alert-k8s-admissioncontroller.continuous-export-eventhub.json"
    )
    assert remediate(["simulate", "--format", "json", str(sample)]) == 0
    [plan] = json.loads(capsys.readouterr().out)["incidents"]
    assert (plan["playbook"], plan["approval"]["mode"], plan["notify"]) == (
        "notify-alert-facts-low",
        "auto",
        "#secops-notices",
    )
    [step] = plan["steps"]
    assert step["action"] == "notify"
    assert step["params"]["message"].startswith(
        "Creation of admission webhook configuration detected (K8S_AdmissionController, informational)"
    )


# --- REMEDIATION_DISALLOWED_TAGS is the one source of the registry rule -----------------------------


class _NoIndex:
    def record_push(self, **_: Any) -> str | None:
        return None

    def record_delete(self, **_: Any) -> int:
        return 0


def _quarantined(shipped: PlaybookSet, env: dict[str, str], repository: str, tag: str) -> list[str]:
    registry = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", **env}).registry
    policy = PushPolicy(tag_index=_NoIndex(), rules=PushRules(disallowed_tags=registry.disallowed_tags))
    push = Signal(
        source=Source.REGISTRY,
        type="Microsoft.ContainerRegistry.ImagePushed",
        id=f"registry:{repository}:{tag}",
        time=datetime(2024, 11, 21, tzinfo=UTC),
        severity=Severity.INFORMATIONAL,
        targets=Targets(registry_login_server="myregistry.azurecr.io", repository=repository, tag=tag),
    )
    return [plan.playbook for plan in shipped.match(policy.enrich(push))]


def test_the_setting_decides_what_the_registry_playbook_quarantines(shipped: PlaybookSet) -> None:
    quarantine = ["registry-quarantine-latest-in-prod"]
    # The default, unset or empty: latest in prod/*.
    assert _quarantined(shipped, {}, "prod/api", "latest") == quarantine
    assert _quarantined(shipped, {"REMEDIATION_DISALLOWED_TAGS": ""}, "prod/api", "latest") == quarantine
    assert _quarantined(shipped, {}, "dev/api", "latest") == []
    # Changed: the playbook follows without an edit.
    changed = {"REMEDIATION_DISALLOWED_TAGS": '{"release/*": ["dev", "latest"]}'}
    assert _quarantined(shipped, changed, "release/api", "dev") == quarantine
    assert _quarantined(shipped, changed, "prod/api", "latest") == []
    # Cleared: nothing is quarantined for its tag.
    assert _quarantined(shipped, {"REMEDIATION_DISALLOWED_TAGS": "{}"}, "prod/api", "latest") == []
