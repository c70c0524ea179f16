"""Queue trigger on the Slack outbox: one Slack job (a message, a thread line, an ephemeral, App Home).

The job is done by `bot.outbox.OutboxWorker`; when Slack rate-limits or fails it puts the job back
itself, visible after Slack's Retry-After, so this function completes. Anything else raising here
(storage unreachable) is retried by the host.
"""

from __future__ import annotations

import azure.functions as func

from functions import wiring

bp = func.Blueprint()


@bp.function_name("slack_outbox")
@bp.queue_trigger(arg_name="message", queue_name="%SLACK_OUTBOX_QUEUE%", connection="AzureWebJobsStorage")
def slack_outbox(message: func.QueueMessage) -> None:
    wiring.outbox_worker().run(message.get_body().decode("utf-8", "replace"))
