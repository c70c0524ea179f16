"""The snapshot store against Azurite: write-once, loads what was saved, says what is missing."""

from __future__ import annotations

import threading
import uuid

import pytest

from remediation.store.snapshots import BlobSnapshotStore, InMemorySnapshotStore, SnapshotMissing


@pytest.fixture(params=["blob", "memory"])
def store(request: pytest.FixtureRequest, storage_connection_string: str) -> BlobSnapshotStore | InMemorySnapshotStore:
    if request.param == "memory":
        return InMemorySnapshotStore()
    return BlobSnapshotStore.from_connection_string(storage_connection_string, container=f"snap{uuid.uuid4().hex[:12]}")


def test_saves_and_loads(store: BlobSnapshotStore | InMemorySnapshotStore) -> None:
    document = {"kind": "ClusterRoleBinding", "metadata": {"name": "x"}, "subjects": [{"kind": "User", "name": "u"}]}
    assert store.save(key="inc-1/step-0.json", document=document) == "inc-1/step-0.json"
    assert store.load("inc-1/step-0.json") == document


def test_the_first_snapshot_is_kept(store: BlobSnapshotStore | InMemorySnapshotStore) -> None:
    store.save(key="inc-2/step-0.json", document={"unschedulable": False})
    store.save(key="inc-2/step-0.json", document={"unschedulable": True})
    assert store.load("inc-2/step-0.json") == {"unschedulable": False}


def test_racing_writers_keep_one_snapshot(store: BlobSnapshotStore | InMemorySnapshotStore) -> None:
    barrier = threading.Barrier(4)

    def save(n: int) -> None:
        barrier.wait()
        store.save(key="inc-3/step-0.json", document={"writer": n})

    threads = [threading.Thread(target=save, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    first = store.load("inc-3/step-0.json")
    assert first["writer"] in range(4)
    store.save(key="inc-3/step-0.json", document={"writer": 99})
    assert store.load("inc-3/step-0.json") == first


def test_a_missing_snapshot_is_named(store: BlobSnapshotStore | InMemorySnapshotStore) -> None:
    with pytest.raises(SnapshotMissing, match=r"inc-4/step-0\.json"):
        store.load("inc-4/step-0.json")
