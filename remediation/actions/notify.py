"""Parameters of the `notify` action: a message posted to Slack without changing anything.

Slack delivery lives in `bot/` behind the engine's notifier protocol; this module only declares
what a playbook may pass. Registered in `remediation.actions.registry`.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from remediation.actions.params import ActionParams

# A channel name (#secops-alerts), a channel id (C0123ABCD) or a user-group handle (@secops-oncall).
_CHANNEL = re.compile(r"^(?:#[^\s#@]{1,80}|[CGD][A-Z0-9]{2,}|@[a-z0-9][a-z0-9._-]*)$")


def slack_channel(value: str) -> str:
    """`value` when it names a channel or user group; ValueError otherwise (playbooks use it too)."""
    if not _CHANNEL.fullmatch(value):
        raise ValueError("must be a Slack channel (#name or a C... id) or a user-group handle (@name)")
    return value


SlackChannel = Annotated[str, AfterValidator(slack_channel)]


class NotifyParams(ActionParams):
    message: str = Field(min_length=1, max_length=3000)
    channel: SlackChannel | None = Field(default=None, description="null: the playbook's notify channel")
