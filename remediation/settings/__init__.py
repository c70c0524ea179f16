"""Every setting the app reads, declared once, and the one reader of the environment.

`declared.DECLARED` lists each variable (app settings in Azure, local.settings.json `Values`
locally) with its meaning, default and local value; the README's settings table and
local.settings.example.json follow it. `Settings.from_env` here is the one reader of os.environ in
the app. Its groups are for the composition code in `functions/wiring.py` and the CLI: `kubernetes`
(the Kubernetes actions), `registry` (the container registry actions and remediation.push_policy),
`slack` (bot/), `azure` (the endpoints and identity of the Azure SDK clients) and `network` (the
process's proxy and CA bundle variables, for the shared transport of `remediation.store.clients`).
Secrets have no defaults and never appear in a repr: in Azure they are Key Vault references or
managed identity.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from remediation.settings.declared import (
    _DEFAULTS,
    DECLARED,
    DEFAULT_ACR_AUDIENCE,
    DEFAULT_ACR_DATA_ENDPOINT,
    DEFAULT_ARM_ENDPOINT,
    DEFAULT_FINDINGS_RECHECK_DELAYS,
    DEFAULT_PLAYBOOKS_DIR,
    DEFAULT_PROTECTED_NAMESPACES,
    SLACK_API_BASE_URL,
    SWITCH,
    Setting,
    SettingsError,
    render_settings_table,
)

__all__ = [
    "CA_BUNDLE_VARIABLES",
    "DECLARED",
    "DEFAULT_PLAYBOOKS_DIR",
    "PROXY_VARIABLES",
    "AzureSettings",
    "KubernetesSettings",
    "NetworkSettings",
    "RegistrySettings",
    "Setting",
    "Settings",
    "SettingsError",
    "SlackSettings",
    "StorageSettings",
    "render_settings_table",
]


@dataclass(frozen=True, slots=True)
class KubernetesSettings:
    protected_namespaces: frozenset[str] = DEFAULT_PROTECTED_NAMESPACES
    max_unschedulable_fraction: float = 1 / 3
    kubeconfigs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    request_timeout_seconds: float = 30.0
    retry_attempts: int = 5
    retry_max_seconds: float = 60.0
    clusters: frozenset[str] = frozenset()  # lower-cased AKS resource ids and kubeconfig names acted on

    def __post_init__(self) -> None:
        if not 0 < self.max_unschedulable_fraction <= 1:
            raise SettingsError("REMEDIATION_MAX_UNSCHEDULABLE_FRACTION must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    registries: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # login server -> id
    disallowed_tags: Mapping[str, frozenset[str]] = field(default_factory=lambda: _default_disallowed_tags())
    pusher_allowlist: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    tag_index_table: str = "tagindex"
    findings_recheck_delays: tuple[int, ...] = DEFAULT_FINDINGS_RECHECK_DELAYS  # seconds


@dataclass(frozen=True, slots=True)
class SlackSettings:
    bot_token: str = field(repr=False)
    signing_secret: str = field(repr=False)
    default_channel: str | None = None
    api_base_url: str = SLACK_API_BASE_URL
    messages_table: str = "slackmessages"
    team_id: str | None = None  # None: any workspace the signing secret verifies
    app_id: str | None = None  # None: any app

    def __post_init__(self) -> None:
        if not self.api_base_url.endswith("/"):
            object.__setattr__(self, "api_base_url", self.api_base_url + "/")


@dataclass(frozen=True, slots=True)
class AzureSettings:
    arm_endpoint: str = DEFAULT_ARM_ENDPOINT
    authority_host: str | None = None  # None: azure-identity's default
    resource_graph_endpoint: str = ""  # "": the ARM endpoint
    acr_audience: str = DEFAULT_ACR_AUDIENCE
    acr_data_endpoint: str = DEFAULT_ACR_DATA_ENDPOINT  # format string with `{login_server}`
    client_id: str | None = None  # None: the system-assigned identity

    def __post_init__(self) -> None:
        if not self.resource_graph_endpoint:
            object.__setattr__(self, "resource_graph_endpoint", self.arm_endpoint)

    @property
    def arm_scope(self) -> str:
        return f"{self.arm_endpoint.rstrip('/')}/.default"


STORAGE_SERVICES = ("blob", "queue", "table")


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """AzureWebJobsStorage's identity-based form, as the Functions host reads it: used when the
    connection string (`Settings.storage_connection`) is unset. An endpoint is its `__<service>ServiceUri`,
    else `https://<__accountName>.<service>.core.windows.net`."""

    account_name: str | None = None
    blob_service_uri: str | None = None
    queue_service_uri: str | None = None
    table_service_uri: str | None = None
    credential: str | None = None  # "managedidentity", or None: DefaultAzureCredential
    client_id: str | None = None  # a user-assigned identity; None: AZURE_CLIENT_ID, else the system-assigned

    @property
    def configured(self) -> bool:
        return bool(self.account_name or self.blob_service_uri or self.queue_service_uri or self.table_service_uri)

    def endpoint(self, service: str) -> str:
        """The `service` ("blob", "queue", "table") endpoint; SettingsError when there is none."""
        uri: str | None = getattr(self, f"{service}_service_uri")
        if uri:
            return uri
        if self.account_name:
            return f"https://{self.account_name}.{service}.core.windows.net"
        raise SettingsError(
            f"AzureWebJobsStorage__{service}ServiceUri is not set (nor AzureWebJobsStorage__accountName): "
            "identity-based storage needs the blob, queue and table endpoints"
        )


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")  # lower-case wins, as in urllib
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")  # the first set one, as in requests


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """The process's HTTP environment, as requests reads it: proxy variables (either case) and the CA
    bundle. No app setting: they are taken from the process environment even when `Settings.from_env`
    is given a mapping, because requests and urllib read them there whatever the app's settings say."""

    proxies: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)  # may hold a password
    ca_bundle: str | None = None

    @property
    def proxied(self) -> bool:
        """True when any proxy variable is set: HTTP clients must then read the environment per request
        (`NO_PROXY` decides per host), as requests does when trusting it."""
        return bool(self.proxies)


@dataclass(frozen=True, slots=True)
class Settings:
    storage_connection: str = field(repr=False)  # "" when storage is identity-based (`storage`)
    events_table: str = "events"
    incidents_table: str = "incidents"
    audit_table: str = "audit"
    actions_queue: str = "remediation-actions"
    snapshots_container: str = "snapshots"
    playbooks_dir: Path = DEFAULT_PLAYBOOKS_DIR
    incident_retention_days: float = 90.0
    viewers: tuple[str, ...] = ()  # user ids and @group handles who may read incidents besides approvers
    audit_key: str | None = field(default=None, repr=False)  # HMAC key of the audit chain
    audit_old_keys: tuple[str, ...] = field(default=(), repr=False)
    slack_outbox_queue: str = "slack-outbox"
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    slack: SlackSettings | None = None  # None: SLACK_BOT_TOKEN unset or `slack_problem`; the engine only logs
    # Why Slack is off although it was asked for. Kept apart so that a Slack mistake stops only the
    # Slack endpoint: execution, undo and the timer still run (and log instead of posting).
    slack_problem: str | None = None
    azure: AzureSettings = field(default_factory=AzureSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)  # identity-based AzureWebJobsStorage
    prewarm: bool = False  # build the composition when the worker loads the app (REMEDIATION_PREWARM)
    # Not an app setting, so not compared: see NetworkSettings.
    network: NetworkSettings = field(default_factory=NetworkSettings, compare=False)

    @property
    def storage_uses_identity(self) -> bool:
        """True when storage is reached with a token (no connection string, identity settings given)."""
        return not self.storage_connection and self.storage.configured

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, require_storage: bool = True) -> Settings:
        """Every setting from `env` (os.environ when None); SettingsError names the first bad one.

        Storage is AzureWebJobsStorage's connection string or, when that is unset, its identity-based
        settings (`storage`), as the Functions host reads them. `require_storage=False` lets tools that
        touch no storage (rendering, offline checks) read the other groups; `storage_connection` is
        then "" when unset. `network` comes from os.environ whatever `env` is (see NetworkSettings).
        """
        values = os.environ if env is None else env
        storage = _raw(values, "AzureWebJobsStorage")
        identity = _storage(values)
        if require_storage and not storage:
            if not identity.configured:
                raise SettingsError(
                    "AzureWebJobsStorage is not set: use 'UseDevelopmentStorage=true' with Azurite locally, "
                    "or in Azure AzureWebJobsStorage__accountName (identity-based) or the storage account's "
                    "connection string"
                )
            for service in STORAGE_SERVICES:
                identity.endpoint(service)
        playbooks = _raw(values, "REMEDIATION_PLAYBOOKS_DIR")
        try:
            slack, slack_problem = _slack(values), None
        except SettingsError as problem:
            slack, slack_problem = None, str(problem)
        return cls(
            storage_connection=storage,
            events_table=_text(values, "REMEDIATION_EVENTS_TABLE"),
            incidents_table=_text(values, "REMEDIATION_INCIDENTS_TABLE"),
            audit_table=_text(values, "REMEDIATION_AUDIT_TABLE"),
            actions_queue=_text(values, "REMEDIATION_ACTIONS_QUEUE"),
            snapshots_container=_text(values, "REMEDIATION_SNAPSHOTS_CONTAINER"),
            incident_retention_days=_number(values, "REMEDIATION_INCIDENT_RETENTION_DAYS"),
            viewers=tuple(_items(values, "REMEDIATION_VIEWERS")),
            audit_key=_raw(values, "REMEDIATION_AUDIT_KEY") or None,
            audit_old_keys=tuple(_items(values, "REMEDIATION_AUDIT_OLD_KEYS")),
            slack_outbox_queue=_text(values, "SLACK_OUTBOX_QUEUE"),
            playbooks_dir=Path(playbooks) if playbooks else DEFAULT_PLAYBOOKS_DIR,
            kubernetes=_kubernetes(values),
            registry=_registry(values),
            slack=slack,
            slack_problem=slack_problem,
            azure=_azure(values),
            storage=identity,
            prewarm=_prewarm(values),
            network=_network(os.environ),
        )


def _items(env: Mapping[str, str], name: str, *, lower: bool = False) -> list[str]:
    """A comma-separated list, blanks dropped."""
    items = [item.strip() for item in _raw(env, name).split(",") if item.strip()]
    return [item.lower() for item in items] if lower else items


def _raw(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _text(env: Mapping[str, str], name: str) -> str:
    return _raw(env, name) or _DEFAULTS[name]


def _prewarm(env: Mapping[str, str]) -> bool:
    """REMEDIATION_PREWARM; `auto` is on under the Functions host, which sets FUNCTIONS_WORKER_RUNTIME
    for its language workers (in Azure and under `func start`, from local.settings.json)."""
    name = "REMEDIATION_PREWARM"
    value = _text(env, name).lower()
    if value not in SWITCH:
        raise SettingsError(f"{name} must be one of {', '.join(SWITCH)}, not {_raw(env, name)!r}")
    return value == "on" or (value == "auto" and bool(_raw(env, "FUNCTIONS_WORKER_RUNTIME")))


def _network(env: Mapping[str, str]) -> NetworkSettings:
    proxies = {name: value for name in PROXY_VARIABLES if (value := _raw(env, name) or _raw(env, name.upper()))}
    ca_bundle = next((value for name in CA_BUNDLE_VARIABLES if (value := _raw(env, name))), None)
    return NetworkSettings(proxies=MappingProxyType(proxies), ca_bundle=ca_bundle)


def _kubernetes(env: Mapping[str, str]) -> KubernetesSettings:
    extra = {name.strip() for name in _raw(env, "REMEDIATION_PROTECTED_NAMESPACES").split(",") if name.strip()}
    kubeconfigs = _json_object(
        env, "REMEDIATION_KUBECONFIGS", 'map cluster names to kubeconfig paths: {"name": "/path"}', _is_str
    )
    return KubernetesSettings(
        protected_namespaces=DEFAULT_PROTECTED_NAMESPACES | extra,
        max_unschedulable_fraction=_number(env, "REMEDIATION_MAX_UNSCHEDULABLE_FRACTION"),
        kubeconfigs=MappingProxyType({key.lower(): value for key, value in kubeconfigs.items()}),
        request_timeout_seconds=_number(env, "REMEDIATION_K8S_REQUEST_TIMEOUT_SECONDS"),
        retry_attempts=int(_number(env, "REMEDIATION_K8S_RETRY_ATTEMPTS")),
        retry_max_seconds=_number(env, "REMEDIATION_K8S_RETRY_MAX_SECONDS"),
        clusters=frozenset(_items(env, "REMEDIATION_CLUSTERS", lower=True)),
    )


_REGISTRY_ID = re.compile(
    r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.containerregistry/registries/[^/]+", re.IGNORECASE
)


def _registry(env: Mapping[str, str]) -> RegistrySettings:
    name = "REMEDIATION_REGISTRIES"
    registries = _json_object(env, name, "be a JSON object of login server -> registry resource id", _is_str)
    for resource_id in registries.values():
        if not _REGISTRY_ID.fullmatch(resource_id.rstrip("/")):
            raise SettingsError(f"{name}: {resource_id!r} is not a container registry resource id")
    return RegistrySettings(
        registries=MappingProxyType({login.strip().lower(): rid.rstrip("/") for login, rid in registries.items()}),
        disallowed_tags=_patterns(env, "REMEDIATION_DISALLOWED_TAGS"),
        pusher_allowlist=_patterns(env, "REMEDIATION_PUSHER_ALLOWLIST"),
        tag_index_table=_text(env, "REMEDIATION_TAG_INDEX_TABLE"),
        findings_recheck_delays=_minutes(env, "REMEDIATION_FINDINGS_RECHECK_MINUTES"),
    )


def _slack(env: Mapping[str, str]) -> SlackSettings | None:
    token = _raw(env, "SLACK_BOT_TOKEN")
    if not token:
        return None
    secret = _raw(env, "SLACK_SIGNING_SECRET")
    if not secret:
        raise SettingsError("SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not: requests could not be verified")
    return SlackSettings(
        bot_token=token,
        signing_secret=secret,
        default_channel=_raw(env, "SLACK_DEFAULT_CHANNEL") or None,
        api_base_url=_url(env, "SLACK_API_BASE_URL"),
        messages_table=_text(env, "SLACK_MESSAGES_TABLE"),
        team_id=_raw(env, "SLACK_TEAM_ID") or None,
        app_id=_raw(env, "SLACK_APP_ID") or None,
    )


def _azure(env: Mapping[str, str]) -> AzureSettings:
    arm = _url(env, "AZURE_RESOURCE_MANAGER_ENDPOINT").rstrip("/")
    authority = _raw(env, "AZURE_AUTHORITY_HOST")
    if urlsplit(authority).scheme not in ("", "https"):
        raise SettingsError(f"AZURE_AUTHORITY_HOST must be a host name or an https URL, not {authority!r}")
    graph = _raw(env, "REMEDIATION_RESOURCE_GRAPH_ENDPOINT")
    template = _text(env, "REMEDIATION_ACR_DATA_ENDPOINT")
    try:
        example = template.format(login_server="myregistry.azurecr.io")
    except (KeyError, IndexError, ValueError):
        raise SettingsError(
            f"REMEDIATION_ACR_DATA_ENDPOINT must be a URL whose only placeholder is {{login_server}}, not {template!r}"
        ) from None
    _absolute("REMEDIATION_ACR_DATA_ENDPOINT", example)
    return AzureSettings(
        arm_endpoint=arm,
        authority_host=authority or None,
        resource_graph_endpoint=_url(env, "REMEDIATION_RESOURCE_GRAPH_ENDPOINT").rstrip("/") if graph else arm,
        acr_audience=_url(env, "REMEDIATION_ACR_AUDIENCE"),
        acr_data_endpoint=template,
        client_id=_raw(env, "AZURE_CLIENT_ID") or None,
    )


_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")


def _storage(env: Mapping[str, str]) -> StorageSettings:
    account = _raw(env, "AzureWebJobsStorage__accountName")
    if account and not _ACCOUNT_NAME.fullmatch(account):
        raise SettingsError(
            f"AzureWebJobsStorage__accountName must be a storage account name (3-24 lower-case letters and "
            f"digits), not {account!r}"
        )
    credential = _raw(env, "AzureWebJobsStorage__credential")
    if credential.lower() not in ("", "managedidentity"):
        raise SettingsError(f"AzureWebJobsStorage__credential must be 'managedidentity' or empty, not {credential!r}")
    uris = {
        service: _https(env, name)
        for service, name in (
            ("blob", "AzureWebJobsStorage__blobServiceUri"),
            ("queue", "AzureWebJobsStorage__queueServiceUri"),
            ("table", "AzureWebJobsStorage__tableServiceUri"),
        )
    }
    return StorageSettings(
        account_name=account or None,
        blob_service_uri=uris["blob"],
        queue_service_uri=uris["queue"],
        table_service_uri=uris["table"],
        credential=credential.lower() or None,
        client_id=_raw(env, "AzureWebJobsStorage__clientId") or None,
    )


def _https(env: Mapping[str, str], name: str) -> str | None:
    """An optional https URL (a token is only sent over TLS), without its trailing slash."""
    raw = _raw(env, name)
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme != "https" or not parts.netloc:
        raise SettingsError(f"{name} must be an absolute https URL (tokens are only sent over TLS), not {raw!r}")
    return raw.rstrip("/")


def _number(env: Mapping[str, str], name: str) -> float:
    raw = _text(env, name)
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if not value > 0:
        raise SettingsError(f"{name} must be positive, not {raw!r}")
    return value


def _minutes(env: Mapping[str, str], name: str) -> tuple[int, ...]:
    raw = _text(env, name)
    try:
        delays = tuple(int(float(part) * 60) for part in raw.split(","))
    except (ValueError, OverflowError):
        raise SettingsError(f"{name} must be comma-separated minutes, e.g. 2,5,10, not {raw!r}") from None
    if any(delay < 0 for delay in delays):
        raise SettingsError(f"{name} must not hold a negative delay, not {raw!r}")
    return delays


def _url(env: Mapping[str, str], name: str) -> str:
    return _absolute(name, _text(env, name))


def _absolute(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name} must be an absolute http(s) URL, not {url!r}")
    return url


def _json_object(env: Mapping[str, str], name: str, shape: str, valid: Callable[[Any], bool]) -> dict[str, Any]:
    """A JSON object whose every value is `valid`; SettingsError saying it must `shape` otherwise.

    Unset or empty reads as the declared default (REMEDIATION_DISALLOWED_TAGS has one; `{}` clears it)."""
    raw = _raw(env, name) or _DEFAULTS[name]
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(data, dict) or not all(valid(value) for value in data.values()):
        raise SettingsError(f"{name} must {shape}")
    return data


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(name, str) for name in value)


def _default_disallowed_tags() -> Mapping[str, frozenset[str]]:
    return _patterns({}, "REMEDIATION_DISALLOWED_TAGS")


def _patterns(env: Mapping[str, str], name: str) -> Mapping[str, frozenset[str]]:
    shape = 'be a JSON object of repository pattern -> list of names, e.g. {"prod/*": ["x"]}'
    data = _json_object(env, name, shape, _is_names)
    return MappingProxyType({str(pattern): frozenset(names) for pattern, names in data.items()})
