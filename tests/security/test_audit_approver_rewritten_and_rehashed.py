"""Attack: rewrite the approver of a stored audit record and recompute the chain with plain SHA-256
(the hashing anyone can redo), head row included; `remediate audit verify` must flag it.

Records are written by the app's own composition (the key comes from REMEDIATION_AUDIT_KEY); the
rewrite goes through a raw TableClient, as someone holding the storage key would do it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
from azure.data.tables import TableClient, UpdateMode

from remediation.audit import AuditEvent, canonical_json
from remediation.cli import main as remediate
from remediation.compose import compose
from remediation.settings import Settings
from test_incidents import T0, make_plan, make_signal

FIELDS = ("seq", "at", "incident_id", "kind", "actor", "from_state", "to_state", "details", "prev_hash", "key_id")


def rehash_with_sha256(table: TableClient, incident_id: str, *, approver: str, strip_key_id: bool) -> None:
    rows = sorted(
        (row for row in table.query_entities("PartitionKey eq @pk", parameters={"pk": incident_id})
         if row["RowKey"] != "head"), key=lambda row: int(row["seq"]),
    )  # fmt: skip
    prev = "0" * 64
    for row in rows:
        body: dict[str, Any] = {name: row.get(name) for name in FIELDS}
        body["details"] = json.loads(row["details"])
        if body["kind"] == "approval":
            body["actor"] = approver
        if strip_key_id or body["key_id"] is None:
            del body["key_id"]
        body["prev_hash"] = prev
        prev = hashlib.sha256(canonical_json(body).encode()).hexdigest()
        entity = {**body, "details": canonical_json(body["details"]), "hash": prev}
        entity = {key: value for key, value in entity.items() if value is not None}
        table.upsert_entity({"PartitionKey": incident_id, "RowKey": row["RowKey"], **entity}, mode=UpdateMode.REPLACE)
    table.update_entity({"PartitionKey": incident_id, "RowKey": "head", "last_hash": prev}, mode=UpdateMode.MERGE)


@pytest.mark.parametrize("strip_key_id", [False, True], ids=["key-id-kept", "key-id-stripped"])
def test_a_rewritten_approver_with_recomputed_sha256_hashes_is_flagged(
    monkeypatch: pytest.MonkeyPatch, storage_connection_string: str, capsys: pytest.CaptureFixture[str],
    strip_key_id: bool,
) -> None:  # fmt: skip
    suffix = uuid.uuid4().hex[:10]
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection_string)
    monkeypatch.setenv("REMEDIATION_INCIDENTS_TABLE", f"incidents{suffix}")
    monkeypatch.setenv("REMEDIATION_AUDIT_TABLE", f"audit{suffix}")
    monkeypatch.setenv("REMEDIATION_AUDIT_KEY", "k" * 32)
    components = compose(Settings.from_env())
    store = components.incidents()
    incident, _ = store.open_or_fold(plan=make_plan(), signal=make_signal(), now=T0)
    store.audit.append(incident_id=incident.id, event=AuditEvent(kind="approval", actor="U-alice", at=T0))
    store.audit.append(incident_id=incident.id, event=AuditEvent(kind="transition", actor="system", at=T0))
    components.close()

    table = TableClient.from_connection_string(storage_connection_string, f"audit{suffix}")
    rehash_with_sha256(table, incident.id, approver="U-mallory", strip_key_id=strip_key_id)

    code = remediate(["audit", "verify", "--incident", incident.id])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out and all(incident.id in line for line in out)
    assert any(("edited" in line or "unkeyed" in line) for line in out)
