"""Every fixture, published or hand-made, through the real function entry points against Azurite.

Each fixture goes in by the routes its sender uses: ACR events through the registry Event Grid
trigger; Event Grid deliveries carrying alerts through the Defender Event Grid trigger; alert
bodies through the Defender HTTP trigger and, as one message, through the Event Hub trigger.
The outcome of each event is read back from the structured log line intake writes for it and
compared with the documented outcome in `expected_targets.EXPECTED`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

import host
from conftest import AppTables
from expected_targets import EXPECTED, fixture_path

ACR = sorted(name for name in EXPECTED if name.startswith("samples/acr-"))
ENVELOPES = sorted(
    name
    for name in EXPECTED
    if not name.startswith("samples/acr-")
    and any(part in name for part in (".eventgrid.json", ".cloudevent.json", ".eventgrid-customtopic.json"))
)
BODIES = sorted(set(EXPECTED) - set(ACR) - set(ENVELOPES))


@pytest.fixture(autouse=True)
def fresh_tables(app_tables: AppTables) -> AppTables:
    return app_tables


def events_of(name: str) -> list[Any]:
    document = json.loads(fixture_path(name).read_bytes())
    return document if isinstance(document, list) else [document]


def observed(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The outcome of every event, in order, as intake logged it."""
    outcomes: list[dict[str, Any]] = []
    for record in caplog.records:
        fields = record.__dict__
        message = record.getMessage()
        if message == "signal accepted":
            outcomes.append(
                {"outcome": "signal", "id": fields["event_id"], "type": fields["signal_type"]}
                | {"severity": fields["severity"], "targets": fields["targets"]}
            )
        elif message == "event skipped":
            outcomes.append({"outcome": "skip", "kind": fields["kind"], "event_id": fields["event_id"]})
        elif message.startswith("event rejected"):
            outcomes.append({"outcome": "rejection", "reason": fields["reason"], "event_id": fields["event_id"]})
    return outcomes


def documented(name: str) -> list[dict[str, Any]]:
    """The same view of `EXPECTED[name]`, for comparison with what the functions logged."""
    view: list[dict[str, Any]] = []
    for expected in EXPECTED[name]:
        if expected["outcome"] == "signal":
            view.append({key: expected[key] for key in ("outcome", "id", "type", "severity", "targets")})
        elif expected["outcome"] == "skip":
            view.append({"outcome": "skip", "kind": expected["kind"], "event_id": expected["event_id"]})
        else:
            view.append({"outcome": "rejection", "reason": expected["reason"], "event_id": expected["event_id"]})
    return view


def assert_matches(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Every event's outcome as documented. A batch logs its skips and rejections as it reads them,
    and its Signals as each incident they open or fold into is written, so order by kind and id."""
    assert len(actual) == len(expected)
    for got, want in zip(sorted(actual, key=_order), sorted(expected, key=_order), strict=True):
        if want["outcome"] == "rejection":
            assert got["outcome"] == "rejection"
            assert want["reason"] in got["reason"]
            assert got["event_id"] == want["event_id"]
        else:
            assert got == want


def _order(outcome: dict[str, Any]) -> tuple[str, str]:
    return outcome["outcome"], str(outcome.get("id") or outcome.get("event_id"))


@pytest.mark.parametrize("name", ACR)
def test_registry_events_through_the_event_grid_trigger(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="remediation")
    for event in events_of(name):
        if "chartdeleted" in name:
            # The worker parses eventTime itself and refuses `019-03-12...` before our code runs;
            # Event Grid then retries and dead-letters the delivery.
            with pytest.raises(ValueError, match="019-03-12"):
                host.event_grid_event(event)
            return
        host.call("registry_events", host.event_grid_event(event))
    assert_matches(observed(caplog), documented(name))


@pytest.mark.parametrize("name", ENVELOPES)
def test_event_grid_deliveries_through_the_defender_event_grid_trigger(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="remediation")
    for event in events_of(name):
        host.call("defender_alerts_eventgrid", host.event_grid_event(event))
    assert_matches(observed(caplog), documented(name))


@pytest.mark.parametrize("name", BODIES)
def test_alert_bodies_through_the_defender_http_trigger(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="remediation")
    response = host.call("defender_alerts_http", host.http_post("defender/alerts", fixture_path(name).read_bytes()))
    expected = documented(name)
    rejected = [outcome for outcome in expected if outcome["outcome"] == "rejection"]
    assert response.status_code == (400 if rejected else 200)
    document = json.loads(response.get_body())
    assert [problem["event_id"] for problem in document["problems"]] == [r["event_id"] for r in rejected]
    assert_matches(observed(caplog), expected)


@pytest.mark.parametrize("name", BODIES)
def test_alert_bodies_through_the_defender_event_hub_trigger(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="remediation")
    host.call("defender_alerts_eventhub", host.event_hub_batch([fixture_path(name).read_bytes()]))
    assert_matches(observed(caplog), documented(name))
