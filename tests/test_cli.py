"""`remediate`: simulate, playbooks check and their exit codes, run in process as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from expected_targets import EXPECTED, fixture_path
from remediation.cli import main as remediate
from remediation.signals import TARGET_FIELDS

FIXTURES = Path(__file__).parent / "fixtures"
SIGNAL_KEYS = ("source", "type", "id", "severity", "time")


def simulate_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = remediate(["simulate", "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_simulate_prints_the_documented_outcome_of_every_fixture(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, document = simulate_json(capsys, str(fixture_path(name)))
    expected = EXPECTED[name]
    signals = [outcome for outcome in expected if outcome["outcome"] == "signal"]
    rejected = [outcome for outcome in expected if outcome["outcome"] == "rejection"]
    assert code == (1 if rejected else 0)
    assert document["skipped"] == sum(outcome["outcome"] == "skip" for outcome in expected)
    assert len(document["rejected"]) == len(rejected)
    for problem, want in zip(document["rejected"], rejected, strict=True):
        assert want.get("any_source_reason", want["reason"]) in problem["reason"]
        assert (problem["file"], problem["index"]) == (str(fixture_path(name)), want["index"])
    assert len(document["signals"]) == len(signals)
    for got, want in zip(document["signals"], signals, strict=True):
        assert {key: got[key] for key in SIGNAL_KEYS} == {key: want[key] for key in SIGNAL_KEYS}
        assert tuple(got["targets"]) == TARGET_FIELDS
        assert {key: value for key, value in got["targets"].items() if value is not None} == want["targets"]


def test_simulate_plans_every_signal(capsys: pytest.CaptureFixture[str]) -> None:
    code, document = simulate_json(
        capsys,
        str(FIXTURES / "defender-alert-k8s-clusteradminbinding.log-analytics-row.json"),
        str(FIXTURES / "samples/acr-imagepushed.eventgrid.json"),
    )
    assert code == 0
    binding, push = document["incidents"]
    assert binding["playbook"] == "rbac-delete-privileged-object"
    assert binding["steps"] == [
        {
            "action": "kubernetes.delete_rbac_object",
            "params": {
                "cluster": document["signals"][0]["targets"]["cluster_resource_id"],
                "kind": "ClusterRoleBinding",
                "name": "dev-cluster-admin",
            },
        }
    ]
    assert (binding["approval"]["mode"], binding["approval"]["min_approvals"], binding["missing"]) == (
        "required",
        2,
        [],
    )
    assert push == {"signal": document["signals"][1]["id"], "playbook": None}


def test_simulate_names_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alert = json.loads((FIXTURES / "defender-alert-k8s-clusteradminbinding.log-analytics-row.json").read_text())
    alert["ExtendedProperties"] = "{}"
    (tmp_path / "alert.json").write_text(json.dumps(alert))
    _, document = simulate_json(capsys, str(tmp_path / "alert.json"))
    [plan] = document["incidents"]
    assert {(gap["param"], gap["field"]) for gap in plan["missing"]} == {
        ("kind", "targets.rbac_kind"),
        ("name", "targets.rbac_name"),
    }


def test_simulate_with_another_playbook_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notify.yaml").write_text(
        "name: notify-everything\ndescription: d\non: {source: registry, types: [ImagePushed]}\n"
        "steps: [{action: notify, params: {message: 'pushed ${targets.image}'}}]\napproval: {mode: auto}\n"
    )
    code, document = simulate_json(
        capsys, "--playbooks", str(tmp_path), str(FIXTURES / "samples/acr-imagepushed.eventgrid.json")
    )
    [plan] = document["incidents"]
    assert (code, plan["playbook"]) == (0, "notify-everything")
    assert plan["steps"][0]["params"]["message"] == "pushed demo.azurecr.io/aci-helloworld:v1"


def test_simulate_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert remediate(["simulate", str(tmp_path / "absent.json")]) == 2
    with pytest.raises(SystemExit) as usage:
        remediate(["simulate"])
    assert usage.value.code == 2
    event = str(FIXTURES / "samples/acr-imagepushed.eventgrid.json")
    assert remediate(["simulate", "--playbooks", str(FIXTURES / "playbooks/broken"), event]) == 2
    assert "are invalid" in capsys.readouterr().err


def test_playbooks_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert remediate(["playbooks", "check"]) == 0
    assert "ok" in capsys.readouterr().out
    assert remediate(["playbooks", "check", str(FIXTURES / "playbooks/broken")]) == 1
    out = capsys.readouterr().out
    assert "unknown-action.yaml: playbook 'unknown-action': steps[0].action" in out
    assert remediate(["playbooks", "check", str(FIXTURES / "nowhere")]) == 2
