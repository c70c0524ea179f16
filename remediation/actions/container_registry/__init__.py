"""Azure Container Registry actions: quarantine (lock or move) and release an image tag.

`handler.RegistryActions` is the ActionHandler; `resolve` maps login servers and resource ids to
our registries; `acr_data` (data plane) and `arm` (control plane, importImage) wrap the SDKs;
`lock`, `move` and `release` are the three ways a tag changes; `calls` retries and classifies every
SDK call; `clients` builds the SDK clients. Parameter models live in `remediation.actions.acr`.
"""

from __future__ import annotations

from remediation.actions.containerregistry.calls import RetryPolicy
from remediation.actions.containerregistry.clients import Endpoints, RegistryClients
from remediation.actions.containerregistry.handler import QUARANTINE, RELEASE, RegistryActions
from remediation.actions.containerregistry.resolve import NotOurRegistry, RegistryRef, RegistryResolver

__all__ = [
    "QUARANTINE",
    "RELEASE",
    "Endpoints",
    "NotOurRegistry",
    "RegistryActions",
    "RegistryClients",
    "RegistryRef",
    "RegistryResolver",
    "RetryPolicy",
]
