"""Which registry a signal or a step means: login server or resource id in, a `RegistryRef` out.

Neighbours: `handler` resolves every step's `registry` parameter here before touching anything;
`remediation.push_policy` asks `is_ours` before enriching a push. Our registries are the ones
configured in REMEDIATION_REGISTRIES (`{"myreg.azurecr.io": "/subscriptions/.../registries/myreg"}`)
plus any registry resource id the app's identity can read with `registries.get` (an Event Grid
topic names its registry by id). Anything else is reported, never acted on (`NotOurRegistry`).
Resolutions are cached for the life of the worker.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from remediation.actions.container_registry.calls import call
from remediation.actions.container_registry.clients import RegistryClients
from remediation.actions.runtime import PermanentFailure
from remediation.retry import RetryPolicy

logger = logging.getLogger(__name__)

_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
    r"/providers/microsoft\.containerregistry/registries/(?P<name>[^/]+)$",
    re.IGNORECASE,
)


class NotOurRegistry(PermanentFailure):
    """The image lives in a registry this app does not manage: reported, not acted on."""


@dataclass(frozen=True, slots=True)
class RegistryRef:
    login_server: str
    resource_id: str

    @property
    def subscription_id(self) -> str:
        return _parts(self.resource_id)[0]

    @property
    def resource_group(self) -> str:
        return _parts(self.resource_id)[1]

    @property
    def name(self) -> str:
        return _parts(self.resource_id)[2]


def _parts(resource_id: str) -> tuple[str, str, str]:
    match = _ID.fullmatch(resource_id.rstrip("/"))
    if match is None:
        raise PermanentFailure(f"{resource_id!r} is not a container registry resource id")
    return match["sub"], match["rg"], match["name"]


class RegistryResolver:
    def __init__(
        self, *, clients: RegistryClients, registries: Mapping[str, str], retry: RetryPolicy | None = None
    ) -> None:
        self._clients = clients
        self._retry = retry or RetryPolicy()
        self._by_login = {login.lower(): RegistryRef(login.lower(), rid) for login, rid in registries.items()}
        self._by_id = {ref.resource_id.lower(): ref for ref in self._by_login.values()}
        self._lock = threading.Lock()

    def is_ours(self, login_server: str | None) -> bool:
        if not login_server:
            return False
        with self._lock:
            return login_server.strip().lower() in self._by_login

    def subscriptions(self) -> list[str]:
        with self._lock:
            return sorted({ref.subscription_id for ref in self._by_login.values()})

    def resolve(self, registry: str) -> RegistryRef:
        """A login server (configured) or a resource id (configured or readable with registries.get)."""
        key = registry.strip().rstrip("/").lower()
        with self._lock:
            known = self._by_id.get(key) if key.startswith("/") else self._by_login.get(key)
        if known is not None:
            return known
        if not key.startswith("/"):
            raise NotOurRegistry(
                f"{registry} is not one of our registries (configured: {', '.join(sorted(self._by_login)) or 'none'}); "
                "reported, not acted on"
            )
        return self._lookup(registry.strip().rstrip("/"))

    def _lookup(self, resource_id: str) -> RegistryRef:
        subscription, group, name = _parts(resource_id)
        client = self._clients.mgmt(subscription)
        try:
            found = call(lambda: client.registries.get(group, name), what=f"read registry {name}", policy=self._retry)
        except PermanentFailure as failure:
            raise NotOurRegistry(f"{resource_id} is not one of our registries: {failure}") from failure
        login = str(found.properties.login_server if found.properties else f"{name}.azurecr.io").lower()
        ref = RegistryRef(login, resource_id)
        with self._lock:
            self._by_login[login] = ref
            self._by_id[resource_id.lower()] = ref
        logger.info("registry resolved", extra={"registry": login, "resource_id": resource_id})
        return ref
