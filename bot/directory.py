"""Who is who in Slack: `SlackDirectory` resolves user groups to members; `Visibility` says who may read incidents.

Neighbours: `remediation.incidents.decisions` asks `members(handle)` for each group a playbook
names among its approvers (`@secops-oncall`, or a subteam id `S...`) when someone approves,
rejects, undoes or supplies input; `bot.commands`, `bot.interactions` and `bot.home` ask
`Visibility` before showing an incident.

Handles map to ids through `usergroups.list`, cached for `handles_ttl` seconds (a group's handle
rarely changes, and a stale mapping names the same group). Members come from
`usergroups.users.list` and are read fresh by default (`members_ttl=0`): a user removed from the
approver group can no longer decide the moment Slack knows it. Only a directory used for reading
(`Visibility`'s) may cache members, for at most `READ_MEMBERS_TTL_SECONDS`. A failing lookup yields
no members (fail closed) and a warning; nobody is approved, or shown anything, by an outage.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from remediation.incidents import ApproverDirectory, Incident, approver_entries

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from remediation.plans import ApprovalPolicy

logger = logging.getLogger(__name__)

HANDLES_TTL_SECONDS = 60.0
READ_MEMBERS_TTL_SECONDS = 60.0
_SUBTEAM_ID = re.compile(r"^S[A-Z0-9]{2,}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL = re.compile(r"^(#.+|[CG][A-Z0-9]{2,})$")


class SlackDirectory:
    def __init__(
        self,
        *,
        client: WebClient,
        handles_ttl: float = HANDLES_TTL_SECONDS,
        members_ttl: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._handles_ttl = handles_ttl
        self._members_ttl = members_ttl
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
        if cached is None or self._clock() - cached[0] > self._handles_ttl:
            response = self._client.usergroups_list(include_disabled=False)
            groups: list[dict[str, str]] = response.get("usergroups", [])
            mapping = {group["handle"]: group["id"] for group in groups}
            cached = (self._clock(), mapping)
            with self._lock:
                self._handles = cached
        return cached[1].get(handle)

    def _users(self, group_id: str) -> frozenset[str]:
        if self._members_ttl <= 0:
            return frozenset(self._client.usergroups_users_list(usergroup=group_id).get("users", []))
        with self._lock:
            cached = self._members.get(group_id)
        if cached is None or self._clock() - cached[0] > self._members_ttl:
            response = self._client.usergroups_users_list(usergroup=group_id)
            cached = (self._clock(), frozenset(response.get("users", [])))
            with self._lock:
                self._members[group_id] = cached
        return cached[1]


class Visibility:
    """Who may read incidents: the approvers of an incident's playbook, and `REMEDIATION_VIEWERS`
    (user ids and @group handles). Everyone else, workspace guests included, sees none of them."""

    def __init__(self, *, directory: ApproverDirectory, viewers: Sequence[str] = ()) -> None:
        self._directory = directory
        self._viewers = tuple(viewers)

    def may_see(self, incident: Incident, *, user: str) -> bool:
        """`user` may read this incident (`/remediate show`, Details)."""
        return self._is_viewer(user) or self._named(user, approver_entries(incident))

    def may_see_any(self, *, user: str, policies: Iterable[ApprovalPolicy]) -> bool:
        """`user` may read the incident listings (`/remediate list`, App Home): a viewer, or an
        approver of at least one playbook (`policies` are the playbooks' approval policies)."""
        return self._is_viewer(user) or any(self._named(user, _entries(policy)) for policy in policies)

    def _is_viewer(self, user: str) -> bool:
        return self._named(user, self._viewers)

    def _named(self, user: str, entries: Iterable[str]) -> bool:
        entries = tuple(entries)
        if user in entries:
            return True
        return any(user in self._directory.members(entry) for entry in entries if not _USER_ID.match(entry))


def _entries(policy: ApprovalPolicy) -> tuple[str, ...]:
    extra = policy.escalate_to
    people = extra is not None and not _CHANNEL.match(extra)
    return (*policy.approvers, extra) if people and extra is not None else policy.approvers


def _why(handle: str, problem: Exception) -> dict[str, str]:
    return {"handle": handle, "error": type(problem).__name__, "reason": str(problem)[:200]}
