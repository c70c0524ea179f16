"""What the lock, move and release modules share: the tag a step works on and its snapshot document.

Neighbours: `handler` builds a `Job` per step; `lock`, `move` and `release` read and write the
snapshot document (mode, registry, repository, tag, digest, the tag's and manifest's attributes,
and for `move` the quarantine copy), which is also kept in `StepResult.undo`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from remediation.actions.container_registry.resolve import RegistryRef
from remediation.actions.runtime import Outcome, StepResult, TargetVersion

SHORT_DIGEST = 12
_MAX_TAG = 128


@dataclass(frozen=True, slots=True)
class Job:
    action: str
    ref: RegistryRef
    repository: str
    tag: str
    quarantine_prefix: str = "quarantine/"

    @property
    def name(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def where(self) -> str:
        return f"{self.ref.login_server}/{self.name}"

    @property
    def quarantine_repository(self) -> str:
        return f"{self.quarantine_prefix}{self.repository}"

    def quarantine_tag(self, digest: str) -> str:
        short = digest.partition(":")[2][:SHORT_DIGEST]
        return f"{self.tag[: _MAX_TAG - SHORT_DIGEST - 1]}-{short}"

    def quarantine_pattern(self) -> re.Pattern[str]:
        return re.compile(rf"^{re.escape(self.tag[: _MAX_TAG - SHORT_DIGEST - 1])}-[0-9a-f]{{{SHORT_DIGEST}}}$")

    def target(self, digest: str | None) -> TargetVersion:
        return TargetVersion(kind="tag", name=self.name, version=digest)

    def result(self, outcome: Outcome, message: str, **kwargs: Any) -> StepResult:
        return StepResult(action=self.action, outcome=outcome, message=message, **kwargs)

    def document(self, mode: str, digest: str, **attributes: Any) -> dict[str, Any]:
        return {
            "mode": mode,
            "registry": self.ref.login_server,
            "repository": self.repository,
            "tag": self.tag,
            "digest": digest,
            **attributes,
        }
