"""`SlackDirectory`: the engine's ApproverDirectory, resolving Slack user groups to their members.

Neighbours: `remediation.incidents.decisions` asks `members(handle)` for each group a playbook
names among its approvers (`@secops-oncall`, or a subteam id `S...`). Handles map to ids through
`usergroups.list`, members come from `usergroups.users.list`; both are cached for `ttl` seconds so
a click costs at most two API calls a minute. A failing lookup yields no members (fail closed) and
a warning; nobody is approved by an outage.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_sdk import WebClient

logger = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 60.0
_SUBTEAM_ID = re.compile(r"^S[A-Z0-9]{2,}$")


class SlackDirectory:
    def __init__(
        self, *, client: WebClient, ttl: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._handles: tuple[float, dict[str, str]] | None = None  # (fetched at, handle -> id)
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    def members(self, handle: str) -> frozenset[str]:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            group_id = handle if _SUBTEAM_ID.match(handle) else self._group_id(handle.removeprefix("@"))
            return frozenset() if group_id is None else self._users(group_id)
        except (SlackApiError, SlackClientError, OSError) as problem:
            logger.warning("user group lookup failed: nobody counts as its member", extra=_why(handle, problem))
            return frozenset()

    def _group_id(self, handle: str) -> str | None:
        with self._lock:
            cached = self._handles
        if cached is None or self._clock() - cached[0] > self._ttl:
            response = self._client.usergroups_list(include_disabled=False)
            groups: list[dict[str, str]] = response.get("usergroups", [])
            mapping = {group["handle"]: group["id"] for group in groups}
            cached = (self._clock(), mapping)
            with self._lock:
                self._handles = cached
        return cached[1].get(handle)

    def _users(self, group_id: str) -> frozenset[str]:
        with self._lock:
            cached = self._members.get(group_id)
        if cached is None or self._clock() - cached[0] > self._ttl:
            response = self._client.usergroups_users_list(usergroup=group_id)
            cached = (self._clock(), frozenset(response.get("users", [])))
            with self._lock:
                self._members[group_id] = cached
        return cached[1]


def _why(handle: str, problem: Exception) -> dict[str, str]:
    return {"handle": handle, "error": type(problem).__name__, "reason": str(problem)[:200]}
