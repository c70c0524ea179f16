"""`remediate`: simulate, playbooks check, audit verify and their exit codes, run as a user runs them.

`audit verify` runs against the session's Azurite with its own tables; the unreachable account is a
closed port, run through the installed `remediate` script so that stderr is exactly what a user sees.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shlex
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
from remediation.cli import build_parser
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
ROOT = Path(__file__).resolve().parents[1]
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
    assert capsys.readouterr().err == f"remediate simulate: no such file or folder: {tmp_path / 'absent.json'}\n"
    assert remediate(["simulate", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"remediate simulate: no .json file in the folder {tmp_path}\n"
    assert remediate(["simulate", "-", "-"]) == 2
    assert capsys.readouterr().err == "remediate simulate: - (stdin) can be read only once\n"
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


# --- the first hour: the README's examples, folders, stdin, options anywhere, help ----------------


def readme_simulate_commands() -> list[str]:
    """The commands of the README's `remediate simulate` section, as a user would paste them."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Try it offline: `remediate simulate`", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the simulate section has no sh code block"
    return [line for line in block.group(1).splitlines() if line.startswith(".venv/bin/remediate simulate")]


def planned(output: str) -> int:
    """Incidents planned, from either output format."""
    if output.lstrip().startswith("{"):
        return sum(entry["playbook"] is not None for entry in json.loads(output)["incidents"])
    return sum(bool(re.match(r"^\s+playbook \S+: approval", line)) for line in output.splitlines())


def test_the_readmes_simulate_examples_run_and_plan_incidents(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = readme_simulate_commands()
    assert len(commands) >= 3
    assert any(" - <" in command for command in commands), "the README shows stdin"
    assert any(Path(ROOT, shlex.split(command)[2]).is_dir() for command in commands), "the README shows a folder"
    monkeypatch.delenv("REMEDIATION_PLAYBOOKS_DIR", raising=False)
    script = shlex.quote(str(Path(sys.executable).parent / "remediate"))
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command.replace(".venv/bin/remediate", script, 1)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (done.returncode, done.stderr) == (0, ""), command
        assert planned(done.stdout) >= 1, f"no playbook fires: {command}"


def test_options_go_before_or_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    event = str(FIXTURES / "defender-alert-k8s-clusteradminbinding.log-analytics-row.json")
    outputs = []
    for argv in (
        ["--format", "json", "simulate", event],
        ["simulate", event, "--format", "json"],
        ["simulate", "--format", "json", event],
        ["-v", "--playbooks", str(ROOT / "playbooks"), "simulate", event, "--format", "json"],
        ["--format", "text", "simulate", event, "--format", "json"],  # the later one wins
    ):
        assert remediate(argv) == 0, argv
        outputs.append(json.loads(capsys.readouterr().out))
    assert all(output == outputs[0] for output in outputs)
    assert outputs[0]["incidents"][0]["playbook"] == "rbac-delete-privileged-object"
    assert remediate(["--format", "json", "simulate", event, "--format", "text"]) == 0
    assert capsys.readouterr().out.startswith("high ")
    with pytest.raises(SystemExit) as usage:
        remediate(["--format", "json", "playbooks", "check"])
    assert usage.value.code == 2
    assert "--format is an option of simulate, not of playbooks check" in capsys.readouterr().err


def test_simulate_reads_a_folders_json_files_in_name_order_not_its_subfolders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binding = FIXTURES / "defender-alert-k8s-clusteradminbinding.log-analytics-row.json"
    privileged = FIXTURES / "defender-alert-k8s-privilegedcontainer.cloudevent.json"
    (tmp_path / "b.json").write_bytes(binding.read_bytes())
    (tmp_path / "a.json").write_bytes(privileged.read_bytes())
    (tmp_path / "notes.txt").write_text("not an event")
    (tmp_path / "deeper").mkdir()
    (tmp_path / "deeper" / "c.json").write_text("{}")  # would be rejected if it were read
    code, document = simulate_json(capsys, str(tmp_path))
    assert (code, document["rejected"]) == (0, [])
    assert [signal["type"] for signal in document["signals"]] == ["K8S_PrivilegedContainer", "K8S_ClusterAdminBinding"]
    code, whole = simulate_json(capsys, str(FIXTURES))
    assert (code, whole["rejected"]) == (0, [])
    assert whole["incidents"] and all(plan["playbook"] for plan in whole["incidents"])


def test_simulate_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    alerts = [
        json.loads((FIXTURES / "defender-alert-k8s-clusteradminbinding.log-analytics-row.json").read_text()),
        {"type": "block_actions", "user": {"id": "U1"}},
    ]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(alerts).encode())))
    code, document = simulate_json(capsys, "-")
    assert code == 1
    assert [plan["playbook"] for plan in document["incidents"]] == ["rbac-delete-privileged-object"]
    [problem] = document["rejected"]
    assert (problem["file"], problem["index"]) == ("<stdin>", 1)


def test_a_document_neither_registry_nor_defender_is_not_an_event_this_app_reads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, document = simulate_json(capsys, str(FIXTURES / "samples/slack-block_actions.interaction-payload.json"))
    [problem] = document["rejected"]
    assert code == 1
    assert problem["reason"].startswith("not an event this app reads (known sources: registry, defender)")
    assert "Defender alert" not in problem["reason"]


def test_a_missing_playbook_folder_reads_the_same_from_both_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    event = str(FIXTURES / "samples/acr-imagepushed.eventgrid.json")

    def errors(*argv: str) -> str:
        assert remediate(list(argv)) == 2
        err = capsys.readouterr().err
        return err.removeprefix("remediate simulate: ").removeprefix("remediate playbooks check: ")

    expected = f"{missing} is not a folder\n"
    assert errors("playbooks", "check", str(missing)) == expected
    assert errors("simulate", "--playbooks", str(missing), event) == expected
    monkeypatch.setenv("REMEDIATION_PLAYBOOKS_DIR", str(missing))
    assert errors("playbooks", "check") == expected
    assert errors("simulate", event) == expected


def test_both_commands_take_the_playbook_folder_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notify.yaml").write_text(
        "name: notify-everything\ndescription: d\non: {source: registry, types: [ImagePushed]}\n"
        "steps: [{action: notify, params: {message: 'pushed ${targets.image}'}}]\napproval: {mode: auto}\n"
    )
    monkeypatch.setenv("REMEDIATION_PLAYBOOKS_DIR", str(tmp_path))
    assert remediate(["playbooks", "check"]) == 0
    assert capsys.readouterr().out == f"{tmp_path}: ok (notify-everything)\n"
    code, document = simulate_json(capsys, str(FIXTURES / "samples/acr-imagepushed.eventgrid.json"))
    assert (code, [plan["playbook"] for plan in document["incidents"]]) == (0, ["notify-everything"])
    code, document = simulate_json(  # --playbooks wins over the environment
        capsys, "--playbooks", str(ROOT / "playbooks"), str(FIXTURES / "samples/acr-imagepushed.eventgrid.json")
    )
    assert [plan["playbook"] for plan in document["incidents"]] == [None]


def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += parsers(child)
    return found


def test_every_option_and_command_has_help() -> None:
    undocumented = []
    for parser in parsers(build_parser()):
        for action in parser._actions:
            if not action.help or action.help == argparse.SUPPRESS:
                undocumented.append(f"{parser.prog}: {action.option_strings or action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                undocumented += [f"{parser.prog} {name}" for name in action.choices if name not in helped]
    assert undocumented == []
    progs = {parser.prog for parser in parsers(build_parser())}
    assert {"remediate simulate", "remediate playbooks check", "remediate audit verify"} <= progs


def test_make_clean_removes_what_the_targets_create() -> None:
    done = subprocess.run(["make", "-n", "clean"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    removed = set(done.stdout.replace("\\\n", " ").split())
    for path in (".venv", "node_modules", ".azurite", ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.egg-info"):
        assert path in removed
    assert "__pycache__" in done.stdout and "local.settings.json" in done.stdout
    assert "bench/results" not in done.stdout  # latest.json is committed


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
