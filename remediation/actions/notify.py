"""The `notify` action: a message posted to Slack without changing anything.

Slack delivery lives in `bot/` behind the engine's notifier protocol: the executor reports the
step's message through `Notifier.step_progress`, which the Slack notifier posts in the incident's
thread, and, when the step names a `channel` other than the playbook's own `notify` channel, also
hands `channel_post`'s (channel, text) to `Notifier.channel_post`, which posts it there with a link
back to the incident's message (a user-group handle is mentioned in the incident's thread instead).
Preview and undo are trivial, since nothing anywhere changes. `slack_channel` is the rule playbooks
use for their own `notify` channel too.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from remediation.actions.base import Action, ActionParams, NoRuntime
from remediation.actions.runtime import Outcome, Preview, StepContext, StepResult

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
    channel: SlackChannel | None = Field(
        default=None,
        description=(
            "null: a reply in the incident's thread; a channel other than the playbook's notify: posted there, "
            "linking to the incident's message; a user group (@name): mentioned in the incident's thread"
        ),
    )


class Notify(Action[NotifyParams, NoRuntime]):
    name = "notify"
    summary = (
        "Post a message to Slack: in the incident's thread, or in the channel named (linking back to the "
        "incident's message). Changes nothing, so there is nothing to undo."
    )
    Params = NotifyParams
    permissions = ("slack: chat:write", "slack: chat:write.public", "slack: usergroups:read")
    example = {"message": "Kubernetes dashboard exposed on aks-prod-weu", "channel": "#secops-alerts"}
    destructive = False

    def preview(self, params: NotifyParams, ctx: StepContext) -> Preview:
        typed = self.typed(params)
        where = f" in {typed.channel}" if typed.channel else ""
        return Preview(action=self.name, summary=f"post{where}: {typed.message}")

    def apply(self, params: NotifyParams, ctx: StepContext) -> StepResult:
        typed = self.typed(params)
        channel, message = typed.channel, typed.message
        if channel is not None:
            message = (
                f"{channel} notified in this thread" if channel.startswith("@") else f"posted in {channel}: {message}"
            )
        return StepResult(action=self.name, outcome=Outcome.APPLIED, message=message)

    def undo(self, params: NotifyParams, result: StepResult, ctx: StepContext) -> StepResult:
        return StepResult(action=self.name, outcome=Outcome.NOOP, message="a message cannot be unsent: nothing to undo")


def channel_post(params: object, *, notify: str | None) -> tuple[str, str] | None:
    """(channel, message) when `params` are a notify step's naming a channel other than `notify`,
    the playbook's own (where the incident's message and thread already are); None otherwise."""
    if isinstance(params, NotifyParams) and params.channel and params.channel != notify:
        return params.channel, params.message
    return None


ACTIONS = (Notify,)
