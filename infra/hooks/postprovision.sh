#!/bin/sh
# azd postprovision hook: runs after infra/main.bicep.
#  1. Creates the audit chain's HMAC key (Key Vault secret `audit-key`) once. Bicep has no stable
#     random value; a new key at every provision would rotate it unasked (rotation is deliberate:
#     docs/deploy.md). Needs Key Vault Secrets Officer, which main.bicep grants to AZURE_PRINCIPAL_ID.
#  2. Says which Slack secrets are still missing.
#  3. Prints the Kubernetes binding to apply when the clusters use Kubernetes RBAC.
set -eu

# azd exports the environment to hooks; read it again so the script also runs on its own.
if command -v azd >/dev/null 2>&1; then
  eval "$(azd env get-values | sed 's/^/export /')"
fi
: "${AZURE_KEY_VAULT_NAME:?run after azd provision (AZURE_KEY_VAULT_NAME is unset)}"

# Role assignments take a few minutes to reach Key Vault's data plane: retry.
attempt=1
until az keyvault secret list --vault-name "$AZURE_KEY_VAULT_NAME" --query "[].name" -o tsv >/dev/null 2>&1; do
  if [ "$attempt" -ge 20 ]; then
    echo "Key Vault $AZURE_KEY_VAULT_NAME still refuses this account; grant it Key Vault Secrets Officer and run this hook again." >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 15
done

if az keyvault secret show --vault-name "$AZURE_KEY_VAULT_NAME" --name audit-key --query id -o tsv >/dev/null 2>&1; then
  echo "audit-key: present (kept)"
else
  umask 077
  keyfile=$(mktemp)
  trap 'rm -f "$keyfile"' EXIT
  openssl rand -base64 48 | tr -d '\n' >"$keyfile"
  az keyvault secret set --vault-name "$AZURE_KEY_VAULT_NAME" --name audit-key --file "$keyfile" \
    --encoding utf-8 --content-type text/plain --query id -o tsv >/dev/null
  echo "audit-key: created"
fi

for secret in slack-bot-token slack-signing-secret; do
  if ! az keyvault secret show --vault-name "$AZURE_KEY_VAULT_NAME" --name "$secret" --query id -o tsv >/dev/null 2>&1; then
    echo "WARNING: Key Vault secret $secret is missing: Slack stays off until both Slack secrets exist." >&2
    echo "  azd env set SLACK_BOT_TOKEN ... && azd env set SLACK_SIGNING_SECRET ... && azd provision" >&2
  fi
done

if [ "${KUBERNETES_AUTHORIZATION:-kubernetesRbac}" = "kubernetesRbac" ] && [ -n "${CLUSTER_RESOURCE_IDS:-}" ]; then
  echo
  echo "Kubernetes RBAC: on each cluster, bind the identity's object id to the bot's ClusterRole:"
  echo "  sed 's/kind: Group/kind: User/; s/<ENTRA-GROUP-OBJECT-ID>/${AZURE_IDENTITY_PRINCIPAL_ID}/' deploy/kubernetes/rbac.yaml | kubectl apply -f -"
  echo "(docs/deploy.md, 'Kubernetes access')"
fi
