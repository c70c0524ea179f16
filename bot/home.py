"""App Home: on `app_home_opened`, publish the open incidents and the last ten decisions.

Neighbours: `bot.app` routes the event here; `bot.views.home_view` renders; the incidents come from
the engine's store. Decisions are read from the incidents themselves (approvals and rejections),
which scans the incidents table: fine for the tens to thousands of incidents a team keeps.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from bot.commands import OPEN_STATES
from bot.views import home_view
from remediation.engine import Engine
from remediation.incidents import Incident

if TYPE_CHECKING:
    from slack_sdk import WebClient

LAST_DECISIONS = 10


def publish_home(*, engine: Engine, client: WebClient, user: str) -> None:
    incidents = engine.incidents.list()
    waiting = [incident for incident in incidents if incident.state in OPEN_STATES]
    client.views_publish(user_id=user, view=home_view(incidents=waiting, decisions=last_decisions(incidents)))


def last_decisions(incidents: Iterable[Incident], *, count: int = LAST_DECISIONS) -> list[tuple[datetime, str]]:
    """(time, text) of the latest approvals and rejections, newest first."""
    decisions = []
    for incident in incidents:
        for approval in incident.approvals:
            decisions.append((approval.at, f"<@{approval.user}> approved `{incident.id}` ({incident.playbook})"))
        if incident.rejected_by:
            decisions.append((incident.updated_at, f"<@{incident.rejected_by}> rejected `{incident.id}`"))
    return sorted(decisions, key=lambda decision: decision[0], reverse=True)[:count]
