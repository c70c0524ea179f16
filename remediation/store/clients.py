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
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from remediation.settings import NetworkSettings

if TYPE_CHECKING:
    import requests
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import RequestsTransport
    from azure.data.tables import TableClient, TableServiceClient
    from azure.storage.blob import ContainerClient
    from azure.storage.queue import QueueClient

    from remediation.settings import Settings

CLIENT_DEFAULTS: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 10, "retry_total": 2}
MANAGED_IDENTITY = "managedidentity"  # the one `AzureWebJobsStorage__credential` the host knows
POOL_SIZE = 32  # connections kept per host: more than the threads of one worker that use storage at once


class SharedTransport:
    """One requests.Session under every client of a service, so they reuse its connections.

    azure-core's `RequestsTransport` takes its timeouts and certificate check from its own
    configuration, not from the client it serves, so there is one transport (over the same
    session, which it does not own) per distinct (connect timeout, read timeout, verify).
    requests reads the proxy variables (and ~/.netrc) again on every request of a session that
    trusts the environment: this one does only when a proxy variable is set
    (`NetworkSettings.proxied`). Otherwise it reads nothing, and the CA bundle requests would have
    found in REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE is passed as `verify`. Thread-safe; `close`
    closes the session.
    """

    def __init__(self, network: NetworkSettings | None = None, *, pool_size: int = POOL_SIZE) -> None:
        self.network = network or NetworkSettings()
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._transports: dict[tuple[float, float, bool | str], RequestsTransport] = {}

    @property
    def session(self) -> requests.Session:
        with self._lock:
            return self._open()

    def transport(
        self, *, connection_timeout: float, read_timeout: float, connection_verify: bool | str | None = None
    ) -> RequestsTransport:
        """The transport for these timeouts and this certificate check (None: the CA bundle, if any)."""
        from azure.core.pipeline.transport import RequestsTransport

        verify = (self.network.ca_bundle or True) if connection_verify is None else connection_verify
        key = (connection_timeout, read_timeout, verify)
        with self._lock:
            if key not in self._transports:
                self._transports[key] = RequestsTransport(
                    session=self._open(),
                    session_owner=False,
                    connection_timeout=connection_timeout,
                    read_timeout=read_timeout,
                    connection_verify=verify,
                )
            return self._transports[key]

    def _open(self) -> requests.Session:
        if self._session is None:
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            session = requests.Session()
            session.trust_env = self.network.proxied
            # As azure-core sets up its own sessions: the SDK's retry policy retries, urllib3 never does.
            retries = Retry(total=False, redirect=False, raise_on_status=False)
            adapter = HTTPAdapter(pool_maxsize=self._pool_size, max_retries=retries)
            for scheme in ("http://", "https://"):
                session.mount(scheme, adapter)
            self._session = session
        return self._session

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            self._transports.clear()
        if session is not None:
            session.close()


@dataclass(frozen=True, slots=True)
class StorageAccess:
    """The storage account: a connection string, or three endpoints and a TokenCredential.

    `client_options` go to every client (after `CLIENT_DEFAULTS`, before a call's own keywords),
    e.g. `connection_verify=<CA bundle>` for an emulator's test certificate. With `transport`, every
    client goes through it (its timeouts and `connection_verify` pick the shared transport's
    configuration); without, each client makes its own, as the SDKs do.
    """

    connection_string: str = field(default="", repr=False)  # may hold the account key
    table_endpoint: str = ""
    queue_endpoint: str = ""
    blob_endpoint: str = ""
    credential: TokenCredential | None = field(default=None, repr=False, compare=False)
    client_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    transport: SharedTransport | None = field(default=None, repr=False, compare=False)

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
    def from_connection_string(
        cls, conn_str: str, *, transport: SharedTransport | None = None, **client_options: Any
    ) -> StorageAccess:
        if not conn_str:
            raise ValueError("the storage connection string is empty")
        return cls(connection_string=conn_str, client_options=MappingProxyType(client_options), transport=transport)

    @classmethod
    def from_settings(cls, settings: Settings, *, credential: TokenCredential, **client_options: Any) -> StorageAccess:
        """The connection string when AzureWebJobsStorage holds one (as the host reads it); otherwise
        the identity-based endpoints with `credential`. Its clients share one transport, set up for
        the settings' network (proxy variables, CA bundle)."""
        transport = SharedTransport(settings.network)
        if settings.storage_connection:
            return cls.from_connection_string(settings.storage_connection, transport=transport, **client_options)
        storage = settings.storage
        return cls(
            table_endpoint=storage.endpoint("table"),
            queue_endpoint=storage.endpoint("queue"),
            blob_endpoint=storage.endpoint("blob"),
            credential=credential,
            client_options=MappingProxyType(client_options),
            transport=transport,
        )

    @classmethod
    def coerce(cls, storage: StorageAccess | str) -> StorageAccess:
        """`storage` itself, or a connection string made one (for the thin `from_connection_string`s)."""
        return storage if isinstance(storage, StorageAccess) else cls.from_connection_string(storage)

    @property
    def uses_identity(self) -> bool:
        return not self.connection_string

    def _options(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        options = {**CLIENT_DEFAULTS, **self.client_options, **kwargs}
        if self.transport is not None and "transport" not in options:
            options["transport"] = self.transport.transport(
                connection_timeout=options.pop("connection_timeout"),
                read_timeout=options.pop("read_timeout"),
                connection_verify=options.pop("connection_verify", None),
            )
        return options

    def close(self) -> None:
        """Close the shared transport's connections (the clients' own close leaves them open)."""
        if self.transport is not None:
            self.transport.close()

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
