"""Per-repository push rules from settings: disallowed tags and the pushers allowed to push.

Neighbours: `push_policy.PushPolicy` asks these for each ImagePushed signal and marks the signal
(`disallowed_tag`, `pusher_not_allowed`) for playbook conditions. Patterns are shell globs on the
repository (`prod/*`); a repository matching no pattern has no rule.

REMEDIATION_DISALLOWED_TAGS   {"prod/*": ["latest"]}
REMEDIATION_PUSHER_ALLOWLIST  {"prod/*": ["ci-bot", "release-pipeline"]}
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

DISALLOWED_TAGS_SETTING = "REMEDIATION_DISALLOWED_TAGS"
PUSHER_ALLOWLIST_SETTING = "REMEDIATION_PUSHER_ALLOWLIST"


def _patterns(name: str, text: str) -> dict[str, frozenset[str]]:
    if not text.strip():
        return {}
    data = json.loads(text)
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values()
    ):
        raise ValueError(
            f'{name} must be a JSON object of repository pattern -> list of names, e.g. {{"prod/*": ["x"]}}'
        )
    return {str(pattern): frozenset(values) for pattern, values in data.items()}


@dataclass(frozen=True, slots=True)
class PushRules:
    disallowed_tags: Mapping[str, frozenset[str]] = field(default_factory=dict)
    pusher_allowlist: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PushRules:
        return cls(
            disallowed_tags=_patterns(DISALLOWED_TAGS_SETTING, env.get(DISALLOWED_TAGS_SETTING, "")),
            pusher_allowlist=_patterns(PUSHER_ALLOWLIST_SETTING, env.get(PUSHER_ALLOWLIST_SETTING, "")),
        )

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
