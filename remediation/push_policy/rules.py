"""Per-repository push rules from settings: disallowed tags and the pushers allowed to push.

Neighbours: `policy.PushPolicy` asks these for each ImagePushed signal and marks the signal
(`disallowed_tag`, `pusher_not_allowed`) for playbook conditions. The setting is the one place a
disallowed tag is written: the shipped registry-quarantine-latest-in-prod keys on the mark.
Patterns are shell globs on the repository (`prod/*`); a repository matching no pattern has no rule.

REMEDIATION_DISALLOWED_TAGS   {"prod/*": ["latest"]}   (its default; `{}` allows every tag)
REMEDIATION_PUSHER_ALLOWLIST  {"prod/*": ["ci-bot", "release-pipeline"]}
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PushRules:
    disallowed_tags: Mapping[str, frozenset[str]] = field(default_factory=dict)
    pusher_allowlist: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def tag_disallowed(self, repository: str, tag: str) -> bool:
        return any(
            tag in tags for pattern, tags in self.disallowed_tags.items() if fnmatch.fnmatchcase(repository, pattern)
        )

    def pusher_not_allowed(self, repository: str, actor: str | None) -> bool:
        """True when a rule covers the repository and the named pusher is on none of its lists."""
        if not actor:
            return False  # the event names nobody: nothing to judge
        lists = [names for pattern, names in self.pusher_allowlist.items() if fnmatch.fnmatchcase(repository, pattern)]
        return bool(lists) and not any(actor in names for names in lists)
