"""App Home: on `app_home_opened`, publish the open incidents and the last ten decisions.

Neighbours: `bot.app` queues a `home` job on the Slack outbox when the tab opens, only for a reader
`bot.directory.Visibility` allows (anyone else gets `bot.views.refused_home_view` at once); `bot.outbox`'s
worker calls `publish_home`; `bot.views.home_view` renders. Incidents come from the store's live
index (no table scan); the last decisions are those on live incidents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from bot.commands import OPEN_STATES
from bot.limits import escape
from bot.views import home_view
from remediation.engine import Engine
from remediation.incidents import Incident

LAST_DECISIONS = 10


def publish_home(*, engine: Engine, user: str, call: Callable[..., Any]) -> None:
    """Publish `user`'s App Home through `call` (the Slack notifier's, which raises SlackRetry)."""
    incidents = engine.incidents.live()
    waiting = [incident for incident in incidents if incident.state in OPEN_STATES]
    call("views_publish", user_id=user, view=home_view(incidents=waiting, decisions=last_decisions(incidents)))


def last_decisions(incidents: Iterable[Incident], *, count: int = LAST_DECISIONS) -> list[tuple[datetime, str]]:
    """(time, text) of the latest approvals and rejections, newest first."""
    decisions = []
    for incident in incidents:
        playbook = escape(incident.playbook)
        for approval in incident.approvals:
            decisions.append((approval.at, f"<@{approval.user}> approved `{incident.id}` ({playbook})"))
        if incident.rejected_by:
            decisions.append((incident.updated_at, f"<@{incident.rejected_by}> rejected `{incident.id}`"))
    return sorted(decisions, key=lambda decision: decision[0], reverse=True)[:count]
