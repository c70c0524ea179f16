"""Shared pytest fixtures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from azure.data.tables import TableClient

from azurite import Azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One in-memory Azurite for the whole session; tests isolate themselves by unique keys/names."""
    with Azurite() as emulator:
        yield emulator


@pytest.fixture
def storage_connection_string(azurite: Azurite) -> str:
    return azurite.connection_string


@dataclass(frozen=True)
class AppTables:
    """The Function App's tables for one test, each under a fresh name."""

    connection_string: str
    events: str
    incidents: str
    audit: str
    queue: str

    def client(self, name: str) -> TableClient:
        return TableClient.from_connection_string(self.connection_string, table_name=name)


FIXTURE_CLUSTERS = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1",
    "/subscriptions/1111111-1111-1111-111-11111111/resourceGroups/qek8dm0-azure-k8stest"
    "/providers/Microsoft.ContainerService/managedClusters/k8s--295-aks1-28-otc-dev-v4",
)


@pytest.fixture
def app_tables(monkeypatch: pytest.MonkeyPatch, storage_connection_string: str) -> Iterator[AppTables]:
    """Point the Function App at Azurite with fresh tables, and build its engine anew."""
    from functions import wiring

    suffix = uuid.uuid4().hex[:12]
    tables = AppTables(
        storage_connection_string, f"events{suffix}", f"incidents{suffix}", f"audit{suffix}", f"actions-{suffix}"
    )
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection_string)
    monkeypatch.setenv("REMEDIATION_EVENTS_TABLE", tables.events)
    monkeypatch.setenv("REMEDIATION_INCIDENTS_TABLE", tables.incidents)
    monkeypatch.setenv("REMEDIATION_AUDIT_TABLE", tables.audit)
    monkeypatch.setenv("REMEDIATION_ACTIONS_QUEUE", tables.queue)
    # The clusters the fixtures' alerts name: the bot acts on no other (tests of the allow-list set their own).
    monkeypatch.setenv("REMEDIATION_CLUSTERS", ",".join(FIXTURE_CLUSTERS))
    wiring.use()  # nothing handed in besides settings, unless a test says so
    yield tables
    wiring.use()
