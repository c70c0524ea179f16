"""A batch is claimed, folded and completed as a batch: storage work per batch, not per alert.

Against Azurite: the event ledger's requests are counted with azure-core's `raw_request_hook` on a
ledger of its own; the registered Event Hub function is called with real `azure.functions` batches,
and what it wrote is read back (an incident's `revision` is the store's count of its writes). The
storm's Slack message is checked on the local Slack Web API, with no timer tick at all.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.data.tables import TableClient

import host
from conftest import AppTables
from functions import wiring
from remediation.incidents import Incident
from remediation.intake import CLAIM_LEASE_SECONDS, Claim, DeliveryInProgress
from remediation.store.events import TableEventLedger
from slack_server import SlackTest, run_outbox
from slack_server import slack_fixture as slack_fixture  # the `slack` fixture
from test_event_ledger import after_lease, fresh_key
from test_slack_approvals import PRIVILEGED_POD


class Requests:
    """Counts the HTTP requests a client sends, by method (azure-core's per-client request hook)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, request: Any) -> None:
        self.sent.append(request.http_request.method)

    def since(self, mark: int) -> list[str]:
        return self.sent[mark:]


@pytest.fixture
def counted(storage_connection_string: str) -> Iterator[tuple[TableEventLedger, Requests]]:
    requests = Requests()
    ledger = TableEventLedger.from_connection_string(storage_connection_string, raw_request_hook=requests)
    yield ledger, requests
    ledger.close()


def keys(count: int, prefix: str = "defender") -> list[str]:
    return [fresh_key(prefix) for _ in range(count)]


class TestLedgerBatches:
    def test_a_hundred_ids_are_claimed_in_one_request_and_completed_in_another(
        self, counted: tuple[TableEventLedger, Requests]
    ) -> None:
        ledger, requests = counted
        batch, mark = keys(100), len(requests.sent)
        assert set(ledger.claim_all(batch).values()) == {Claim.CLAIMED}
        ledger.complete_all(batch)
        assert requests.since(mark) == ["POST", "POST"]  # two $batch transactions
        assert set(ledger.claim_all(batch).values()) == {Claim.DONE}

    def test_a_batch_is_split_by_partition_and_by_the_hundred(self, counted: tuple[TableEventLedger, Requests]) -> None:
        ledger, requests = counted
        batch, mark = keys(150) + keys(3, prefix="registry"), len(requests.sent)
        assert set(ledger.claim_all(batch).values()) == {Claim.CLAIMED}
        assert requests.since(mark) == ["POST"] * 3  # 100 + 50 defender, 3 registry
        assert all(not ledger.is_done(key) for key in batch[:3])

    def test_an_id_claimed_elsewhere_leaves_the_rest_of_its_hundred_claimed_row_by_row(
        self, counted: tuple[TableEventLedger, Requests], storage_connection_string: str
    ) -> None:
        ledger, _ = counted
        batch = keys(10)
        other = TableEventLedger.from_connection_string(storage_connection_string)
        assert other.claim(batch[3])  # another instance is handling it right now
        other.complete(batch[7])  # and handled this one already
        claims = ledger.claim_all(batch)
        assert claims[batch[3]] is Claim.IN_FLIGHT
        assert claims[batch[7]] is Claim.DONE
        assert [claims[key] for key in batch if key not in (batch[3], batch[7])] == [Claim.CLAIMED] * 8
        other.close()

    def test_an_expired_claim_in_a_batch_is_taken_over(self, storage_connection_string: str) -> None:
        batch = keys(5)
        crashed = TableEventLedger.from_connection_string(storage_connection_string)
        assert crashed.claim(batch[0])  # its worker died holding the claim
        later = TableEventLedger.from_connection_string(
            storage_connection_string, lease_seconds=CLAIM_LEASE_SECONDS, clock=after_lease
        )
        assert set(later.claim_all(batch).values()) == {Claim.CLAIMED}
        crashed.close()
        later.close()

    def test_releasing_a_batch_with_one_id_gone_releases_the_others(
        self, counted: tuple[TableEventLedger, Requests]
    ) -> None:
        ledger, _ = counted
        batch = keys(4)
        ledger.claim_all(batch)
        ledger.release(batch[1])
        ledger.release_all(batch)
        assert set(ledger.claim_all(batch).values()) == {Claim.CLAIMED}


def alert(alert_id: str, *, pod: str = "web-batch") -> bytes:
    entities = [{"$id": "1", "Type": "K8s-pod", "Name": pod, "Namespace": {"$id": "2", "Name": "shop"}}]
    return json.dumps({**PRIVILEGED_POD, "SystemAlertId": alert_id, "Entities": entities}).encode()


def deliver(ids: list[str], **kwargs: Any) -> None:
    host.call("defender_alerts_eventhub", host.event_hub_batch([alert(i, **kwargs) for i in ids]))


def incidents() -> list[Incident]:
    return wiring.engine().incidents.list()


def only_incident() -> Incident:
    [incident] = incidents()
    return incident


class TestBatchFolds:
    def test_a_hundred_alerts_of_one_pod_fold_in_one_write(
        self, app_tables: AppTables, caplog: pytest.LogCaptureFixture
    ) -> None:
        deliver(["batch-opener"])
        opened = only_incident()
        caplog.set_level("INFO", logger="remediation")
        caplog.clear()
        deliver([f"batch-{i}" for i in range(100)])
        folded = only_incident()
        assert folded.occurrences == 101
        assert folded.revision == opened.revision + 1  # one ETag write for the whole batch
        assert len([r for r in caplog.records if r.getMessage().startswith("incident updated")]) == 1
        assert len([r for r in caplog.records if r.getMessage() == "signal accepted"]) == 100

    def test_a_batch_opening_an_incident_counts_every_alert_in_the_opening(self, app_tables: AppTables) -> None:
        deliver([f"opening-{i}" for i in range(30)])
        incident = only_incident()
        assert incident.occurrences == 30
        assert incident.signal["id"] == "defender:opening-0"

    def test_a_batch_over_two_pods_folds_once_per_pod(self, app_tables: AppTables) -> None:
        deliver([f"two-{i}" for i in range(10)], pod="web-a")
        deliver([f"two-b-{i}" for i in range(10)], pod="web-b")
        ids = [f"mixed-{i}" for i in range(20)]
        host.call(
            "defender_alerts_eventhub",
            host.event_hub_batch([alert(i, pod="web-a" if n % 2 else "web-b") for n, i in enumerate(ids)]),
        )
        assert sorted(incident.occurrences for incident in incidents()) == [20, 20]

    def test_a_batch_handled_again_after_its_completion_was_lost_is_not_counted_again(
        self, app_tables: AppTables
    ) -> None:
        deliver(["again-opener"])
        batch = [f"again-{i}" for i in range(100)]
        deliver(batch)
        written = only_incident()
        with app_tables.client(app_tables.events) as events:  # the completions never reached storage
            for entity in list(events.list_entities()):
                if entity["EventId"] != "defender:again-opener":
                    events.delete_entity(entity["PartitionKey"], entity["RowKey"])
        deliver(batch)  # the host delivers the batch again
        assert only_incident().occurrences == written.occurrences == 101
        assert only_incident().revision == written.revision  # nothing new: not even a write

    def test_an_alert_claimed_elsewhere_is_delivered_again_and_counted_once(
        self, app_tables: AppTables, storage_connection_string: str
    ) -> None:
        deliver(["elsewhere-opener"])
        other = TableEventLedger.from_connection_string(storage_connection_string, table_name=app_tables.events)
        assert other.claim("defender:elsewhere-5")  # another instance is handling it right now
        batch = [f"elsewhere-{i}" for i in range(10)]
        with pytest.raises(DeliveryInProgress, match="elsewhere-5"):
            deliver(batch)
        assert only_incident().occurrences == 10  # the nine others were taken
        other.release("defender:elsewhere-5")  # its handling failed there
        deliver(batch)  # the host's retry
        assert only_incident().occurrences == 11
        events = TableClient.from_connection_string(storage_connection_string, app_tables.events)
        assert {e["Status"] for e in events.list_entities()} == {"done"}
        other.close()

    def test_a_failure_in_a_batch_releases_what_was_not_handled(
        self, app_tables: AppTables, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        deliver(["fail-opener"], pod="web-a")
        real = wiring.engine().incidents.open_or_fold_all
        calls = {"n": 0}

        def storage_fails_on_the_second_group(**kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 2:
                raise ServiceRequestError("storage went away")
            return real(**kwargs)

        monkeypatch.setattr(wiring.engine().incidents, "open_or_fold_all", storage_fails_on_the_second_group)
        batch = [alert(f"fail-{pod}-{i}", pod=pod) for pod in ("web-a", "web-b") for i in range(5)]
        with pytest.raises(ServiceRequestError):
            host.call("defender_alerts_eventhub", host.event_hub_batch(batch))
        with app_tables.client(app_tables.events) as events:
            done = sorted(e["EventId"] for e in events.list_entities() if e["Status"] == "done")
            claimed = [e["EventId"] for e in events.list_entities() if e["Status"] != "done"]
        assert done == sorted(["defender:fail-opener", *(f"defender:fail-web-a-{i}" for i in range(5))])
        assert claimed == []  # released: the host's retry claims them again
        monkeypatch.undo()
        host.call("defender_alerts_eventhub", host.event_hub_batch(batch))
        assert sorted(incident.occurrences for incident in incidents()) == [5, 6]


def updates_showing(slack: SlackTest) -> list[tuple[float, int]]:
    """(arrival, occurrences shown) of each chat.update."""
    shown = []
    for call in slack.api.called("chat.update"):
        text = json.dumps(call.args.get("blocks"))
        count = int(text.split(" occurrences")[0].rsplit(" ", 1)[-1]) if " occurrences" in text else 1
        shown.append((call.at, count))
    return shown


class TestStormOnSlack:
    def test_the_last_count_of_a_storm_is_shown_without_waiting_for_the_timer(self, slack: SlackTest) -> None:
        host.after_call.clear()  # the outbox runs when this test says, as a host's listener would
        deliver(["storm-opener"])
        run_outbox(slack.tables.connection_string, wiring.components().settings.slack_outbox_queue)
        for batch in range(5):  # five batches within a second: folds inside one update interval
            deliver([f"storm-{batch}-{i}" for i in range(20)])
            run_outbox(slack.tables.connection_string, wiring.components().settings.slack_outbox_queue, wait_seconds=0)
        assert only_incident().occurrences == 101
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (not updates_showing(slack) or updates_showing(slack)[-1][1] != 101):
            run_outbox(slack.tables.connection_string, wiring.components().settings.slack_outbox_queue, wait_seconds=0)
            time.sleep(0.1)
        shown = updates_showing(slack)
        assert shown[-1][1] == 101  # the final count, held back by the interval, shown after it
        gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(shown)]
        assert all(gap >= 0.9 for gap in gaps), gaps  # still at most one update a second
