"""Registry push policy: tag index (overwrites), push rules, Defender findings and their re-checks.

`policy.PushPolicy.enrich` is what the engine calls; `tag_index` (table `tagindex`),
`rules` (from settings), `findings` (Resource Graph) and `recheck` (queue `registry-findings`) feed it.
`remediation.compose` assembles them.
"""

from __future__ import annotations

from remediation.push_policy.findings import FindingsSummary, ResourceGraphFindings
from remediation.push_policy.policy import PushPolicy
from remediation.push_policy.recheck import QUEUE, FindingsRecheck, Recheck, RecheckQueue
from remediation.push_policy.rules import PushRules
from remediation.push_policy.tag_index import TableTagIndex
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
