"""End to end: alert in -> Slack message posted, then approve -> action applied on kmock; 200 incidents.

First half: the time from calling `defender_alerts_http` with one crypto-mining alert (playbook
node-cordon-and-quarantine-image, one node per incident) until the local Slack API recorded the
incident's chat.postMessage. Second half, when the app registers a queue-triggered executor on the
actions queue: the time from an approver's signed Approve click until the node is cordoned on kmock
and the incident succeeded: the click, reading the work message from Azurite's queue, and the
executor function called with a `func.QueueMessage` as the host would. The host's own queue
polling (up to `maxPollingInterval`, 2 s in host.json) is not in the figure. Sequential, so each
figure is a latency with no queueing behind other incidents.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from typing import Any

from bench.environment import AppEnvironment, app_environment, forget_requests, incident_of, mining_alert, percentile

INCIDENTS = 200
SPARE_NODES = 20  # schedulable nodes beyond the incidents' own, so no guard refuses a cordon
QUEUE = "remediation-actions"


def run() -> dict[str, Any]:
    with app_environment() as env:
        nodes = [f"aks-bench-vmss{i:06d}" for i in range(INCIDENTS)]
        _seed_cluster(env, [*nodes, *(f"aks-spare-vmss{i:06d}" for i in range(SPARE_NODES))])
        warm_up = _warm_up(env)
        opened, post_ms, call_ms = [], [], []
        for index, node in enumerate(nodes):
            incident_id, posted, returned = _alert_to_post(env, index, node)
            opened.append(incident_id)
            post_ms.append(posted)
            call_ms.append(returned)
        result: dict[str, Any] = {
            "incidents": INCIDENTS,
            "cluster_nodes": INCIDENTS + SPARE_NODES,
            "alert_to_post_p50_ms": round(statistics.median(post_ms), 1),
            "alert_to_post_p99_ms": round(percentile(post_ms, 0.99), 1),
            "alert_call_p50_ms": round(statistics.median(call_ms), 1),
            "incidents_posted": len(set(opened)),
        }
        executor = _executor_function()
        if executor is None:
            result["approve_to_applied"] = "not measured: no queue-triggered executor is registered yet"
        else:
            result["approve_to_applied"] = _approve_to_applied(env, executor, opened, nodes, warm_up=warm_up)
        return {**result, **env.summary()}


def _seed_cluster(env: AppEnvironment, names: list[str]) -> None:
    from kube_api import NODES, node

    for name in names:
        env.kube.emulator.put(NODES, node(name))


def _warm_up(env: AppEnvironment) -> tuple[str, str]:
    """One alert first (not counted): it builds the engine, the clients and the Table connections.
    Its incident and node warm the second half up the same way."""
    node = "aks-spare-vmss000000"
    incident_id, _, _ = _alert_to_post(env, -1, node)
    return incident_id, node


def _alert_to_post(env: AppEnvironment, index: int, node: str) -> tuple[str, float, float]:
    body = json.dumps(mining_alert(alert_id=f"bench-e2e-{index}", node=node)).encode()
    forget_requests(env.kube)
    before = env.slack.count()
    started = time.perf_counter()
    response = env.post_alerts(body)
    returned = time.perf_counter()
    if response.status_code != 200:
        raise RuntimeError(f"defender_alerts_http answered {response.status_code}: {response.get_body()[:300]!r}")
    arrived = env.slack.wait_for(before, incident_of)  # through the Slack outbox, as in Azure
    posts = [(at, incident) for at, call in arrived if (incident := incident_of(call))]
    if len(posts) != 1:
        raise RuntimeError(f"alert {index} led to {len(posts)} incident messages, not one")
    [(posted, incident_id)] = posts
    return incident_id, (posted - started) * 1000, (returned - started) * 1000


def _executor_function() -> str | None:
    """The registered function with a queue trigger on the actions queue, if there is one yet."""
    import host

    for name in host.registered():
        for binding in host.bindings(name):
            if binding.get("type") == "queueTrigger" and binding.get("queueName") in (
                QUEUE,
                "%REMEDIATION_ACTIONS_QUEUE%",
            ):
                return name
    return None


def _approve_to_applied(
    env: AppEnvironment, executor: str, incidents: list[str], nodes: list[str], *, warm_up: tuple[str, str]
) -> dict[str, Any]:
    """Each incident approved and executed in turn; the warm-up incident first and not counted (it
    builds the executor, the Kubernetes client and the snapshot container)."""
    from azure.storage.queue import QueueClient

    timings: list[tuple[float, float, float]] = []
    problems: list[str] = []
    with QueueClient.from_connection_string(env.azurite.connection_string, QUEUE) as queue:
        _approve_and_execute(env, executor, queue, *warm_up)
        for incident_id, node in zip(incidents, nodes, strict=True):
            measured, wrong = _approve_and_execute(env, executor, queue, incident_id, node)
            problems += wrong
            if measured is not None:
                timings.append(measured)
    if not timings:
        return {"measured": 0, "problems": problems[:5]}
    totals, clicks, executions = ([timing[i] for timing in timings] for i in range(3))
    return {
        "measured": len(timings),
        "p50_ms": round(statistics.median(totals), 1),
        "p99_ms": round(percentile(totals, 0.99), 1),
        "click_p50_ms": round(statistics.median(clicks), 1),
        "executor_p50_ms": round(statistics.median(executions), 1),
        "problems": len(problems),
        "first_problems": problems[:5],
    }


def _approve_and_execute(
    env: AppEnvironment, executor: str, queue: Any, incident_id: str, node: str
) -> tuple[tuple[float, float, float] | None, list[str]]:
    """(total, click, executor) milliseconds, and what went wrong; the node is uncordoned after."""
    forget_requests(env.kube)
    started = time.perf_counter()
    response = env.call("slack_events", env.click_request("incident.approve", incident_id, user="U000SECOPS1"))
    clicked = time.perf_counter()
    message = queue.receive_message(visibility_timeout=60)
    if response.status_code != 200 or message is None:
        return None, [f"{incident_id}: click answered {response.status_code}, work message {message is not None}"]
    executing = time.perf_counter()
    env.call(executor, _queue_message(message))
    done = time.perf_counter()
    queue.delete_message(message)  # what the host does after a successful invocation
    problems = _check_applied(env, incident_id, node)
    _uncordon(env, node)  # outside the timing: one node cordoned at a time, so no guard refuses
    return ((done - started) * 1000, (clicked - started) * 1000, (done - executing) * 1000), problems


def _queue_message(message: Any) -> Any:
    """The binding object the Python worker builds for a queue trigger (the body base64-decoded)."""
    from azure.functions.queue import QueueMessage

    return QueueMessage(
        id=message.id,
        body=base64.b64decode(message.content),
        dequeue_count=message.dequeue_count,
        pop_receipt=message.pop_receipt,
        insertion_time=message.inserted_on,
        expiration_time=message.expires_on,
        time_next_visible=message.next_visible_on,
    )


def _check_applied(env: AppEnvironment, incident_id: str, node: str) -> list[str]:
    from functions import wiring
    from kube_api import NODES

    live = env.kube.emulator.get(NODES, None, node) or {}
    incident = wiring.engine().incidents.get(incident_id)
    state = incident.state.value if incident is not None else "missing"
    problems = [] if (live.get("spec") or {}).get("unschedulable") else [f"{node} not cordoned"]
    return problems + ([] if state == "succeeded" else [f"{incident_id} is {state}"])


def _uncordon(env: AppEnvironment, node: str) -> None:
    from kube_api import NODES

    live = env.kube.emulator.get(NODES, None, node)
    if live is not None:
        env.kube.emulator.put(NODES, {**live, "spec": {}})


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """No budget is set for either half: the verdict column only says whether the checks held."""
    first = (
        "end to end: alert -> post",
        f"p50 {result['alert_to_post_p50_ms']} ms, p99 {result['alert_to_post_p99_ms']} ms",
        f"none ({result['incidents']} incidents)",
        "-" if result["incidents_posted"] == result["incidents"] else "CHECK FAILED",
    )
    second = result["approve_to_applied"]
    if isinstance(second, str):
        return [first, ("end to end: approve -> applied", "NOT MEASURED YET (no executor registered)", "", "")]
    if not second.get("measured"):
        return [first, ("end to end: approve -> applied", "FAILED: " + "; ".join(second["problems"]), "", "")]
    return [
        first,
        (
            "end to end: approve -> applied",
            f"p50 {second['p50_ms']} ms, p99 {second['p99_ms']} ms",
            "none (excl. queue polling)",
            "-" if not second["problems"] else f"CHECK FAILED ({second['problems']})",
        ),
        ("  of which click / executor", f"p50 {second['click_p50_ms']} / {second['executor_p50_ms']} ms", "", ""),
    ]
