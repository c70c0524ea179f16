"""How every storage adapter connects: one `StorageAccess`, bounded timeouts and retries, once.

`StorageAccess` is the storage account as the app reaches it: either `AzureWebJobsStorage`'s
connection string (Azurite locally, an account key), or identity-based, the way the Functions host
reads `AzureWebJobsStorage__accountName` / `__blobServiceUri` / `__queueServiceUri` /
`__tableServiceUri`: the three service endpoints and a TokenCredential (azure-identity; the
composition's, see `remediation.compose.Components.storage`). Its `table_client`, `queue_client`
and `container_client` are the only places a storage client is made.

Neighbours: the table adapters (`events`, `incidents`, `audit`, the push policy's tag index, the
bot's message store), the queues (`work`, the findings re-check, the Slack outbox) and `snapshots`
(with a longer read for blobs) take a StorageAccess in their `from_storage`; `from_connection_string`
stays as a thin wrapper. The SDKs are imported inside, so importing an adapter costs nothing until it
connects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient, TableServiceClient
    from azure.storage.blob import ContainerClient
    from azure.storage.queue import QueueClient

    from remediation.settings import Settings

CLIENT_DEFAULTS: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 10, "retry_total": 2}
MANAGED_IDENTITY = "managedidentity"  # the one `AzureWebJobsStorage__credential` the host knows


@dataclass(frozen=True, slots=True)
class StorageAccess:
    """The storage account: a connection string, or three endpoints and a TokenCredential.

    `client_options` go to every client (after `CLIENT_DEFAULTS`, before a call's own keywords),
    e.g. `connection_verify=<CA bundle>` for an emulator's test certificate.
    """

    connection_string: str = field(default="", repr=False)  # may hold the account key
    table_endpoint: str = ""
    queue_endpoint: str = ""
    blob_endpoint: str = ""
    credential: TokenCredential | None = field(default=None, repr=False, compare=False)
    client_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.connection_string:
            return
        if self.credential is None:
            raise ValueError("storage needs a connection string or a credential")
        endpoints = {"table": self.table_endpoint, "queue": self.queue_endpoint, "blob": self.blob_endpoint}
        missing = [name for name, url in endpoints.items() if not url.startswith("https://")]
        if missing:
            raise ValueError(f"identity-based storage needs https endpoints; not for: {', '.join(missing)}")

    @classmethod
    def from_connection_string(cls, conn_str: str, **client_options: Any) -> StorageAccess:
        if not conn_str:
            raise ValueError("the storage connection string is empty")
        return cls(connection_string=conn_str, client_options=MappingProxyType(client_options))

    @classmethod
    def from_settings(cls, settings: Settings, *, credential: TokenCredential, **client_options: Any) -> StorageAccess:
        """The connection string when AzureWebJobsStorage holds one (as the host reads it); otherwise
        the identity-based endpoints with `credential`."""
        if settings.storage_connection:
            return cls.from_connection_string(settings.storage_connection, **client_options)
        storage = settings.storage
        return cls(
            table_endpoint=storage.endpoint("table"),
            queue_endpoint=storage.endpoint("queue"),
            blob_endpoint=storage.endpoint("blob"),
            credential=credential,
            client_options=MappingProxyType(client_options),
        )

    @classmethod
    def coerce(cls, storage: StorageAccess | str) -> StorageAccess:
        """`storage` itself, or a connection string made one (for the thin `from_connection_string`s)."""
        return storage if isinstance(storage, StorageAccess) else cls.from_connection_string(storage)

    @property
    def uses_identity(self) -> bool:
        return not self.connection_string

    def _options(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {**CLIENT_DEFAULTS, **self.client_options, **kwargs}

    def table_client(self, name: str, **kwargs: Any) -> TableClient:
        """A TableClient with `CLIENT_DEFAULTS` (timeouts, bounded retry), overridable by `kwargs`."""
        from azure.data.tables import TableClient

        if self.connection_string:
            return TableClient.from_connection_string(self.connection_string, name, **self._options(kwargs))
        return TableClient(self.table_endpoint, name, credential=self.credential, **self._options(kwargs))

    def table_service(self, **kwargs: Any) -> TableServiceClient:
        from azure.data.tables import TableServiceClient

        if self.connection_string:
            return TableServiceClient.from_connection_string(self.connection_string, **self._options(kwargs))
        return TableServiceClient(self.table_endpoint, credential=self.credential, **self._options(kwargs))

    def queue_client(self, name: str, *, base64: bool = True, create: bool = True, **kwargs: Any) -> QueueClient:
        """A queue client, speaking base64 as Functions queue triggers expect unless `base64=False`;
        with `create` the queue is created if it does not exist."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient

        if base64:
            kwargs = {
                "message_encode_policy": BinaryBase64EncodePolicy(),
                "message_decode_policy": BinaryBase64DecodePolicy(),
                **kwargs,
            }
        if self.connection_string:
            queue = QueueClient.from_connection_string(self.connection_string, name, **self._options(kwargs))
        else:
            queue = QueueClient(self.queue_endpoint, name, credential=self.credential, **self._options(kwargs))
        if create:
            with contextlib.suppress(ResourceExistsError):
                queue.create_queue()
        return queue

    def container_client(self, name: str, **kwargs: Any) -> ContainerClient:
        from azure.storage.blob import ContainerClient

        if self.connection_string:
            return ContainerClient.from_connection_string(self.connection_string, name, **self._options(kwargs))
        return ContainerClient(self.blob_endpoint, name, credential=self.credential, **self._options(kwargs))


def default_storage_credential(settings: Settings) -> TokenCredential:
    """The credential the host would use for AzureWebJobsStorage: `__credential=managedidentity` is
    the managed identity (`__clientId`, else AZURE_CLIENT_ID, picks a user-assigned one); otherwise
    DefaultAzureCredential (developer sign-ins locally), with `__clientId` as its managed identity."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    storage, azure = settings.storage, settings.azure
    client_id = storage.client_id or azure.client_id
    if storage.credential == MANAGED_IDENTITY:
        return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    options: dict[str, Any] = {"managed_identity_client_id": client_id} if client_id else {}
    if azure.authority_host:
        options["authority"] = azure.authority_host
    return DefaultAzureCredential(**options)


def make_table_client(storage: StorageAccess | str, *, table_name: str, **kwargs: Any) -> TableClient:
    """`StorageAccess.table_client` of `storage` (a StorageAccess or a connection string)."""
    return StorageAccess.coerce(storage).table_client(table_name, **kwargs)


def base64_queue(storage: StorageAccess | str, *, queue_name: str, **kwargs: Any) -> QueueClient:
    """`StorageAccess.queue_client` (base64, created if missing) of `storage` (or a connection string)."""
    return StorageAccess.coerce(storage).queue_client(queue_name, **kwargs)
