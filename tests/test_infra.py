"""The infrastructure (infra/*.bicep, azure.yaml) and the code, kept in step without Azure or a Bicep compiler.

Every .bicep file parses with pycep-parser (the parser checkov uses), and the parsed templates are
checked against what the code declares and does: the Function App is Flex Consumption with Python
3.11 and identity-based storage, every declared setting is set (secrets as Key Vault references) or
allowed unset for a stated reason, the identity holds the data roles the code needs and the built-in
role ids are the documented ones, the custom registry role is deploy/azure/registry-remediator-role.json,
the Azure RBAC for Kubernetes role is deploy/kubernetes/rbac.yaml, every queue, table and
container the code uses by default is created, and each alert rule counts a message the code logs.
checkov's own scan of infra/ is tests/test_checkov.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediation.settings import DECLARED

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Built-in roles, as documented (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
DOCUMENTED_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",  # Event Grid dead letters
    "a638d3c7-ab3a-418d-83e6-5f17a39d4fde": "Azure Event Hubs Data Receiver",
    "2b629674-e913-4c01-ae53-ef4638d8f975": "Azure Event Hubs Data Sender",  # Defender's export
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",  # the deployer writes the audit key
    "4abbcc35-e782-43d8-92c5-2d3f1bd2253f": "Azure Kubernetes Service Cluster User Role",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
# Other GUIDs that may appear in infra/: not roles.
OTHER_GUIDS = {"8edd93e1-2103-40b4-bd70-6e34e586362d": "Windows Azure Security Resource Provider (application id)"}
GUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)

# What the identity must hold on the app's own resources (infra/modules/app.bicep): scope -> roles.
APP_ROLES = {
    ("storage", "storageBlobDataOwner"),
    ("storage", "storageQueueDataContributor"),
    ("storage", "storageTableDataContributor"),
    ("defenderHub", "eventHubsDataReceiver"),
    ("vault", "keyVaultSecretsUser"),
    ("appInsights", "monitoringMetricsPublisher"),
}

# Declared settings the infrastructure leaves unset on purpose, and why.
UNSET_BY_DESIGN = {
    "FUNCTIONS_WORKER_RUNTIME": "Flex Consumption takes the runtime from functionAppConfig.runtime and refuses "
    "this app setting",
    "REMEDIATION_PLAYBOOKS_DIR": "empty means playbooks/ of the deployed package, which is what Azure runs",
    "REMEDIATION_AUDIT_OLD_KEYS": "only after a rotation of the audit key; then a Key Vault reference to the "
    "retired key is added (docs/deploy.md)",
    "REMEDIATION_KUBECONFIGS": "no kubeconfig files in Azure: AKS clusters are reached through ARM and Entra",
    "REMEDIATION_RESOURCE_GRAPH_ENDPOINT": "empty means AZURE_RESOURCE_MANAGER_ENDPOINT, which is set",
}
# Connections given in Azure as identity-based `<name>__*` settings instead of a secret value.
IDENTITY_CONNECTIONS = {"AzureWebJobsStorage", "DEFENDER_EVENTHUB"}


@pytest.fixture(scope="module")
def parser() -> Any:
    """One BicepParser for the module: building its grammar is the slow part (lark also caches it on disk)."""
    from pycep import BicepParser

    return BicepParser()


@pytest.fixture(scope="module")
def parsed(parser: Any) -> dict[str, dict[str, Any]]:
    return {path.relative_to(INFRA).as_posix(): parser.parse(file_path=path) for path in BICEP_FILES}


@pytest.fixture(scope="module")
def app(parsed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return parsed["modules/app.bicep"]


@pytest.fixture(scope="module")
def function_app(app: dict[str, Any]) -> dict[str, Any]:
    sites = [res for res in app["resources"].values() if res["type"] == "Microsoft.Web/sites"]
    assert len(sites) == 1
    return sites[0]["config"]


@pytest.fixture(scope="module")
def app_settings(function_app: dict[str, Any]) -> dict[str, Any]:
    entries = function_app["properties"]["siteConfig"]["appSettings"]
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), "an app setting is set twice"
    return {entry["name"]: entry["value"] for entry in entries}


def _infra_texts() -> dict[Path, str]:
    return {path: path.read_text() for path in INFRA.rglob("*") if path.is_file()}


def _accessor(value: Any) -> tuple[str, str]:
    """`a.b` as parsed by pycep: ("a", "b")."""
    operands = value["operator"]["operands"]
    return operands["operand_1"], operands["operand_2"]


# ---------------------------------------------------------------- the files


def test_there_are_bicep_files_and_azure_yaml() -> None:
    assert (INFRA / "main.bicep") in BICEP_FILES
    assert (INFRA / "eventgrid.bicep") in BICEP_FILES
    assert (ROOT / "azure.yaml").is_file()


def test_every_bicep_file_parses(parsed: dict[str, dict[str, Any]]) -> None:
    assert set(parsed) == {path.relative_to(INFRA).as_posix() for path in BICEP_FILES}
    for name, template in parsed.items():
        assert template.get("resources") or template.get("modules"), f"{name} declares nothing"


def test_every_local_module_exists_and_none_comes_from_a_registry(parsed: dict[str, dict[str, Any]]) -> None:
    for name, template in parsed.items():
        for symbol, module in template.get("modules", {}).items():
            assert module["type"] == "local", f"{name}: module {symbol} is not local"
            target = (INFRA / name).parent / module["detail"]["path"]
            assert target.is_file(), f"{name}: module {symbol} points at missing {target}"
    for path, text in _infra_texts().items():
        assert "br/public:" not in text and "br:" not in text, f"{path} uses a registry module"


def test_no_storage_key_anywhere_in_infra() -> None:
    for path, text in _infra_texts().items():
        assert "AccountKey" not in text, path
        assert "listKeys(" not in text and "listkeys(" not in text.lower(), path
        assert "DefaultEndpointsProtocol" not in text, path


# ---------------------------------------------------------------- Function App and storage


def test_function_app_is_flex_consumption_python_311_with_its_identity(
    app: dict[str, Any], function_app: dict[str, Any]
) -> None:
    plans = [res["config"] for res in app["resources"].values() if res["type"] == "Microsoft.Web/serverfarms"]
    assert [plan["sku"] for plan in plans] == [{"name": "FC1", "tier": "FlexConsumption"}]
    assert plans[0]["properties"]["reserved"] is True  # Linux

    assert function_app["kind"] == "functionapp,linux"
    assert function_app["identity"]["type"] == "UserAssigned"
    config = function_app["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert {"instanceMemoryMB", "maximumInstanceCount"} <= set(config["scaleAndConcurrency"])
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    assert _accessor(storage["authentication"]["userAssignedIdentityResourceId"]) == ("identity", "id")
    # Key Vault references resolve with the user-assigned identity, not a system-assigned one.
    assert _accessor(function_app["properties"]["keyVaultReferenceIdentity"]) == ("identity", "id")


def test_host_storage_is_reached_through_the_identity(app_settings: dict[str, Any]) -> None:
    assert "AzureWebJobsStorage" not in app_settings
    assert _accessor(app_settings["AzureWebJobsStorage__accountName"]) == ("storage", "name")
    assert app_settings["AzureWebJobsStorage__credential"] == "managedidentity"
    client_id = _accessor(app_settings["AzureWebJobsStorage__clientId"])
    assert client_id[0] == "identity" and "clientId" in str(client_id[1])


def test_storage_takes_no_shared_key(app: dict[str, Any]) -> None:
    accounts = [
        res["config"] for res in app["resources"].values() if res["type"] == "Microsoft.Storage/storageAccounts"
    ]
    assert len(accounts) == 1
    properties = accounts[0]["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False


def test_other_services_have_local_auth_off(app: dict[str, Any]) -> None:
    by_type = {res["type"]: res["config"] for res in app["resources"].values()}
    assert by_type["Microsoft.Insights/components"]["properties"]["DisableLocalAuth"] is True
    assert by_type["Microsoft.KeyVault/vaults"]["properties"]["enableRbacAuthorization"] is True
    assert by_type["Microsoft.EventHub/namespaces"]["properties"]["disableLocalAuth"] is True


def test_event_hub_trigger_settings_name_our_hub_and_consumer_group(app: dict[str, Any], app_settings: dict) -> None:
    variables = {name: var["value"] for name, var in app["variables"].items()}
    assert app_settings["DEFENDER_EVENTHUB_NAME"] == "defenderHubName"
    assert app_settings["DEFENDER_EVENTHUB_CONSUMER_GROUP"] == "defenderConsumerGroupName"
    assert variables["defenderConsumerGroupName"] not in ("$Default", "")
    assert app_settings["DEFENDER_EVENTHUB__credential"] == "managedidentity"
    assert "DEFENDER_EVENTHUB__fullyQualifiedNamespace" in app_settings
    automations = [res for res in app["resources"].values() if res["type"] == "Microsoft.Security/automations"]
    assert len(automations) == 1
    automation = automations[0]["config"]
    assert automation["condition"] == "defenderExport"  # optional by parameter
    (action,) = automation["config"]["properties"]["actions"]
    assert action["actionType"] == "EventHub" and "connectionString" not in action
    assert _accessor(action["eventHubResourceId"]) == ("defenderHub", "id")
    assert [source["eventSource"] for source in automation["config"]["properties"]["sources"]] == ["Alerts"]


# ---------------------------------------------------------------- settings


def _is_set(name: str, app_settings: dict[str, Any]) -> bool:
    return name in app_settings or any(key.startswith(f"{name}__") for key in app_settings)


def test_every_needed_setting_is_set_or_unset_for_a_reason(app_settings: dict[str, Any]) -> None:
    missing = []
    for setting in DECLARED:
        optional = not setting.required and (setting.host_only or setting.default != "")
        if optional or setting.name in UNSET_BY_DESIGN:
            continue
        if not _is_set(setting.name, app_settings):
            missing.append(setting.name)
    assert not missing, f"declared settings neither set in infra/modules/app.bicep nor in UNSET_BY_DESIGN: {missing}"


def test_the_unset_list_is_honest(app_settings: dict[str, Any]) -> None:
    declared = {setting.name for setting in DECLARED}
    for name in UNSET_BY_DESIGN:
        assert name in declared, f"{name} is not a declared setting"
        assert not _is_set(name, app_settings), f"{name} is set after all: drop it from UNSET_BY_DESIGN"


def test_every_app_setting_of_ours_is_declared(app_settings: dict[str, Any]) -> None:
    declared = {setting.name for setting in DECLARED}
    host = ("AzureWebJobsStorage__", "DEFENDER_EVENTHUB__", "APPLICATIONINSIGHTS_", "PYTHON_APPLICATIONINSIGHTS_")
    unknown = [name for name in app_settings if name not in declared and not name.startswith(host)]
    assert not unknown, f"app settings nobody reads (typo?): {unknown}"


def test_secrets_are_key_vault_references_and_connections_are_identities(app_settings: dict[str, Any]) -> None:
    for setting in DECLARED:
        if not setting.secret:
            continue
        if setting.name in IDENTITY_CONNECTIONS:
            assert setting.name not in app_settings, f"{setting.name} would carry a secret: use {setting.name}__*"
            assert app_settings.get(f"{setting.name}__credential") == "managedidentity", setting.name
            continue
        if setting.name in app_settings:
            value = app_settings[setting.name]
            assert isinstance(value, str) and value.startswith("@Microsoft.KeyVault(SecretUri="), setting.name
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "REMEDIATION_AUDIT_KEY"} <= set(app_settings)


def test_azure_sdk_clients_use_the_user_assigned_identity(app_settings: dict[str, Any]) -> None:
    assert _accessor(app_settings["AZURE_CLIENT_ID"])[0] == "identity"


def test_telemetry_is_on_with_the_identity(app_settings: dict[str, Any]) -> None:
    # The Python worker configures OpenTelemetry only with this setting; its exporter authenticates with
    # APPLICATIONINSIGHTS_AUTHENTICATION_STRING, as Application Insights takes no instrumentation key.
    assert app_settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    assert "ClientId=${identity.properties.clientId}" in app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]


# ---------------------------------------------------------------- roles


def test_role_definition_ids_are_the_documented_ones() -> None:
    for path, text in _infra_texts().items():
        for guid in GUID.findall(text):
            assert guid.lower() in DOCUMENTED_ROLES or guid.lower() in OTHER_GUIDS, f"{path}: unknown GUID {guid}"
    everything = "\n".join(_infra_texts().values())
    for guid, role in DOCUMENTED_ROLES.items():
        assert guid in everything, f"{role} is never assigned"


def test_the_identity_holds_the_data_roles_the_code_needs(app: dict[str, Any]) -> None:
    roles = app["variables"]["roles"]["value"]
    granted = set()
    for resource in app["resources"].values():
        if resource["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        config = resource["config"].get("config", resource["config"])
        properties = config["properties"]
        if not isinstance(properties["principalId"], dict) or _accessor(properties["principalId"])[0] != "identity":
            continue  # the deployer's and Defender's assignments (parameters)
        role = properties["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        holder, key = _accessor(role)
        assert holder == "roles" and key in roles
        granted.add((config["scope"], key))
    assert granted == APP_ROLES


def test_outside_roles_cluster_user_reader_and_registry_role(parsed: dict[str, dict[str, Any]]) -> None:
    cluster = parsed["modules/cluster-access.bicep"]
    assert cluster["variables"]["clusterUserRole"]["value"] == "4abbcc35-e782-43d8-92c5-2d3f1bd2253f"
    assert cluster["resources"]["clusterUser"]["config"]["scope"] == "cluster"
    reader = parsed["modules/subscription-reader.bicep"]
    assert reader["variables"]["readerRole"]["value"] == "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    registry = parsed["modules/registry-access.bicep"]
    assert registry["resources"]["remediator"]["config"]["scope"] == "registry"
    main = parsed["main.bicep"]
    for module in ("registryAccess", "clusterAccess", "resourceGraphReader"):
        assert module in main["modules"], module


def test_custom_registry_role_is_the_generated_json(parsed: dict[str, dict[str, Any]]) -> None:
    main = parsed["main.bicep"]
    loaded = main["variables"]["registryRole"]["value"]["function"]
    assert loaded["type"] == "load_json_content"
    path = (INFRA / loaded["parameters"]["file_path"]).resolve()
    assert path == ROOT / "deploy" / "azure" / "registry-remediator-role.json"
    (permissions,) = main["resources"]["registryRemediatorRole"]["config"]["config"]["properties"]["permissions"]
    fields = {"actions": "Actions", "notActions": "NotActions", "dataActions": "DataActions"}
    fields["notDataActions"] = "NotDataActions"
    for bicep_key, json_key in fields.items():
        assert _accessor(permissions[bicep_key]) == ("registryRole", json_key), bicep_key


def _kubernetes_data_actions() -> set[str]:
    """deploy/kubernetes/rbac.yaml's ClusterRole as Azure RBAC for Kubernetes data actions."""
    verbs = {"get": "read", "list": "read", "watch": "read", "create": "write", "update": "write"}
    verbs |= {"patch": "write", "delete": "delete", "deletecollection": "delete"}
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "rbac.yaml").read_text()))
    (cluster_role,) = [doc for doc in documents if doc["kind"] == "ClusterRole"]
    actions = set()
    for rule in cluster_role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                path = "/".join(part for part in (group, resource.split("/")[0]) if part)
                for verb in rule["verbs"]:
                    action = verbs.get(verb, f"{verb}/action")
                    actions.add(f"Microsoft.ContainerService/managedClusters/{path}/{action}")
    return actions


def test_azure_rbac_kubernetes_role_is_the_cluster_role(parsed: dict[str, dict[str, Any]]) -> None:
    main = parsed["main.bicep"]
    listed = main["variables"]["kubernetesDataActions"]["value"]
    assert len(listed) == len(set(listed))
    assert set(listed) == _kubernetes_data_actions()
    (permissions,) = main["resources"]["kubernetesRemediatorRole"]["config"]["config"]["properties"]["permissions"]
    assert permissions["dataActions"] == "kubernetesDataActions" and permissions["actions"] == []


# ---------------------------------------------------------------- names the code uses


def test_every_queue_table_and_container_the_code_uses_is_created(app: dict[str, Any]) -> None:
    from remediation.push_policy.recheck import QUEUE as RECHECK_QUEUE

    variables = {name: var["value"] for name, var in app["variables"].items()}
    created = {
        "queue": set(variables["queueNames"]),
        "table": set(variables["tableNames"]),
        "container": set(variables["blobContainerNames"]),
    }
    looped_over = {
        res["config"]["loop_type"]["detail"].get("array_name") for res in app["resources"].values()
        if "loop_type" in res["config"]
    }  # fmt: skip
    for variable in ("queueNames", "tableNames", "blobContainerNames"):
        assert variable in looped_over, f"no resource is created for each of {variable}"
    used = {"queue": {RECHECK_QUEUE}, "table": set(), "container": set()}
    for setting in DECLARED:
        for suffix, kind in (("_QUEUE", "queue"), ("_TABLE", "table"), ("_CONTAINER", "container")):
            if setting.name.endswith(suffix):
                used[kind].add(setting.default)
    for kind, names in used.items():
        assert names <= created[kind], f"{kind}s the code uses but infra does not create: {names - created[kind]}"


def test_the_code_also_creates_its_tables_queues_and_containers() -> None:
    # The app creates what it uses at first use, so a renamed table or queue needs no new deployment;
    # that needs the data roles (checked above), not just read access.
    sources = [ROOT / "remediation" / "store" / name for name in ("events.py", "incidents.py", "audit.py")]
    sources += [ROOT / "remediation" / "push_policy" / "tag_index.py", ROOT / "bot" / "messages.py"]
    for source in sources:
        assert "create_table()" in source.read_text(), source
    assert "create_queue()" in (ROOT / "remediation" / "store" / "clients.py").read_text()
    assert "create_container()" in (ROOT / "remediation" / "store" / "snapshots.py").read_text()


# ---------------------------------------------------------------- Event Grid, azd


def test_registry_events_subscription(parsed: dict[str, dict[str, Any]]) -> None:
    template = parsed["modules/registry-subscription.bicep"]
    (subscription,) = [res["config"] for res in template["resources"].values() if not res["existing"]]
    properties = subscription["properties"]
    destination = properties["destination"]
    assert destination["endpointType"] == "AzureFunction"
    assert destination["properties"]["resourceId"].endswith("/functions/registry_events")
    assert '@bp.function_name("registry_events")' in (ROOT / "functions" / "registry_events.py").read_text()
    assert set(properties["retryPolicy"]) == {"maxDeliveryAttempts", "eventTimeToLiveInMinutes"}
    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["deadLetterDestination"]["endpointType"] == "StorageBlob"
    assert dead_letter["identity"]["type"] == "SystemAssigned"
    types = properties["filter"]["includedEventTypes"]
    assert "Microsoft.ContainerRegistry.ImagePushed" in types and "Microsoft.ContainerRegistry.ImageDeleted" in types
    topic = parsed["modules/registry-topic.bicep"]["resources"]["topic"]["config"]
    assert topic["properties"]["topicType"] == "Microsoft.ContainerRegistry.Registries"


def test_azure_yaml_deploys_this_folder_as_a_python_function(function_app: dict[str, Any]) -> None:
    manifest = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert manifest["infra"]["path"] == "infra" and manifest["infra"]["module"] == "main"
    ((name, service),) = manifest["services"].items()
    assert service["host"] == "function"
    assert service["language"] == "python"
    assert (ROOT / service["project"] / "function_app.py").is_file()
    tags = function_app["tags"]["function"]["parameters"]["arg_2"]
    assert tags["'azd-service-name'"] == name  # azd finds the app by this tag
    for hook in manifest["hooks"].values():
        script = ROOT / hook["posix"]["run"]
        assert script.is_file() and script.stat().st_mode & 0o111, script
    assert "infra/eventgrid.bicep" in (INFRA / "hooks" / "postdeploy.sh").read_text()


def test_main_parameters_bind_only_declared_parameters(parsed: dict[str, dict[str, Any]]) -> None:
    bound = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = parsed["main.bicep"]["parameters"]
    assert set(bound) <= set(declared)
    required = {name for name, param in declared.items() if param.get("default") is None}
    assert required <= set(bound)


# ---------------------------------------------------------------- alerts

# The log lines each alert rule of infra/modules/alerts.bicep counts: format strings the code logs at ERROR.
ALERTED = {
    "poisonAlert": {"last delivery failed: %s", "Slack %s job gave up after %d attempts: %s"},
    "incidentFailedAlert": {"incident %s"},
    "invalidPlaybooksAlert": {"invalid playbook: %s"},
}
# Lines the Functions host writes, not our code: the WebJobs SDK's QueueProcessor when it moves a
# message to `<queue>-poison` ("Message has reached MaxDequeueCount of 5. Moving message to queue '...'.").
HOST_MESSAGES = {"Message has reached MaxDequeueCount"}
CONDITION = re.compile(r'message\s+(==|startswith|contains)\s+"([^"]*)"')
PLACEHOLDER = re.compile(r"%[-+ #0]*\d*(?:\.\d+)?[sdfr]")
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def _logged_formats() -> dict[str, set[str]]:
    """Every literal format string the code hands a logger, with the levels it is logged at.

    `log = logger.info if error is None else logger.error` then `log("...")` counts as both levels.
    """
    import ast

    logged: dict[str, set[str]] = {}
    sources = [ROOT / "function_app.py"]
    for folder in ("bot", "functions", "remediation"):
        sources += sorted((ROOT / folder).rglob("*.py"))
    for source in sources:
        tree = ast.parse(source.read_text(), filename=str(source))
        aliases: dict[str, set[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                levels = {
                    sub.attr
                    for sub in ast.walk(node.value)
                    if isinstance(sub, ast.Attribute) and sub.attr in LEVELS and "log" in ast.unparse(sub.value)
                }
                if levels:
                    aliases[node.targets[0].id] = levels
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            first = node.args[0]
            if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
                continue
            if isinstance(node.func, ast.Attribute) and node.func.attr in LEVELS and "log" in ast.unparse(node.func):
                levels = {node.func.attr}
            elif isinstance(node.func, ast.Name) and node.func.id in aliases:
                levels = aliases[node.func.id]
            else:
                continue
            logged.setdefault(first.value, set()).update(levels)
    return logged


def _names(literal: str, operator: str, message_format: str) -> bool:
    """Whether `message <operator> "<literal>"` holds for some line logged with this format string."""
    pieces = PLACEHOLDER.split(message_format)
    whole = re.fullmatch(".*".join(re.escape(piece) for piece in pieces), literal, re.DOTALL) is not None
    if operator == "==":
        return whole
    if operator == "startswith":
        return whole or pieces[0].startswith(literal)
    return whole or any(literal in piece for piece in pieces)


@pytest.fixture(scope="module")
def alerts(parsed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return parsed["modules/alerts.bicep"]


def _rule_queries(alerts: dict[str, Any]) -> dict[str, str]:
    variables = {name: var["value"] for name, var in alerts["variables"].items()}
    queries = {}
    for symbol, resource in alerts["resources"].items():
        if resource["type"] != "Microsoft.Insights/scheduledQueryRules":
            continue
        (criterion,) = resource["config"]["properties"]["criteria"]["allOf"]
        queries[symbol] = variables.get(criterion["query"], criterion["query"])
    return queries


def test_the_three_alert_rules_exist_and_watch_application_insights(
    parsed: dict[str, dict[str, Any]], alerts: dict[str, Any]
) -> None:
    assert set(_rule_queries(alerts)) == set(ALERTED)
    for symbol in ALERTED:
        rule = alerts["resources"][symbol]
        assert rule["api_version"] >= "2023-12-01"
        config = rule["config"]
        assert config["kind"] == "LogAlert"
        properties = config["properties"]
        assert properties["enabled"] is True and properties["scopes"] == ["appInsightsId"]
        (criterion,) = properties["criteria"]["allOf"]
        assert criterion["timeAggregation"] == "Count"
        assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
        assert properties["actions"]["actionGroups"] == "actionGroups"
    # Email or nothing: the action group exists only with an address.
    group = alerts["resources"]["actionGroup"]["config"]
    assert group["condition"]["operator"]["type"] == "not"
    (receiver,) = group["config"]["properties"]["emailReceivers"]
    assert receiver["emailAddress"] == "alertEmail"
    # main.bicep deploys them unless alertsEnabled=false, on the app's Application Insights.
    main = parsed["main.bicep"]
    module = main["modules"]["alerts"]
    assert module["detail"]["path"] == "modules/alerts.bicep"
    assert module["config"]["condition"] == "alertsEnabled"
    assert main["parameters"]["alertsEnabled"]["type"] == "bool" and main["parameters"]["alertsEnabled"]["default"]
    assert main["parameters"]["alertEmail"]["default"] == ""
    assert _accessor(module["config"]["config"]["params"]["appInsightsId"])[0] == "app"
    assert "appInsightsId" in parsed["modules/app.bicep"]["outputs"]


def test_each_alert_query_names_a_message_the_code_logs_at_error(alerts: dict[str, Any]) -> None:
    logged = _logged_formats()
    for symbol, query in _rule_queries(alerts).items():
        conditions = CONDITION.findall(query)
        assert conditions, f"{symbol}: the query names no message"
        named: set[str] = set()
        for operator, literal in conditions:
            if any(literal.startswith(host) for host in HOST_MESSAGES) or literal.endswith("-poison"):
                continue  # the host's line and the queue it names (checked against the queues below)
            formats = {fmt for fmt in logged if _names(literal, operator, fmt)}
            assert formats, f"{symbol}: no code logs a message that is {operator} {literal!r}"
            named |= formats
        for message_format in ALERTED[symbol]:
            assert message_format in named, f"{symbol}: does not count {message_format!r}"
            assert "error" in logged[message_format], f"{message_format!r} is not logged at ERROR"


def test_incident_failed_alert_matches_the_failed_state(alerts: dict[str, Any]) -> None:
    from remediation.incidents.model import IncidentState

    query = _rule_queries(alerts)["incidentFailedAlert"]
    assert ("==", "incident %s" % IncidentState.FAILED.value) in CONDITION.findall(query)  # noqa: UP031


def test_poison_alert_watches_the_poison_queues_of_the_queues_the_code_uses(alerts: dict[str, Any]) -> None:
    query = _rule_queries(alerts)["poisonAlert"]
    defaults = {setting.name: setting.default for setting in DECLARED}
    host = json.loads((ROOT / "host.json").read_text())
    assert host["extensions"]["queues"]["maxDequeueCount"] == 5  # what `last delivery failed` counts on
    for setting in ("REMEDIATION_ACTIONS_QUEUE", "SLACK_OUTBOX_QUEUE"):
        assert f'"{defaults[setting]}-poison"' in query, setting


# ---------------------------------------------------------------- docs/deploy.md


def test_deploy_doc_lists_every_checkov_skip_and_its_links_resolve() -> None:
    doc_path = ROOT / "docs" / "deploy.md"
    doc = doc_path.read_text()
    skipped = {found for text in _infra_texts().values() for found in re.findall(r"checkov:skip=(CKV_\w+)", text)}
    assert skipped, "no checkov skips found: has the syntax changed?"
    for check_id in sorted(skipped):
        assert check_id in doc, f"docs/deploy.md does not say why {check_id} is skipped"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc):
        if not target.startswith(("http://", "https://")):
            assert (doc_path.parent / target).exists(), f"docs/deploy.md links to missing {target}"
