"""Settings from environment variables: local.settings.json `Values` locally, app settings in Azure.

Read once per worker by the composition code in `functions/` and by the CLI. Secrets are never
defaults here: in Azure they are Key Vault references or managed identity.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PLAYBOOKS_DIR = Path(__file__).resolve().parent.parent / "playbooks"


class SettingsError(RuntimeError):
    """A required setting is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    storage_connection: str
    events_table: str = "events"
    incidents_table: str = "incidents"
    audit_table: str = "audit"
    actions_queue: str = "remediation-actions"
    snapshots_container: str = "snapshots"
    playbooks_dir: Path = DEFAULT_PLAYBOOKS_DIR

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        values = os.environ if env is None else env

        def setting(name: str, default: str) -> str:
            return values.get(name, "").strip() or default

        storage = setting("AzureWebJobsStorage", "")
        if not storage:
            raise SettingsError(
                "AzureWebJobsStorage is not set: use 'UseDevelopmentStorage=true' with Azurite locally, "
                "or the storage account's connection string in Azure"
            )
        return cls(
            storage_connection=storage,
            events_table=setting("REMEDIATION_EVENTS_TABLE", "events"),
            incidents_table=setting("REMEDIATION_INCIDENTS_TABLE", "incidents"),
            audit_table=setting("REMEDIATION_AUDIT_TABLE", "audit"),
            actions_queue=setting("REMEDIATION_ACTIONS_QUEUE", "remediation-actions"),
            snapshots_container=setting("REMEDIATION_SNAPSHOTS_CONTAINER", "snapshots"),
            playbooks_dir=Path(setting("REMEDIATION_PLAYBOOKS_DIR", str(DEFAULT_PLAYBOOKS_DIR))),
        )
