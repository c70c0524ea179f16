"""`remediate`: simulate, playbooks check, audit verify and their exit codes, run as a user runs them.

`audit verify` runs against the session's Azurite with its own tables; the unreachable account is a
closed port, run through the installed `remediate` script so that stderr is exactly what a user sees.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient, UpdateMode

from azurite import Azurite
from expected_targets import EXPECTED, fixture_path
from remediation.audit import key_id
from remediation.cli import main as remediate
from remediation.cli.audit import UNKEYED
from remediation.compose import keyed_audit
from remediation.incidents import Incident
from remediation.settings import Settings
from remediation.signals import TARGET_FIELDS
from remediation.store.incidents import TableIncidentStore
from test_event_ledger import closed_port_connection_string
from test_incidents import T0, make_plan, make_signal

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


# --- audit verify --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditAccount:
    """The Azurite account with this test's table names in the environment, as `remediate` reads them."""

    connection_string: str
    incidents_table: str
    audit_table: str

    def store(self) -> TableIncidentStore:
        return TableIncidentStore.from_connection_string(
            self.connection_string, table_name=self.incidents_table, audit_table=self.audit_table
        )

    def tables(self) -> set[str]:
        with TableServiceClient.from_connection_string(self.connection_string) as service:
            return {table.name for table in service.list_tables()}

    def open_incidents(self, count: int) -> list[Incident]:
        with self.store() as store:
            return [
                store.open_or_fold(plan=make_plan(group_key=f"group-{n}"), signal=make_signal(), now=T0)[0]
                for n in range(count)
            ]


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch, storage_connection_string: str) -> AuditAccount:
    suffix = uuid.uuid4().hex[:10]
    tables = AuditAccount(storage_connection_string, f"incidents{suffix}", f"audit{suffix}")
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection_string)
    monkeypatch.setenv("REMEDIATION_INCIDENTS_TABLE", tables.incidents_table)
    monkeypatch.setenv("REMEDIATION_AUDIT_TABLE", tables.audit_table)
    return tables


@pytest.fixture
def opened(account: AuditAccount) -> list[Incident]:
    return account.open_incidents(2)


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], list[str]]:
    code = remediate(["audit", "verify", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_audit_verify_clean_chains_exit_0(opened: list[Incident], capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(capsys) == (0, [], [UNKEYED, "2 audit chain(s) checked, 0 problem(s)"])
    assert verify(capsys, "--incident", opened[0].id) == (0, [], [UNKEYED, "1 audit chain(s) checked, 0 problem(s)"])


def test_audit_verify_an_edited_record_exits_1(
    account: AuditAccount, opened: list[Incident], capsys: pytest.CaptureFixture[str]
) -> None:
    edited = opened[1].id
    with TableServiceClient.from_connection_string(account.connection_string) as service:
        audit = service.get_table_client(account.audit_table)
        audit.update_entity({"PartitionKey": edited, "RowKey": "0000000001", "actor": "mallory"}, mode=UpdateMode.MERGE)
    code, out, err = verify(capsys)
    assert (code, err) == (1, [UNKEYED, "2 audit chain(s) checked, 1 problem(s)"])
    assert out == [f"audit {edited} seq 1: edited: content does not match its hash"]
    assert verify(capsys, "--incident", opened[0].id)[0] == 0


def test_audit_verify_checks_keyed_chains_across_a_key_rotation(
    account: AuditAccount, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REMEDIATION_AUDIT_KEY", "old-key-" + "o" * 24)
    with keyed_audit(account.store(), Settings.from_env()) as store:
        sealed = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)[0]
    old_id = key_id("old-key-" + "o" * 24)
    assert store.audit.records(sealed.id)[0].key_id == old_id
    assert verify(capsys) == (0, [], ["1 audit chain(s) checked, 0 problem(s)"])

    monkeypatch.setenv("REMEDIATION_AUDIT_KEY", "new-key-" + "n" * 24)  # rotated, the old key kept for verify
    monkeypatch.setenv("REMEDIATION_AUDIT_OLD_KEYS", "old-key-" + "o" * 24)
    assert verify(capsys) == (0, [], ["1 audit chain(s) checked, 0 problem(s)"])

    monkeypatch.delenv("REMEDIATION_AUDIT_OLD_KEYS")  # the old key forgotten: its records cannot be checked
    code, out, err = verify(capsys)
    assert (code, err) == (1, ["1 audit chain(s) checked, 1 problem(s)"])
    assert out == [
        f"audit {sealed.id} seq 1: cannot check: record 1 is sealed with key id {old_id}, which is neither "
        "REMEDIATION_AUDIT_KEY nor in REMEDIATION_AUDIT_OLD_KEYS"
    ]


def test_audit_verify_with_a_key_reports_unkeyed_records(
    account: AuditAccount, opened: list[Incident], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REMEDIATION_AUDIT_KEY", "k" * 32)
    code, out, _ = verify(capsys, "--incident", opened[0].id)
    assert code == 1
    assert out == [
        f"audit {opened[0].id} seq 1: unkeyed: record 1 is sealed without a key: it proves ordering, not authorship"
    ]


def test_audit_verify_names_an_incident_that_does_not_exist(
    opened: list[Incident], capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(capsys, "--incident", "inc-nothing") == (
        1,
        ["incident inc-nothing: not found"],
        [UNKEYED, "0 audit chain(s) checked, 1 problem(s)"],
    )


def test_audit_verify_settings_errors_exit_2(
    account: AuditAccount, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AzureWebJobsStorage")
    code, out, [err] = verify(capsys)
    assert (code, out) == (2, []) and "AzureWebJobsStorage is not set" in err
    code, out, [err] = verify(capsys, "--connection-string", "nonsense")
    assert (code, out) == (2, []) and err.startswith("remediate audit verify: the storage connection string:")
    code, out, [err] = verify(capsys, "--incident", "inc/../x")
    assert (code, out, err) == (2, [], "remediate audit verify: --incident 'inc/../x' cannot be an incident id")


def test_audit_verify_unreachable_storage_exits_3_in_one_line(azurite: Azurite, account: AuditAccount) -> None:
    remediate_script = Path(sys.executable).parent / "remediate"
    done = subprocess.run(
        [str(remediate_script), "audit", "verify", "--connection-string", closed_port_connection_string(azurite)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (3, "")
    [line] = done.stderr.splitlines()
    assert line.startswith("remediate audit verify: storage unreachable:") and "Connection refused" in line


def test_audit_verify_refused_credentials_exit_3(account: AuditAccount, capsys: pytest.CaptureFixture[str]) -> None:
    wrong_key = account.connection_string.replace("AccountKey=Eby8", "AccountKey=Xby8")
    code, out, [err] = verify(capsys, "--connection-string", wrong_key)
    assert (code, out) == (3, [])
    assert err.startswith("remediate audit verify: storage refused the credentials (HTTP 403)")


def test_audit_verify_creates_nothing_in_an_account_without_the_tables(
    account: AuditAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    before = account.tables()
    code, out, err = verify(capsys, "--connection-string", account.connection_string)
    assert (code, err) == (1, [UNKEYED, "0 audit chain(s) checked, 2 problem(s)"])
    assert out == [
        f"no incidents table '{account.incidents_table}' in this account",
        f"no audit table '{account.audit_table}' in this account",
    ]
    assert account.tables() == before


def test_audit_verify_reports_a_missing_audit_table(account: AuditAccount, capsys: pytest.CaptureFixture[str]) -> None:
    with TableServiceClient.from_connection_string(account.connection_string) as service:
        service.create_table(account.incidents_table)
    code, out, _ = verify(capsys)
    assert (code, out) == (1, [f"no audit table '{account.audit_table}' in this account"])
    assert account.audit_table not in account.tables()
