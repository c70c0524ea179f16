"""Attack: edit a snapshot blob (another name, another subject) and queue an undo of the deletion.

The blob is edited in the real Azurite through a raw blob client, as someone holding the storage key
(not our code) would. The undo must refuse the snapshot and create nothing.
"""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
from azure.storage.blob import ContainerClient

from kube_api import CLUSTER, RBAC, Harness
from remediation.actions.kubernetes import DeleteRbacObjectParams
from remediation.actions.runtime import PermanentFailure
from remediation.store.snapshots import BlobSnapshotStore

pytest_plugins = ["kube_api"]

BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "dev-view"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
    "subjects": [{"kind": "Group", "name": "dev", "apiGroup": "rbac.authorization.k8s.io"}],
}
ATTACKER = {"kind": "User", "name": "mallory@example.com", "apiGroup": "rbac.authorization.k8s.io"}


def test_an_edited_snapshot_is_not_restored_by_undo(k8s: Harness, storage_connection_string: str) -> None:
    container = f"snapshots{uuid.uuid4().hex[:10]}"
    k8s = dataclasses.replace(k8s, snapshots=BlobSnapshotStore.from_connection_string(
        storage_connection_string, container=container))  # fmt: skip
    k8s.emu.put(RBAC["ClusterRoleBinding"], BINDING)
    params = DeleteRbacObjectParams(cluster=CLUSTER, kind="ClusterRoleBinding", name="dev-view")
    preview = k8s.handler.preview("kubernetes.delete_rbac_object", params, k8s.ctx())
    deleted = k8s.handler.apply("kubernetes.delete_rbac_object", params, k8s.ctx(expected=preview.target))
    assert deleted.snapshot and k8s.emu.get(RBAC["ClusterRoleBinding"], None, "dev-view") is None

    raw = ContainerClient.from_connection_string(storage_connection_string, container)
    document = json.loads(raw.download_blob(deleted.snapshot).readall())
    document["object"]["metadata"]["name"] = "backdoor"
    document["object"]["roleRef"]["name"] = "cluster-admin"
    document["object"]["subjects"] = [ATTACKER]
    document["target"]["name"] = "backdoor"
    raw.upload_blob(deleted.snapshot, json.dumps(document).encode(), overwrite=True)

    with pytest.raises(PermanentFailure, match="snapshot"):
        k8s.handler.undo("kubernetes.delete_rbac_object", params, deleted, k8s.ctx())
    assert k8s.emu.get(RBAC["ClusterRoleBinding"], None, "backdoor") is None
    assert k8s.emu.get(RBAC["ClusterRoleBinding"], None, "dev-view") is None
