"""The composition root: the whole object graph of the app, built from one `Settings`.

`compose(settings, ...)` is how the Functions layer (`functions/wiring.py`), the CLI, the
benchmarks and the tests get their objects; nothing else builds a store, a client or a credential.
Each part is built on first use and once (a cold start loads no SDK until an event needs it), and
nothing is kept after a failure, so the next call tries again. What an event does not always use
(the snapshot container, the push policy for other than registry signals) connects when first
used, not when the engine is built. `Components.warm` builds what a first event needs ahead of
it, for the Functions layer's warm-up (`functions/wiring.py`).

Failure domains: only opening incidents needs the playbook folder; the executor, undo, give-up and
the timer need neither valid playbooks nor a working Slack configuration (they log instead of
posting when Slack is off). Outside endpoints (ARM, Resource Graph, the ACR data plane, the Entra
authority) come from settings, so sovereign clouds and tests use the same seam; `credential`,
`clock` and `sleep` are the few things a host or a test may hand in directly.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from remediation.clock import Clock, utcnow
from remediation.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential

    from remediation.actions.container_registry import RegistryClients
    from remediation.actions.dispatch import ActionSet
    from remediation.actions.runtime import SnapshotStore
    from remediation.engine import Engine
    from remediation.executor import Executor
    from remediation.incidents import ApproverDirectory
    from remediation.intake import Intake
    from remediation.notifier import Notifier
    from remediation.playbooks import PlaybookSet
    from remediation.push_policy import FindingsRecheck, PushPolicy
    from remediation.signals import Signal
    from remediation.store.clients import StorageAccess
    from remediation.store.events import TableEventLedger
    from remediation.store.incidents import TableIncidentStore
    from remediation.store.snapshots import BlobSnapshotStore
    from remediation.store.work import StorageWorkQueue

logger = logging.getLogger(__name__)
T = TypeVar("T")

# The SDK modules an action family's first call imports (the kubernetes client's API module alone
# brings ~250 pydantic models): `Components.warm` imports them ahead when the family is in use.
FAMILY_MODULES: Mapping[str, tuple[str, ...]] = {
    "kubernetes": ("kubernetes.client", "kubernetes.client.api.core_v1_api"),  # reads by path, then the typed API
    "registry": ("azure.identity", "azure.mgmt.resourcegraph", "azure.containerregistry"),
}


class Notifications(Protocol):
    """How incidents are announced and who is in a user group: the Slack part, or anything alike."""

    @property
    def notifier(self) -> Notifier: ...

    @property
    def directory(self) -> ApproverDirectory: ...


NotificationsFactory = Callable[["Components"], Notifications | None]


class LazyCredential:
    """A TokenCredential built on the first token request, so composing imports no azure.identity."""

    def __init__(self, build: Callable[[], TokenCredential]) -> None:
        self._build = build
        self._credential: TokenCredential | None = None
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._lock:
            if self._credential is None:
                self._credential = self._build()
        return self._credential.get_token(*scopes, **kwargs)


class SnapshotsOnFirstUse:
    """The snapshot store, connected on its first save or load: previews never save, so opening an
    incident needs no blob client."""

    def __init__(self, build: Callable[[], SnapshotStore]) -> None:
        self._build = build

    def save(self, *, key: str, document: Mapping[str, Any]) -> str:
        return self._build().save(key=key, document=document)

    def load(self, key: str) -> dict[str, Any]:
        return self._build().load(key)


class Components:
    """The app's objects, each built once on first use; see `compose`."""

    def __init__(
        self,
        settings: Settings,
        *,
        credential: TokenCredential | None = None,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        notifications: NotificationsFactory | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.credential: TokenCredential = credential or LazyCredential(self._default_credential)
        self.storage_credential: TokenCredential = credential or self._default_storage_credential()
        self._notifications_factory = notifications
        self._built: dict[str, Any] = {}
        self._lock = threading.RLock()

    def _once(self, name: str, build: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            value: T = self._built[name]
            return value

    def _default_credential(self) -> TokenCredential:
        from azure.identity import DefaultAzureCredential

        azure = self.settings.azure
        options: dict[str, Any] = {"managed_identity_client_id": azure.client_id} if azure.client_id else {}
        if azure.authority_host:
            options["authority"] = azure.authority_host
        credential: TokenCredential = DefaultAzureCredential(**options)
        return credential

    # -- storage -----------------------------------------------------------------------------------
    def storage(self) -> StorageAccess:
        """The storage account every adapter connects through: AzureWebJobsStorage's connection string,
        or its identity-based settings with `storage_credential`."""
        from remediation.store.clients import StorageAccess

        return self._once(
            "storage", lambda: StorageAccess.from_settings(self.settings, credential=self.storage_credential)
        )

    def _default_storage_credential(self) -> TokenCredential:
        """`credential` when storage names no identity of its own (AzureWebJobsStorage__credential,
        __clientId); otherwise the one the host would use, built on the first token request."""
        from remediation.store.clients import default_storage_credential

        storage = self.settings.storage
        if storage.credential is None and storage.client_id in (None, self.settings.azure.client_id):
            return self.credential
        return LazyCredential(lambda: default_storage_credential(self.settings))

    def incidents(self) -> TableIncidentStore:
        return self._once("incidents", self._incidents)

    def _incidents(self) -> TableIncidentStore:
        from remediation.store.incidents import TableIncidentStore

        s = self.settings
        store = TableIncidentStore.from_storage(self.storage(), table_name=s.incidents_table, audit_table=s.audit_table)
        return keyed_audit(store, s)

    def ledger(self) -> TableEventLedger:
        from remediation.store.events import TableEventLedger

        s = self.settings
        return self._once("ledger", lambda: TableEventLedger.from_storage(self.storage(), table_name=s.events_table))

    def snapshots(self) -> BlobSnapshotStore:
        from remediation.store.snapshots import BlobSnapshotStore

        s = self.settings
        return self._once(
            "snapshots",
            lambda: BlobSnapshotStore.from_storage(self.storage(), container=s.snapshots_container),
        )

    def work(self) -> StorageWorkQueue:
        from remediation.store.work import StorageWorkQueue

        s = self.settings
        return self._once("work", lambda: StorageWorkQueue.from_storage(self.storage(), queue_name=s.actions_queue))

    # -- actions and their clients -----------------------------------------------------------------
    def registry_clients(self) -> RegistryClients:
        from remediation.actions.container_registry import Endpoints, RegistryClients
        from remediation.store.clients import SharedTransport

        azure = self.settings.azure

        def build() -> RegistryClients:
            endpoints = Endpoints(
                arm_base_url=azure.arm_endpoint,
                graph_base_url=azure.resource_graph_endpoint,
                data_endpoint=azure.acr_data_endpoint,
                acr_audience=azure.acr_audience,
            )
            http = self._once("registry_http", lambda: SharedTransport(self.settings.network))
            transport = http.transport(
                connection_timeout=endpoints.connection_timeout, read_timeout=endpoints.read_timeout
            )
            shared = dataclasses.replace(endpoints, transport=transport)
            return RegistryClients(credential=self.credential, endpoints=shared)

        return self._once("registry_clients", build)

    def actions(self) -> ActionSet:
        return self._once("actions", self._actions)

    def _actions(self) -> ActionSet:
        from remediation.actions.container_registry import RegistryRuntime
        from remediation.actions.dispatch import ActionSet
        from remediation.actions.kubernetes import ClusterClients, KubernetesRuntime
        from remediation.retry import RetryPolicy

        s = self.settings

        def kubernetes() -> KubernetesRuntime:
            arm = {"base_url": s.azure.arm_endpoint, "credential_scopes": [s.azure.arm_scope]}
            clients = ClusterClients(settings=s.kubernetes, credential=self.credential, arm_kwargs=arm)
            retry = RetryPolicy(
                attempts=s.kubernetes.retry_attempts,
                max_seconds=s.kubernetes.retry_max_seconds,
                max_retry_after=None,
                sleep=self.sleep,
            )
            return KubernetesRuntime(clients=clients, settings=s.kubernetes, retry=retry)

        def registry() -> RegistryRuntime:
            return RegistryRuntime.build(
                clients=self.registry_clients(),
                registries=dict(s.registry.registries),
                retry=RetryPolicy(sleep=self.sleep),
            )

        return ActionSet(runtimes={KubernetesRuntime: kubernetes, RegistryRuntime: registry})

    # -- the engine --------------------------------------------------------------------------------
    def notifications(self) -> Notifications | None:
        """The configured notifier and directory; None (log only) when Slack is off or misconfigured."""
        if self._notifications_factory is None:
            return None
        if self.settings.slack_problem:
            logger.error("Slack is off: %s", self.settings.slack_problem)
        return self._once("notifications", lambda: self._notifications_factory(self))  # type: ignore[misc]

    def notifier(self) -> Notifier:
        from remediation.notifier import LoggingNotifier

        configured = self.notifications()
        return configured.notifier if configured is not None else LoggingNotifier()

    def playbooks(self) -> PlaybookSet:
        """The playbooks of REMEDIATION_PLAYBOOKS_DIR; an invalid set opens no incident.

        Each problem is logged, and the error propagates so the host retries the event later, once
        someone has fixed the playbooks: no event is handled by half a policy, and none is lost.
        """
        return self._once("playbooks", self._load_playbooks)

    def _load_playbooks(self) -> PlaybookSet:
        from remediation.playbooks import PlaybookErrors, load_playbooks

        folder = self.settings.playbooks_dir
        try:
            return load_playbooks(folder)
        except PlaybookErrors as problems:
            for problem in problems.errors:
                logger.error("invalid playbook: %s", problem, extra={"playbooks_dir": str(folder)})
            raise

    def push_policy(self) -> PushPolicy:
        return self._once("push_policy", self._push_policy)

    def _push_policy(self) -> PushPolicy:
        from remediation.push_policy import PushPolicy, PushRules, TableTagIndex

        registry = self.settings.registry
        return PushPolicy(
            tag_index=TableTagIndex.from_storage(self.storage(), table_name=registry.tag_index_table),
            findings=self._findings(),
            recheck=self._recheck_queue(),
            rules=PushRules(disallowed_tags=registry.disallowed_tags, pusher_allowlist=registry.pusher_allowlist),
            is_ours=self._resolver().is_ours,
        )

    def findings_recheck(self) -> FindingsRecheck:
        from remediation.push_policy import FindingsRecheck

        return self._once(
            "findings_recheck", lambda: FindingsRecheck(findings=self._findings(), queue=self._recheck_queue())
        )

    def _resolver(self) -> Any:
        from remediation.actions.container_registry import RegistryResolver

        registries = dict(self.settings.registry.registries)
        return self._once("resolver", lambda: RegistryResolver(clients=self.registry_clients(), registries=registries))

    def _findings(self) -> Any:
        from remediation.push_policy import ResourceGraphFindings

        return self._once(
            "findings",
            lambda: ResourceGraphFindings(
                clients=self.registry_clients(), subscriptions=self._resolver().subscriptions()
            ),
        )

    def _recheck_queue(self) -> Any:
        from remediation.push_policy import RecheckQueue

        s = self.settings
        return self._once(
            "recheck_queue",
            lambda: RecheckQueue.from_storage(self.storage(), delays=s.registry.findings_recheck_delays),
        )

    def engine(self) -> Engine:
        return self._once("engine", self._engine)

    def _engine(self) -> Engine:
        from remediation.actions.kubernetes.images import ImageFinder
        from remediation.engine import Engine
        from remediation.executor import Previewer

        configured = self.notifications()
        return Engine(
            playbooks=self.playbooks,
            incidents=self.incidents(),
            work=self.work(),
            notifier=self.notifier(),
            directory=configured.directory if configured is not None else None,
            enrich=self._enrich,
            previewer=Previewer(actions=self.actions(), snapshots=SnapshotsOnFirstUse(self.snapshots)),
            image_finder=ImageFinder.of_actions(self.actions(), sleep=self.sleep),  # where an image runs
            clock=self.clock,
            retention=timedelta(days=self.settings.incident_retention_days),
        )

    def _enrich(self, signal: Signal) -> Signal:
        from remediation.push_policy import PushPolicy

        return self.push_policy().enrich(signal) if PushPolicy.concerns(signal) else signal

    def executor(self) -> Executor:
        from remediation.executor import Executor

        return self._once(
            "executor",
            lambda: Executor(
                incidents=self.incidents(),
                actions=self.actions(),
                snapshots=SnapshotsOnFirstUse(self.snapshots),
                notifier=self.notifier(),
                clock=self.clock,
            ),
        )

    def intake(self) -> Intake:
        from remediation.intake import Intake

        return self._once("intake", lambda: Intake(ledger=self.ledger(), sink=self.engine()))

    def warm(self, *, stop: Callable[[], bool] = lambda: False) -> None:
        """Build what a first event needs: the intake with its ledger and the engine, the playbooks,
        the push policy when registries are ours. Then, unless `stop()` says an event is already being
        handled (it would compete for the interpreter), import the SDKs of the action families the
        settings let act (`FAMILY_MODULES`: clusters allowed, registries ours). A failure propagates;
        nothing failed is kept, so the event builds it again."""
        self.intake()
        self.playbooks()
        settings = self.settings
        if settings.registry.registries:
            self.push_policy()
        families = [
            family
            for family, in_use in (
                ("kubernetes", bool(settings.kubernetes.clusters or settings.kubernetes.kubeconfigs)),
                ("registry", bool(settings.registry.registries)),
            )
            if in_use
        ]
        for module in (module for family in families for module in FAMILY_MODULES[family]):
            if stop():
                return
            importlib.import_module(module)

    def close(self) -> None:
        with self._lock:
            built, self._built = self._built, {}
        for value in built.values():
            close = getattr(value, "close", None)
            if callable(close):
                close()


def keyed_audit(store: TableIncidentStore, settings: Settings) -> TableIncidentStore:
    """`store` with its audit log sealing and verifying with the settings' keys (REMEDIATION_AUDIT_KEY,
    REMEDIATION_AUDIT_OLD_KEYS); without a key the chain stays unkeyed, as `remediation.audit` says."""
    from remediation.audit import AuditKeys
    from remediation.store.audit import TableAuditLog

    if isinstance(store.audit, TableAuditLog):
        store.audit = store.audit.with_keys(AuditKeys(current=settings.audit_key, old=settings.audit_old_keys))
    return store


def compose(
    settings: Settings,
    *,
    credential: TokenCredential | None = None,
    clock: Clock = utcnow,
    sleep: Callable[[float], None] = time.sleep,
    notifications: NotificationsFactory | None = None,
) -> Components:
    """The app's object graph for `settings`. `credential` defaults to DefaultAzureCredential (the
    managed identity in Azure, AZURE_CLIENT_ID for a user-assigned one) and, handed in, also reaches
    identity-based storage (`Components.storage`); `notifications` builds the Slack part (bot/
    supplies it; without it the engine logs)."""
    return Components(settings, credential=credential, clock=clock, sleep=sleep, notifications=notifications)
