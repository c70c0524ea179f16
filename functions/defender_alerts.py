"""Defender for Cloud alerts, by every route they reach us: Event Hub, Event Grid, HTTP.

- Event Hub (continuous export, the recommended route): a batch of messages, each one alert or an
  array; recommendations sharing the hub are skipped by the normaliser.
- Event Grid custom topic: one event whose `data` is the alert.
- HTTP (workflow automation's Logic App): one alert or an array; 400 names each bad event, the
  good ones of the same body are still taken in.
"""

from __future__ import annotations

import azure.functions as func

from functions import wiring
from functions.translate import event_grid_json, json_response, report_json
from remediation.signals import decode_batch, normalise, parse_defender_alert

bp = func.Blueprint()


@bp.function_name("defender_alerts_eventhub")
# Without a retry policy the host checkpoints a failed batch and moves on: retry storage outages.
@bp.retry(strategy="exponential_backoff", max_retry_count="8", minimum_interval="00:00:05", maximum_interval="00:10:00")
@bp.event_hub_message_trigger(
    arg_name="messages",
    event_hub_name="%DEFENDER_EVENTHUB_NAME%",
    connection="DEFENDER_EVENTHUB",
    cardinality=func.Cardinality.MANY,
    consumer_group="%DEFENDER_EVENTHUB_CONSUMER_GROUP%",
)
def defender_alerts_eventhub(messages: list[func.EventHubEvent]) -> None:
    outcomes = [outcome for message in messages for outcome in decode_batch(message.get_body(), parse_defender_alert)]
    wiring.intake().process(outcomes, trigger="defender_alerts_eventhub")


@bp.function_name("defender_alerts_eventgrid")
@bp.event_grid_trigger(arg_name="event")
def defender_alerts_eventgrid(event: func.EventGridEvent) -> None:
    outcome = normalise(event_grid_json(event), parse_defender_alert)
    wiring.intake().process([outcome], trigger="defender_alerts_eventgrid")


@bp.function_name("defender_alerts_http")
@bp.route(route="defender/alerts", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def defender_alerts_http(req: func.HttpRequest) -> func.HttpResponse:
    report = wiring.intake().process(decode_batch(req.get_body(), parse_defender_alert), trigger="defender_alerts_http")
    return json_response(report_json(report), status_code=400 if report.rejected else 200)
