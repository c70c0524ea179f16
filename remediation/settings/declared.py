"""Every setting the app reads, declared once: name, kind, meaning, default, local value, whether secret.

`remediation.settings` reads them (`Settings.from_env`); the README's settings table and
local.settings.example.json are generated from `DECLARED` (`python -m remediation.cli.settings`),
and tests/test_settings.py keeps them, the reader and the source equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DEFAULT_PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"
DEFAULT_PROTECTED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "gatekeeper-system"})
DEFAULT_DISALLOWED_TAGS = '{"prod/*": ["latest"]}'  # the one place the tag rule is written
DEFAULT_FINDINGS_RECHECK_DELAYS = (120, 300, 600)  # seconds before re-check 1, 2, 3
SLACK_API_BASE_URL = "https://slack.com/api/"
DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
DEFAULT_ACR_AUDIENCE = "https://containerregistry.azure.net"
DEFAULT_ACR_DATA_ENDPOINT = "https://{login_server}"

# How a value is written; tests/test_settings.py feeds every parsed kind a malformed value.
Kind = Literal[
    "text", "path", "connection", "list", "flag", "number", "fraction", "json", "minutes", "url", "url-template",
    "authority", "account-name", "credential", "https-url", "switch",
]  # fmt: skip
SWITCH = ("auto", "on", "off")  # a "switch" setting's values; `auto` leaves the choice to the app


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable. `default` and `example` are written as in the environment; "" is empty."""

    name: str
    kind: Kind
    meaning: str  # one line, for the README
    default: str = ""  # the value used when the variable is unset or empty
    example: str | None = None  # local.settings.example.json's value; None: the default
    secret: bool = False
    required: bool = False
    host_only: bool = False  # read by the Functions host (bindings, runtime); our code at most asks if it is set

    @property
    def local_value(self) -> str:
        return self.default if self.example is None else self.example


# fmt: off
DECLARED: tuple[Setting, ...] = (
    Setting("FUNCTIONS_WORKER_RUNTIME", "text", "the language worker", example="python", required=True, host_only=True),
    Setting("AzureWebJobsStorage", "connection", "storage for the host and for our tables, queues and snapshots: "
            "a connection string (Azurite locally); unset in Azure, where the identity-based "
            "`AzureWebJobsStorage__*` settings below are used (one of the two is required)",
            example="UseDevelopmentStorage=true", secret=True),
    Setting("AzureWebJobsStorage__accountName", "account-name", "identity-based storage (host and app): the "
            "storage account, reached at `https://<name>.{blob,queue,table}.core.windows.net` with a token"),
    Setting("AzureWebJobsStorage__blobServiceUri", "https-url", "identity-based storage: the blob endpoint "
            "(sovereign clouds, emulators); overrides `__accountName` for blobs"),
    Setting("AzureWebJobsStorage__queueServiceUri", "https-url", "identity-based storage: the queue endpoint; "
            "overrides `__accountName` for queues"),
    Setting("AzureWebJobsStorage__tableServiceUri", "https-url", "identity-based storage: the table endpoint "
            "(our tables need it where the host needs only blob and queue); overrides `__accountName`"),
    Setting("AzureWebJobsStorage__credential", "credential", "identity-based storage: `managedidentity` takes "
            "the managed identity only; empty: DefaultAzureCredential (developer sign-ins locally)"),
    Setting("AzureWebJobsStorage__clientId", "text", "identity-based storage: the client id of the user-assigned "
            "identity with the storage roles; empty: AZURE_CLIENT_ID, else the system-assigned identity"),
    Setting("AzureWebJobsFeatureFlags", "list", "`EnableWorkerIndexing` lets the host index the v2 programming model",
            example="EnableWorkerIndexing", host_only=True),
    Setting("REMEDIATION_EVENTS_TABLE", "text", "name of the dedup table", "events"),
    Setting("REMEDIATION_INCIDENTS_TABLE", "text", "name of the incidents table", "incidents"),
    Setting("REMEDIATION_AUDIT_TABLE", "text", "name of the audit table", "audit"),
    Setting("REMEDIATION_ACTIONS_QUEUE", "text", "the queue of approved incidents for the executor",
            "remediation-actions"),
    Setting("REMEDIATION_SNAPSHOTS_CONTAINER", "text",
            "the blob container of write-once snapshots taken before destructive steps", "snapshots"),
    Setting("REMEDIATION_PLAYBOOKS_DIR", "path", "the playbook folder; empty means `playbooks/` of the deployed app"),
    Setting("REMEDIATION_PREWARM", "switch", "build the app's clients, engine and playbooks in the background as "
            "the worker loads the app, so the first event does not wait for them: `auto` does so under the Functions "
            "host (FUNCTIONS_WORKER_RUNTIME set), `on` always, `off` never", "auto"),
    Setting("REMEDIATION_INCIDENT_RETENTION_DAYS", "number", "closed incidents leave the incidents table this "
            "many days after their last change (their audit chains stay)", "90"),
    Setting("SLACK_OUTBOX_QUEUE", "text", "the queue of Slack work (messages, replies, App Home) the "
            "`slack_outbox` function does off the click path", "slack-outbox"),
    Setting("REMEDIATION_CLUSTERS", "list", "the clusters the bot may act on: AKS resource ids or kubeconfig "
            "names (comma-separated); an alert about any other cluster is shown without actions"),
    Setting("REMEDIATION_VIEWERS", "list", "who besides a playbook's approvers may list and read incidents in "
            "Slack: user ids and @user-group handles (comma-separated)"),
    Setting("REMEDIATION_AUDIT_KEY", "text", "the HMAC-SHA256 key of the audit chain (a Key Vault reference in "
            "Azure); records carry its key id, so it can rotate", secret=True),
    Setting("REMEDIATION_AUDIT_OLD_KEYS", "list", "keys the audit chain was signed with before a rotation "
            "(comma-separated), for `remediate audit verify`", secret=True),
    Setting("REMEDIATION_PROTECTED_NAMESPACES", "list", "namespaces the Kubernetes actions never touch, besides "
            "kube-system, kube-public, kube-node-lease and gatekeeper-system (comma-separated)"),
    Setting("REMEDIATION_MAX_UNSCHEDULABLE_FRACTION", "fraction", "blast radius: the largest fraction of a "
            "cluster's nodes that may be unschedulable after a cordon or drain", repr(1 / 3), example="0.3333"),
    Setting("REMEDIATION_KUBECONFIGS", "json", 'JSON `{"<cluster name or AKS resource id>": "/path/kubeconfig"}` '
            "for local and non-AKS clusters; AKS clusters are otherwise reached through ARM and Entra"),
    Setting("REMEDIATION_K8S_REQUEST_TIMEOUT_SECONDS", "number", "timeout of every Kubernetes API call", "30"),
    Setting("REMEDIATION_K8S_RETRY_ATTEMPTS", "number", "attempts of a Kubernetes API call, the first included",
            "5"),
    Setting("REMEDIATION_K8S_RETRY_MAX_SECONDS", "number", "the longest wait between two attempts", "60"),
    Setting("REMEDIATION_REGISTRIES", "json", 'JSON `{"<login server>": "<registry resource id>"}`: our '
            "registries (others are reported, never acted on)"),
    Setting("REMEDIATION_DISALLOWED_TAGS", "json", 'JSON `{"<repository glob>": ["<tag>", ...]}`: pushes marked '
            "`disallowed_tag`, which playbook registry-quarantine-latest-in-prod quarantines; `{}` allows every tag",
            DEFAULT_DISALLOWED_TAGS),
    Setting("REMEDIATION_PUSHER_ALLOWLIST", "json", 'JSON `{"<repository glob>": ["<actor>", ...]}`: pushes by '
            "anyone else are marked `pusher_not_allowed`"),
    Setting("REMEDIATION_TAG_INDEX_TABLE", "text", "the tag -> digest index that detects tag overwrites", "tagindex"),
    Setting("REMEDIATION_FINDINGS_RECHECK_MINUTES", "minutes",
            "delays of the bounded re-checks for Defender findings after a push (comma-separated)", "2,5,10"),
    Setting("SLACK_BOT_TOKEN", "text", "the Slack app's bot token; without it the engine only logs", secret=True),
    Setting("SLACK_SIGNING_SECRET", "text", "the Slack app's signing secret; required with a token", secret=True),
    Setting("SLACK_DEFAULT_CHANNEL", "text", "the channel for incidents whose playbook names none"),
    Setting("SLACK_API_BASE_URL", "url", "Slack's Web API address; tests point it at a local server",
            SLACK_API_BASE_URL, example=""),
    Setting("SLACK_TEAM_ID", "text", "the one Slack workspace (team id, `T...`) whose requests are taken; "
            "empty: any workspace the signing secret verifies"),
    Setting("SLACK_APP_ID", "text", "the one Slack app (`A...`) whose requests are taken; empty: any"),
    Setting("SLACK_MESSAGES_TABLE", "text", "incident -> Slack message (channel, ts), so later news updates one "
            "message", "slackmessages"),
    Setting("AZURE_RESOURCE_MANAGER_ENDPOINT", "url", "Azure Resource Manager's address (sovereign clouds, tests); "
            "its token scope is `<endpoint>/.default`", DEFAULT_ARM_ENDPOINT, example=""),
    Setting("AZURE_AUTHORITY_HOST", "authority", "the Entra authority azure-identity signs in at; unset means "
            "login.microsoftonline.com (the SDK takes an empty value literally, so the local file names it)",
            example="login.microsoftonline.com"),
    Setting("REMEDIATION_RESOURCE_GRAPH_ENDPOINT", "url", "Azure Resource Graph's address; empty means "
            "AZURE_RESOURCE_MANAGER_ENDPOINT"),
    Setting("REMEDIATION_ACR_AUDIENCE", "url", "the token audience of registry data planes; Azure China uses "
            "`https://containerregistry.azure.cn`", DEFAULT_ACR_AUDIENCE, example=""),
    Setting("REMEDIATION_ACR_DATA_ENDPOINT", "url-template", "a registry's data-plane address, `{login_server}` "
            "filled in", DEFAULT_ACR_DATA_ENDPOINT, example=""),
    Setting("AZURE_CLIENT_ID", "text", "the client id of a user-assigned managed identity; empty means the "
            "system-assigned one"),
    Setting("DEFENDER_EVENTHUB_NAME", "text", "the Event Hub that Defender continuous export writes to",
            example="defender-alerts", required=True, host_only=True),
    Setting("DEFENDER_EVENTHUB_CONSUMER_GROUP", "text", "the consumer group this app reads with (give it its own)",
            example="$Default", required=True, host_only=True),
    Setting("DEFENDER_EVENTHUB", "connection", "the Event Hubs connection: a connection string, or in Azure "
            "`DEFENDER_EVENTHUB__fullyQualifiedNamespace` for managed identity", secret=True, host_only=True),
    Setting("AzureWebJobs.defender_alerts_eventhub.Disabled", "flag", "turns the Event Hub trigger off where there "
            "is no Event Hub (there is no local emulator in this setup)", "false", example="true", host_only=True),
)
# fmt: on
_DEFAULTS = {setting.name: setting.default for setting in DECLARED}


def render_settings_table() -> str:
    """The README's settings table (setting | meaning | default | secret), one row per declared setting."""
    rows = ["| setting | meaning | default | secret |", "|---|---|---|---|"]
    for setting in DECLARED:
        meaning = ("Functions host: " if setting.host_only else "") + setting.meaning
        default = "required" if setting.required else f"`{setting.default}`" if setting.default else "empty"
        cells = (f"`{setting.name}`", meaning, default, "yes" if setting.secret else "no")
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)
