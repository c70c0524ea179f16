"""Defender's vulnerability findings for an image digest, read from Azure Resource Graph.

Neighbours: `push_policy.PushPolicy` looks findings up on ImagePushed, and `recheck.FindingsRecheck`
again later (findings land minutes after a push); both turn a `FindingsSummary` into
`extended_properties` for playbook conditions. The client comes from
`remediation.actions.container_registry.clients`; `calls.call` retries it.

Exempted findings (status cause `Exempt`: someone accepted the risk) are counted apart, in
`vulnerabilities_exempt`, and not in the severity counts or `fix_available`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from remediation.actions.container_registry.calls import call
from remediation.actions.container_registry.clients import RegistryClients
from remediation.retry import RetryPolicy

ACR_VULNERABILITIES_ASSESSMENT = "c0b7cfc6-3172-465a-b378-53c7ff2cc0d5"
SEVERITIES = ("critical", "high", "medium", "low")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

QUERY = """securityresources
| where type == 'microsoft.security/assessments/subassessments'
| where id contains '/assessments/{assessment}/'
| where properties.additionalData.artifactDetails.digest == '{digest}'
| project severity = tostring(properties.additionalData.vulnerabilityDetails.severity),
    fixStatus = tostring(properties.additionalData.softwareDetails.fixStatus),
    statusCode = tostring(properties.status.code),
    cause = tostring(properties.status.cause)"""


@dataclass(frozen=True, slots=True)
class FindingsSummary:
    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    exempt: int = 0
    fix_available: bool = False

    @classmethod
    def of(cls, rows: Sequence[dict[str, Any]]) -> FindingsSummary:
        counts = dict.fromkeys(SEVERITIES, 0)
        exempt, fixable = 0, False
        for row in rows:
            if str(row.get("statusCode", "")).lower() == "healthy":
                continue
            if str(row.get("cause", "")).lower() == "exempt":
                exempt += 1
                continue
            severity = str(row.get("severity", "")).lower()
            if severity in counts:
                counts[severity] += 1
            fixable = fixable or str(row.get("fixStatus", "")).lower() == "fixavailable"
        return cls(**counts, exempt=exempt, fix_available=fixable)

    def properties(self) -> dict[str, str]:
        """The playbook-facing form: strings, as every extended property is."""
        return {
            **{f"vulnerabilities_{s}": str(getattr(self, s)) for s in SEVERITIES},
            "vulnerabilities_exempt": str(self.exempt),
            "fix_available": "true" if self.fix_available else "false",
            "findings": "ready",
        }


PENDING = {"findings": "pending"}


class ResourceGraphFindings:
    def __init__(self, *, clients: RegistryClients, subscriptions: Sequence[str], retry: RetryPolicy | None = None):
        self._clients = clients
        self._subscriptions = list(subscriptions)
        self._retry = retry or RetryPolicy()

    def lookup(self, *, digest: str) -> FindingsSummary | None:
        """The findings for `digest`, or None when Defender has none (yet)."""
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")  # it goes into the query text
        request = QueryRequest(
            subscriptions=self._subscriptions,
            query=QUERY.format(assessment=ACR_VULNERABILITIES_ASSESSMENT, digest=digest),
            options=QueryRequestOptions(result_format="objectArray"),
        )
        client = self._clients.graph()
        response = call(lambda: client.resources(request), what=f"findings of {digest}", policy=self._retry)
        data: Any = response.data
        rows: list[dict[str, Any]] = data if isinstance(data, list) else []
        return FindingsSummary.of(rows) if rows else None
