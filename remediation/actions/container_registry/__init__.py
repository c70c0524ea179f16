"""Azure Container Registry actions: quarantine (lock or move) and release an image tag.

`tags` holds the two actions, their parameter models and the family's `RegistryRuntime`;
`resolve` maps login servers and resource ids to our registries; `acr_data` (data plane) and `arm`
(control plane, importImage) wrap the SDKs; `lock`, `move` and `release` are the three ways a tag
changes; `calls` classifies every SDK failure; `clients` builds the SDK clients.
"""

from __future__ import annotations

from remediation.actions.container_registry.clients import Endpoints, RegistryClients
from remediation.actions.container_registry.resolve import NotOurRegistry, RegistryRef, RegistryResolver
from remediation.actions.container_registry.tags import (
    ACTIONS,
    QuarantineTag,
    QuarantineTagParams,
    RegistryRuntime,
    ReleaseTag,
    ReleaseTagParams,
)

__all__ = [
    "ACTIONS",
    "Endpoints",
    "NotOurRegistry",
    "QuarantineTag",
    "QuarantineTagParams",
    "RegistryClients",
    "RegistryRef",
    "RegistryResolver",
    "RegistryRuntime",
    "ReleaseTag",
    "ReleaseTagParams",
]
