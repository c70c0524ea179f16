"""Settings from environment variables: local.settings.json `Values` locally, app settings in Azure.

Read once per worker by the composition code in `functions/` and by the CLI. Secrets are never
defaults here: in Azure they are Key Vault references or managed identity.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(RuntimeError):
    """A required setting is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    storage_connection: str
    events_table: str = "events"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        values = os.environ if env is None else env
        storage = values.get("AzureWebJobsStorage", "").strip()
        if not storage:
            raise SettingsError(
                "AzureWebJobsStorage is not set: use 'UseDevelopmentStorage=true' with Azurite locally, "
                "or the storage account's connection string in Azure"
            )
        return cls(
            storage_connection=storage,
            events_table=values.get("REMEDIATION_EVENTS_TABLE", "events").strip() or "events",
        )
