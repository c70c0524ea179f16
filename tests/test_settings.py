"""Settings: one declaration (`DECLARED`), one reader (`Settings.from_env`), and the files made from them.

Conformance first (every setting name in the source is declared, every declared app setting is
read, the README table and local.settings.example.json are what the declaration renders), then the
defaults, the parse rules and their errors, and the secrets.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from remediation.cli.settings import BEGIN, END, EXAMPLE, README, example_settings, with_table
from remediation.settings import (
    CA_BUNDLE_VARIABLES,
    DECLARED,
    DEFAULT_PLAYBOOKS_DIR,
    PROXY_VARIABLES,
    AzureSettings,
    KubernetesSettings,
    NetworkSettings,
    RegistrySettings,
    Setting,
    Settings,
    SettingsError,
    SlackSettings,
)

ROOT = Path(__file__).resolve().parent.parent
STORAGE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
SLACK = {"SLACK_BOT_TOKEN": "xoxb-bot-token-value", "SLACK_SIGNING_SECRET": "signing-secret-value"}
APP = [setting for setting in DECLARED if not setting.host_only]
SETTING_NAME = re.compile(
    r"\b(?:(?:REMEDIATION|SLACK|AZURE|DEFENDER)_[A-Z0-9_]*[A-Z0-9]|AzureWebJobs[A-Za-z0-9_.]*[A-Za-z0-9])"
)
REGISTRY_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/demo"

# A valid value other than the default, for each app setting.
OTHER_VALUES = {
    "AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=other;AccountKey=a2V5;",
    "AzureWebJobsStorage__accountName": "otheraccount",
    "AzureWebJobsStorage__blobServiceUri": "https://other.blob.core.chinacloudapi.cn",
    "AzureWebJobsStorage__queueServiceUri": "https://other.queue.core.chinacloudapi.cn",
    "AzureWebJobsStorage__tableServiceUri": "https://other.table.core.chinacloudapi.cn",
    "AzureWebJobsStorage__credential": "managedidentity",
    "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000002",
    "REMEDIATION_EVENTS_TABLE": "otherevents",
    "REMEDIATION_INCIDENTS_TABLE": "otherincidents",
    "REMEDIATION_AUDIT_TABLE": "otheraudit",
    "REMEDIATION_ACTIONS_QUEUE": "other-actions",
    "REMEDIATION_INCIDENT_RETENTION_DAYS": "30",
    "REMEDIATION_PREWARM": "on",
    "SLACK_OUTBOX_QUEUE": "other-outbox",
    "SLACK_TEAM_ID": "T999",
    "SLACK_APP_ID": "A999",
    "REMEDIATION_CLUSTERS": "aks-other",
    "REMEDIATION_VIEWERS": "U0VIEWER,@auditors",
    "REMEDIATION_AUDIT_KEY": "audit-key-value",
    "REMEDIATION_AUDIT_OLD_KEYS": "old-audit-key",
    "REMEDIATION_SNAPSHOTS_CONTAINER": "othersnapshots",
    "REMEDIATION_PLAYBOOKS_DIR": "/srv/playbooks",
    "REMEDIATION_PROTECTED_NAMESPACES": "falco",
    "REMEDIATION_MAX_UNSCHEDULABLE_FRACTION": "0.5",
    "REMEDIATION_KUBECONFIGS": '{"kind": "/home/me/.kube/kind"}',
    "REMEDIATION_K8S_REQUEST_TIMEOUT_SECONDS": "10",
    "REMEDIATION_K8S_RETRY_ATTEMPTS": "3",
    "REMEDIATION_K8S_RETRY_MAX_SECONDS": "20",
    "REMEDIATION_REGISTRIES": json.dumps({"demo.azurecr.io": REGISTRY_ID}),
    "REMEDIATION_DISALLOWED_TAGS": '{"release/*": ["dev"]}',
    "REMEDIATION_PUSHER_ALLOWLIST": '{"prod/*": ["ci-bot"]}',
    "REMEDIATION_TAG_INDEX_TABLE": "othertagindex",
    "REMEDIATION_FINDINGS_RECHECK_MINUTES": "1,3",
    "SLACK_BOT_TOKEN": "xoxb-other-token",
    "SLACK_SIGNING_SECRET": "other-signing-secret",
    "SLACK_DEFAULT_CHANNEL": "#security",
    "SLACK_API_BASE_URL": "https://127.0.0.1:8443/api",
    "SLACK_MESSAGES_TABLE": "othermessages",
    "AZURE_RESOURCE_MANAGER_ENDPOINT": "https://management.chinacloudapi.cn",
    "AZURE_AUTHORITY_HOST": "login.chinacloudapi.cn",
    "REMEDIATION_RESOURCE_GRAPH_ENDPOINT": "https://graph.example.test",
    "REMEDIATION_ACR_AUDIENCE": "https://containerregistry.azure.cn",
    "REMEDIATION_ACR_DATA_ENDPOINT": "https://127.0.0.1:8443/{login_server}",
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
}

# A malformed value for each kind that has a parse rule; the other kinds take any text.
MALFORMED = {
    "number": ["soon", "0", "-1", "nan"],
    "fraction": ["soon", "0", "1.5"],
    "json": ["{not json", "[1]", '{"a": 1}'],
    "minutes": ["2,soon", "2,,5", "-1", "inf"],
    "url": ["management.azure.com", "ftp://host", "https://"],
    "url-template": ["https://{registry}", "https://{0}", "https://{login_server", "{login_server}"],
    "authority": ["http://login.example"],
    "account-name": ["Other_Account", "ab", "a" * 25],
    "credential": ["clientsecret", "workloadidentity"],
    "https-url": ["http://other.blob.core.windows.net", "https://", "other.blob.core.windows.net"],
    "switch": ["yes", "1", "sometimes"],
}
FREE_TEXT = {"text", "path", "connection", "list", "flag"}


def source_files() -> Iterator[Path]:
    yield ROOT / "function_app.py"
    for folder in ("remediation", "bot", "functions"):
        yield from sorted((ROOT / folder).glob("**/*.py"))


def string_literals(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value


def read(extra: dict[str, str] | None = None) -> Settings:
    """Settings with storage and Slack configured, so that every group is read."""
    return Settings.from_env({**STORAGE, **SLACK, **(extra or {})})


def by_name(setting: Setting) -> str:
    return setting.name


class TestDeclaration:
    def test_names_are_unique(self) -> None:
        names = [setting.name for setting in DECLARED]
        assert len(names) == len(set(names))

    def test_every_setting_name_in_the_source_is_declared(self) -> None:
        used = {
            (name, str(path.relative_to(ROOT)))
            for path in source_files()
            for literal in string_literals(path)
            for name in SETTING_NAME.findall(literal)
        }
        declared = {setting.name for setting in DECLARED}
        assert {(name, where) for name, where in used if name not in declared} == set()
        names = {name for name, _ in used}
        assert {"AzureWebJobsStorage", "REMEDIATION_KUBECONFIGS", "SLACK_BOT_TOKEN", "DEFENDER_EVENTHUB_NAME"} <= names

    def test_only_the_settings_module_reads_the_environment(self) -> None:
        readers = {
            str(path.relative_to(ROOT))
            for path in source_files()
            if re.search(r"\bos\.(environ|getenv)\b", path.read_text())
        }
        assert readers == {"remediation/settings/__init__.py"}

    @pytest.mark.parametrize("setting", APP, ids=by_name)
    def test_every_app_setting_is_read(self, setting: Setting) -> None:
        assert read({setting.name: OTHER_VALUES[setting.name]}) != read(), "declared, but from_env ignores it"

    def test_every_kind_an_app_setting_has_is_tested(self) -> None:
        assert {setting.kind for setting in APP} <= FREE_TEXT | set(MALFORMED)

    def test_secrets_have_no_defaults_and_no_local_value_that_holds_a_key(self) -> None:
        secrets = [setting for setting in DECLARED if setting.secret]
        assert {"AzureWebJobsStorage", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DEFENDER_EVENTHUB"} <= {
            setting.name for setting in secrets
        }
        assert all(setting.default == "" for setting in secrets)
        # Azurite's shortcut names the emulator, not a key; every other secret is empty locally.
        assert {setting.name: setting.local_value for setting in secrets if setting.local_value} == {
            "AzureWebJobsStorage": "UseDevelopmentStorage=true"
        }


class TestGeneratedFiles:
    def test_the_readme_table_is_rendered_from_the_declaration(self) -> None:
        readme = README.read_text()
        assert readme == with_table(readme), "run: python -m remediation.cli.settings"
        section = readme[readme.index(BEGIN) + len(BEGIN) : readme.index(END)].strip().splitlines()
        assert len(section) == 2 + len(DECLARED)
        assert all(line.startswith("|") and line.endswith("|") for line in section)  # one table, no blank line

    def test_the_example_settings_are_the_declared_local_values(self) -> None:
        values = json.loads(EXAMPLE.read_text())["Values"]
        assert values == {setting.name: setting.local_value for setting in DECLARED}
        assert EXAMPLE.read_text() == example_settings(), "run: python -m remediation.cli.settings"

    def test_the_example_settings_read_as_the_defaults_but_where_they_say_otherwise(self) -> None:
        values = json.loads(EXAMPLE.read_text())["Values"]
        defaults = Settings(storage_connection="UseDevelopmentStorage=true")
        assert Settings.from_env(values) == replace(
            defaults,
            kubernetes=replace(defaults.kubernetes, max_unschedulable_fraction=0.3333),
            registry=replace(defaults.registry, disallowed_tags={"prod/*": frozenset({"latest"})}),
            azure=replace(defaults.azure, authority_host="login.microsoftonline.com"),
            prewarm=True,  # FUNCTIONS_WORKER_RUNTIME is there: `func start` runs the app under the host
        )

    def test_the_renderer_finds_nothing_stale(self) -> None:
        command = [sys.executable, "-m", "remediation.cli.settings", "--check"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode, done.stderr) == (0, "")


class TestDefaults:
    def test_the_defaults_are_todays(self) -> None:
        settings = Settings.from_env(STORAGE)
        assert settings == Settings(storage_connection="UseDevelopmentStorage=true")
        assert (settings.events_table, settings.incidents_table, settings.audit_table) == (
            "events",
            "incidents",
            "audit",
        )
        assert (settings.actions_queue, settings.snapshots_container) == ("remediation-actions", "snapshots")
        assert settings.playbooks_dir == DEFAULT_PLAYBOOKS_DIR == ROOT / "playbooks"
        assert settings.kubernetes == KubernetesSettings(
            protected_namespaces=frozenset({"kube-system", "kube-public", "kube-node-lease", "gatekeeper-system"}),
            max_unschedulable_fraction=1 / 3,
            kubeconfigs={},
            request_timeout_seconds=30.0,
            retry_attempts=5,
            retry_max_seconds=60.0,
        )
        assert settings.registry == RegistrySettings(
            registries={}, disallowed_tags={"prod/*": frozenset({"latest"})}, pusher_allowlist={},
            tag_index_table="tagindex", findings_recheck_delays=(120, 300, 600),
        )  # fmt: skip
        assert settings.slack is None
        assert settings.azure == AzureSettings(
            arm_endpoint="https://management.azure.com",
            authority_host=None,
            resource_graph_endpoint="https://management.azure.com",
            acr_audience="https://containerregistry.azure.net",
            acr_data_endpoint="https://{login_server}",
            client_id=None,
        )
        assert settings.azure.arm_scope == "https://management.azure.com/.default"

    @pytest.mark.parametrize("setting", [s for s in APP if s.default], ids=by_name)
    def test_a_declared_default_reads_as_unset(self, setting: Setting) -> None:
        assert read({setting.name: setting.default}) == read()

    def test_empty_and_blank_values_read_as_unset(self) -> None:
        assert read({setting.name: " " for setting in APP if setting.name not in {*STORAGE, *SLACK}}) == read()
        assert Settings.from_env({**STORAGE, "SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": ""}).slack is None

    def test_storage_is_required_unless_the_caller_needs_none(self) -> None:
        with pytest.raises(SettingsError, match="AzureWebJobsStorage is not set: use 'UseDevelopmentStorage=true'"):
            Settings.from_env({})
        assert Settings.from_env({}, require_storage=False).storage_connection == ""

    def test_the_process_environment_is_read_when_no_mapping_is_given(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
        monkeypatch.setenv("REMEDIATION_EVENTS_TABLE", "envevents")
        assert Settings.from_env().events_table == "envevents"


class TestParsing:
    def test_values_are_parsed_as_the_readers_did(self) -> None:
        settings = read({
            "REMEDIATION_PROTECTED_NAMESPACES": "falco, security ,",
            "REMEDIATION_MAX_UNSCHEDULABLE_FRACTION": "0.25",
            "REMEDIATION_KUBECONFIGS": '{"Local-Kind": "/home/me/.kube/kind"}',
            "REMEDIATION_K8S_RETRY_ATTEMPTS": "3.0",
            "REMEDIATION_REGISTRIES": json.dumps({" Demo.AzureCR.io ": REGISTRY_ID + "/"}),
            "REMEDIATION_PUSHER_ALLOWLIST": '{"prod/*": ["ci-bot", "release"]}',
            "REMEDIATION_FINDINGS_RECHECK_MINUTES": "1, 0.5",
            "SLACK_API_BASE_URL": "http://127.0.0.1:9000/api",
            "SLACK_DEFAULT_CHANNEL": " ",
        })  # fmt: skip
        assert {"kube-system", "gatekeeper-system", "falco", "security"} == settings.kubernetes.protected_namespaces - {
            "kube-public", "kube-node-lease"
        }  # fmt: skip
        assert settings.kubernetes.max_unschedulable_fraction == 0.25
        assert settings.kubernetes.kubeconfigs == {"local-kind": "/home/me/.kube/kind"}
        assert settings.kubernetes.retry_attempts == 3
        assert settings.registry.registries == {"demo.azurecr.io": REGISTRY_ID}
        assert settings.registry.pusher_allowlist == {"prod/*": frozenset({"ci-bot", "release"})}
        assert settings.registry.findings_recheck_delays == (60, 30)
        assert settings.slack is not None
        assert (settings.slack.api_base_url, settings.slack.default_channel) == ("http://127.0.0.1:9000/api/", None)

    def test_groups_cannot_be_changed_after_reading(self) -> None:
        settings = read(
            {
                "REMEDIATION_KUBECONFIGS": '{"kind": "/k"}',
                "REMEDIATION_REGISTRIES": OTHER_VALUES["REMEDIATION_REGISTRIES"],
            }
        )
        with pytest.raises(TypeError):
            settings.kubernetes.kubeconfigs["kind"] = "/elsewhere"  # type: ignore[index]
        with pytest.raises(TypeError):
            settings.registry.registries["x"] = REGISTRY_ID  # type: ignore[index]

    def test_sovereign_clouds_set_one_endpoint_and_resource_graph_follows(self) -> None:
        azure = read({"AZURE_RESOURCE_MANAGER_ENDPOINT": "https://management.usgovcloudapi.net/"}).azure
        assert azure.arm_endpoint == azure.resource_graph_endpoint == "https://management.usgovcloudapi.net"
        assert azure.arm_scope == "https://management.usgovcloudapi.net/.default"
        assert AzureSettings(arm_endpoint="https://127.0.0.1:8443").resource_graph_endpoint == "https://127.0.0.1:8443"
        graph = read({**OTHER_VALUES, "REMEDIATION_RESOURCE_GRAPH_ENDPOINT": "https://graph.example.test/"}).azure
        assert (graph.arm_endpoint, graph.resource_graph_endpoint) == (
            "https://management.chinacloudapi.cn",
            "https://graph.example.test",
        )

    def test_slack_settings_made_in_code_keep_the_trailing_slash_rule(self) -> None:
        assert (
            SlackSettings("xoxb-t", "s", api_base_url="http://127.0.0.1:9000").api_base_url == "http://127.0.0.1:9000/"
        )

    @pytest.mark.parametrize(
        ("name", "value"),
        [(s.name, bad) for s in APP for bad in MALFORMED.get(s.kind, [])],
        ids=lambda item: str(item),
    )
    def test_each_parse_error_names_its_variable(self, name: str, value: str) -> None:
        if name.startswith("SLACK_"):  # a Slack mistake turns Slack off and says why, stopping nothing else
            settings = read({name: value})
            assert settings.slack is None and name in (settings.slack_problem or "")
            return
        with pytest.raises(SettingsError, match=re.escape(name)):
            read({name: value})

    @pytest.mark.parametrize(
        ("env", "message"),
        [
            (
                {"REMEDIATION_K8S_REQUEST_TIMEOUT_SECONDS": "soon"},
                "REMEDIATION_K8S_REQUEST_TIMEOUT_SECONDS must be a number, not 'soon'",
            ),
            ({"REMEDIATION_K8S_RETRY_ATTEMPTS": "-1"}, "REMEDIATION_K8S_RETRY_ATTEMPTS must be positive, not '-1'"),
            (
                {"REMEDIATION_MAX_UNSCHEDULABLE_FRACTION": "2"},
                "REMEDIATION_MAX_UNSCHEDULABLE_FRACTION must be in (0, 1]",
            ),
            (
                {"REMEDIATION_KUBECONFIGS": "{x"},
                "REMEDIATION_KUBECONFIGS must be a JSON object: Expecting property name",
            ),
            (
                {"REMEDIATION_KUBECONFIGS": "[1]"},
                'REMEDIATION_KUBECONFIGS must map cluster names to kubeconfig paths: {"name": "/path"}',
            ),
            (
                {"REMEDIATION_REGISTRIES": '["x"]'},
                "REMEDIATION_REGISTRIES must be a JSON object of login server -> registry resource id",
            ),
            (
                {"REMEDIATION_REGISTRIES": '{"x.azurecr.io": "/subscriptions/s"}'},
                "REMEDIATION_REGISTRIES: '/subscriptions/s' is not a container registry resource id",
            ),
            (
                {"REMEDIATION_PUSHER_ALLOWLIST": '["ci-bot"]'},
                "REMEDIATION_PUSHER_ALLOWLIST must be a JSON object of repository pattern -> list of names, e.g. "
                '{"prod/*": ["x"]}',
            ),
        ],
    )
    def test_messages_keep_the_wording_of_the_readers_they_replace(self, env: dict[str, str], message: str) -> None:
        with pytest.raises(SettingsError) as raised:
            read(env)
        assert str(raised.value).startswith(message)

    def test_a_slack_mistake_turns_slack_off_and_says_why_but_stops_nothing_else(self) -> None:
        settings = Settings.from_env({**STORAGE, **SLACK, "SLACK_SIGNING_SECRET": ""})
        assert settings.slack is None
        assert settings.slack_problem == (
            "SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not: requests could not be verified"
        )
        assert Settings.from_env({**STORAGE, **SLACK}).slack_problem is None

    def test_prewarm_is_on_under_the_functions_host_unless_turned_off(self) -> None:
        host = {"FUNCTIONS_WORKER_RUNTIME": "python"}
        assert (read().prewarm, read(host).prewarm) == (False, True)
        assert read({**host, "REMEDIATION_PREWARM": "off"}).prewarm is False
        assert read({"REMEDIATION_PREWARM": "On"}).prewarm is True
        assert read({**host, "REMEDIATION_PREWARM": "auto"}) == read(host)

    def test_the_network_is_the_process_environment_as_requests_reads_it(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in (*PROXY_VARIABLES, *CA_BUNDLE_VARIABLES):
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.upper(), raising=False)
        assert read().network == NetworkSettings() and not read().network.proxied
        monkeypatch.setenv("CURL_CA_BUNDLE", "/curl/ca.pem")
        assert read().network.ca_bundle == "/curl/ca.pem"
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/requests/ca.pem")  # requests' own variable first
        monkeypatch.setenv("HTTPS_PROXY", "http://upper.example:3128")
        monkeypatch.setenv("https_proxy", "http://bot:proxy-password@lower.example:3128")  # lower case first
        monkeypatch.setenv("NO_PROXY", "localhost")
        network = read({"HTTP_PROXY": "http://from-the-mapping:3128"}).network  # not an app setting
        assert network.proxied and network.ca_bundle == "/requests/ca.pem"
        assert network.proxies == {
            "https_proxy": "http://bot:proxy-password@lower.example:3128",
            "no_proxy": "localhost",
        }
        assert "proxy-password" not in repr(read())
        assert read() == replace(read(), network=NetworkSettings())  # not one of the app's settings

    def test_a_settings_error_is_a_value_error(self) -> None:
        assert issubclass(SettingsError, ValueError)
        with pytest.raises(SettingsError, match="REMEDIATION_MAX_UNSCHEDULABLE_FRACTION"):
            KubernetesSettings(max_unschedulable_fraction=0)


class TestSecrets:
    def test_no_secret_appears_in_a_repr(self) -> None:
        storage = "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=c3VwZXJzZWNyZXQ=;"
        settings = Settings.from_env({**SLACK, "AzureWebJobsStorage": storage})
        shown = repr(settings) + str(settings) + repr(settings.slack)
        assert "SlackSettings(" in shown and "default_channel" in shown
        for secret in (storage, "c3VwZXJzZWNyZXQ=", SLACK["SLACK_BOT_TOKEN"], SLACK["SLACK_SIGNING_SECRET"]):
            assert secret not in shown
