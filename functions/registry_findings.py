"""Queue trigger for delayed findings re-checks (queue `registry-findings`, scheduled by the push policy).

Each message asks once more whether Defender has findings for a pushed digest. When it has, the
synthetic `Microsoft.ContainerRegistry.ImageScanned` Signal goes to intake like any event (deduped
by its id, `<push id>:findings`); when not, the next delayed attempt is queued, up to the limit.
A malformed message is logged and dropped (a retry cannot fix it); storage and lookup outages raise
so the host retries the message.
"""

from __future__ import annotations

import logging

import azure.functions as func

from functions import wiring

logger = logging.getLogger(__name__)

bp = func.Blueprint()

QUEUE = "registry-findings"  # remediation.push_policy.recheck.QUEUE; literal so a cold start imports no SDK


@bp.function_name("registry_findings")
@bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection="AzureWebJobsStorage")
def registry_findings(message: func.QueueMessage) -> None:
    from remediation.push_policy.recheck import Recheck

    try:
        request = Recheck.from_text(message.get_body().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        logger.warning("findings re-check dropped: %s", error, extra={"message_id": message.id, "reason": str(error)})
        return
    signal = wiring.findings_recheck().run(request)
    if signal is not None:
        wiring.intake().process([signal], trigger="registry_findings")
