"""The Bolt app: Slack's signed requests routed to the bot's handlers, built once per worker.

Neighbours: `functions/slack_events.py` feeds it requests through `bot.adapter`; the handlers are
`bot.interactions` (buttons, modal), `bot.commands` (`/remediate`) and `bot.home` (App Home).
`process_before_response=True` because a Function cannot work after its response; every handler
only records a decision or reads state, so it answers well within Slack's 3 seconds. Who may read
incidents (`/remediate list` and `show`, Details, App Home) is `bot.directory.Visibility`: the
approvers and `REMEDIATION_VIEWERS`. The workspace and app pinning and the signature are checked
before this app is even built (`bot.adapter.refusal`); Bolt checks the signature again. Bolt injects
listener arguments by parameter name (`ack`, `body`...), which is why the listeners below take
positional parameters, against the house rule of keyword-only arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.blocks import APPROVE, DETAILS, PROVIDE_INPUT, REJECT, UNDO
from bot.commands import Commands
from bot.directory import READ_MEMBERS_TTL_SECONDS, SlackDirectory, Visibility
from bot.interactions import Interactions
from bot.outbox import Outbox
from bot.views import INPUT_CALLBACK, refused_home_view
from remediation.engine import Engine
from remediation.incidents import ApproverDirectory

if TYPE_CHECKING:
    from slack_bolt import Ack, App
    from slack_sdk import WebClient

logger = logging.getLogger(__name__)

COMMAND = "/remediate"


def build_app(
    *,
    engine: Engine,
    client: WebClient,
    signing_secret: str,
    outbox: Outbox,
    viewers: Sequence[str] = (),
    directory: ApproverDirectory | None = None,
) -> App:
    """The Bolt app. A listener records the decision (one conditional write and its audit) and
    queues what Slack should show (`outbox`); only opening the input modal, whose trigger expires in
    3 seconds, and App Home's refusal to someone who may see no incident call Slack inside the request.
    `viewers` are `REMEDIATION_VIEWERS`; `directory` resolves groups for reading (by default one
    whose members are cached `READ_MEMBERS_TTL_SECONDS`; decisions use the engine's, uncached)."""
    from slack_bolt import App
    from slack_bolt.authorization import AuthorizeResult

    def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        # The one workspace's bot token, without Bolt's `auth.test` on the first request: a click
        # never waits on Slack.
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=client.token)

    app = App(
        client=client,
        signing_secret=signing_secret,
        authorize=authorize,
        process_before_response=True,
        logger=logging.getLogger("bot.bolt"),
    )
    reading = directory or SlackDirectory(client=client, members_ttl=READ_MEMBERS_TTL_SECONDS)
    visibility = Visibility(directory=reading, viewers=viewers)
    _buttons(app, Interactions(engine=engine, client=client, outbox=outbox, visibility=visibility))
    commands = Commands(engine=engine, note=outbox.note, visibility=visibility)

    @app.command(COMMAND)
    def on_command(ack: Ack, command: dict[str, Any]) -> None:
        ack(**commands.answer(text=command.get("text", ""), user=command["user_id"]))

    @app.event("app_home_opened")
    def on_home(ack: Ack, event: dict[str, Any]) -> None:
        ack()
        if event.get("tab", "home") != "home":
            return
        user = event["user"]
        if visibility.may_see_any(user=user, policies=(playbook.approval for playbook in engine.playbooks)):
            outbox.home(user=user)
        else:
            _refuse_home(client, user=user)

    return app


def _refuse_home(client: WebClient, *, user: str) -> None:
    """Replace whatever App Home showed `user` before (they may have been an approver) by the refusal."""
    from slack_sdk.errors import SlackApiError, SlackClientError

    try:
        client.views_publish(user_id=user, view=refused_home_view())
    except (SlackApiError, SlackClientError, OSError) as problem:
        logger.warning("App Home refusal not published: %s", type(problem).__name__, extra={"actor": user})


def _buttons(app: App, interactions: Interactions) -> None:
    routes = {
        APPROVE: interactions.approve,
        REJECT: interactions.reject,
        DETAILS: interactions.details,
        UNDO: interactions.undo,
        PROVIDE_INPUT: interactions.open_input,
    }
    for action_id, handler in routes.items():
        app.action(action_id)(_acked(handler))

    @app.view(INPUT_CALLBACK)
    def on_input(ack: Ack, body: dict[str, Any]) -> None:
        answer = interactions.submit_input(payload=body)
        ack(**answer) if answer else ack()


def _acked(handler: Any) -> Any:
    def listener(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        handler(payload=body)

    return listener
