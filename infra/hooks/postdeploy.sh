#!/bin/sh
# azd postdeploy hook: the Event Grid system topic of each registry and its subscription to the
# `registry_events` function (infra/eventgrid.bicep). It runs after the code is deployed because
# Event Grid validates an AzureFunction destination against the function itself.
set -eu

if command -v azd >/dev/null 2>&1; then
  eval "$(azd env get-values | sed 's/^/export /')"
fi
if [ -z "${REGISTRY_RESOURCE_IDS:-}" ]; then
  echo "No REGISTRY_RESOURCE_IDS: no Event Grid subscription to create."
  exit 0
fi
: "${AZURE_FUNCTION_APP_ID:?run after azd provision}"

# Event Grid allows one system topic per source: reuse a registry's existing topic by name.
names=""
old_ifs=$IFS
IFS=,
for id in $REGISTRY_RESOURCE_IDS; do
  subscription=$(echo "$id" | cut -d/ -f3)
  existing=$(az eventgrid system-topic list --subscription "$subscription" \
    --query "[?source=='$id'].name | [0]" -o tsv 2>/dev/null || true)
  names="${names:+$names,}${existing}"
done
IFS=$old_ifs

# The host indexes new functions a little after the deployment ends: retry while it does.
attempt=1
until az deployment sub create \
  --name "eventgrid-${AZURE_ENV_NAME}" \
  --location "$AZURE_LOCATION" \
  --template-file infra/eventgrid.bicep \
  --parameters registryResourceIds="$REGISTRY_RESOURCE_IDS" systemTopicNames="$names" \
    functionAppId="$AZURE_FUNCTION_APP_ID" appResourceGroupName="$AZURE_RESOURCE_GROUP" \
    storageAccountName="$AZURE_STORAGE_ACCOUNT_NAME" deadLetterContainerName="$EVENTGRID_DEAD_LETTER_CONTAINER" \
  --only-show-errors --output none; do
  if [ "$attempt" -ge 5 ]; then
    echo "Event Grid subscriptions failed 5 times; run infra/hooks/postdeploy.sh again once registry_events is listed by 'az functionapp function list'." >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 30
done
echo "Event Grid: registry events now reach registry_events."
