"""Registry push policy: tag index (overwrites), push rules, Defender findings and their re-checks.

`push_policy.PushPolicy.enrich` is what the engine calls; `tag_index` (table `tagindex`),
`rules` (settings), `findings` (Resource Graph) and `recheck` (queue `registry-findings`) feed it.
`build` assembles them from settings for the Functions layer.
"""

from __future__ import annotations

from remediation.registry_policy.findings import FindingsSummary, ResourceGraphFindings
from remediation.registry_policy.push_policy import PushPolicy
from remediation.registry_policy.recheck import QUEUE, FindingsRecheck, Recheck, RecheckQueue
from remediation.registry_policy.rules import PushRules
from remediation.registry_policy.tag_index import TableTagIndex
from remediation.signals.acr import IMAGE_SCANNED

__all__ = [
    "IMAGE_SCANNED",
    "QUEUE",
    "FindingsRecheck",
    "FindingsSummary",
    "PushPolicy",
    "PushRules",
    "Recheck",
    "RecheckQueue",
    "ResourceGraphFindings",
    "TableTagIndex",
]
