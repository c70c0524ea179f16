"""Assembles the push policy and the findings re-check from settings, for the Functions layer.

Neighbours: `functions/registry_findings.py` (and the engine's wiring, for `push_policy`) call these
once per worker. Settings: AzureWebJobsStorage, REMEDIATION_REGISTRIES, REMEDIATION_TAG_INDEX_TABLE
(default `tagindex`), REMEDIATION_DISALLOWED_TAGS, REMEDIATION_PUSHER_ALLOWLIST and
REMEDIATION_FINDINGS_RECHECK_MINUTES (default `2,5,10`: one attempt per delay).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from remediation.actions.container_registry.clients import RegistryClients
from remediation.actions.container_registry.resolve import (
    REGISTRIES_SETTING,
    RegistryResolver,
    parse_registries_setting,
)
from remediation.registry_policy.findings import ResourceGraphFindings
from remediation.registry_policy.push_policy import PushPolicy
from remediation.registry_policy.recheck import DEFAULT_DELAYS, FindingsRecheck, RecheckQueue
from remediation.registry_policy.rules import PushRules
from remediation.registry_policy.tag_index import DEFAULT_TABLE, TableTagIndex

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


def _delays(text: str) -> tuple[int, ...]:
    if not text.strip():
        return DEFAULT_DELAYS
    return tuple(int(float(part) * 60) for part in text.split(","))


def _parts(
    env: Mapping[str, str], credential: TokenCredential | None
) -> tuple[RegistryResolver, ResourceGraphFindings, RecheckQueue]:
    clients = RegistryClients(credential=credential)
    resolver = RegistryResolver(clients=clients, registries=parse_registries_setting(env.get(REGISTRIES_SETTING, "")))
    findings = ResourceGraphFindings(clients=clients, subscriptions=resolver.subscriptions())
    queue = RecheckQueue.from_connection_string(
        env["AzureWebJobsStorage"], delays=_delays(env.get("REMEDIATION_FINDINGS_RECHECK_MINUTES", ""))
    )
    return resolver, findings, queue


def push_policy(env: Mapping[str, str] | None = None, *, credential: TokenCredential | None = None) -> PushPolicy:
    values = os.environ if env is None else env
    resolver, findings, queue = _parts(values, credential)
    index = TableTagIndex.from_connection_string(
        values["AzureWebJobsStorage"], table_name=values.get("REMEDIATION_TAG_INDEX_TABLE", "") or DEFAULT_TABLE
    )
    return PushPolicy(
        tag_index=index, findings=findings, recheck=queue, rules=PushRules.from_env(values), is_ours=resolver.is_ours
    )


def findings_recheck(
    env: Mapping[str, str] | None = None, *, credential: TokenCredential | None = None
) -> FindingsRecheck:
    _, findings, queue = _parts(os.environ if env is None else env, credential)
    return FindingsRecheck(findings=findings, queue=queue)
