"""Alert storm: 2,000 alerts of one incident in a burst through `defender_alerts_http`.

20 bodies of 100 alerts (each alert its own id, all on one node: one group key), sent by 4 threads
at once as concurrent invocations of a worker would run them. Budgets: one incident, one
chat.postMessage, then at most one chat.update per second (the notifier's fold throttle). Reported:
the time until every body was answered (all alerts absorbed), the Slack calls by method, the
shortest gap between two updates, and the occurrence count the message shows at the end.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.environment import AppEnvironment, app_environment, mining_alert

BODIES = 20
PER_BODY = 100
SENDERS = 4
NODE = "aks-storm-vmss000000"
_OCCURRENCES = re.compile(r"(\d+) occurrences")


def run() -> dict[str, Any]:
    with app_environment() as env:
        from kube_api import NODES, node

        for name in (NODE, "aks-storm-vmss000001", "aks-storm-vmss000002", "aks-storm-vmss000003"):
            env.kube.emulator.put(NODES, node(name))
        _warm_up(env)
        bodies = [_body(b) for b in range(BODIES)]
        before = env.slack.count()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="storm") as pool:
            answers = list(pool.map(lambda body: _send(env, body), bodies))
        elapsed = time.perf_counter() - started
        env.settle()  # the Slack outbox catches up with the storm
        calls = env.slack.since(before)
        return {
            "alerts": BODIES * PER_BODY,
            "bodies": BODIES,
            "senders": SENDERS,
            "absorbed_s": round(elapsed, 2),
            "alerts_per_s": round(BODIES * PER_BODY / elapsed),
            "accepted": sum(answer.get("accepted", 0) for answer in answers),
            "statuses": sorted({answer["status"] for answer in answers}),
            "incidents_opened": _incidents_opened(),
            "slack_calls": _by_method(calls),
            "posts": sum(
                1 for _, call in calls if call.method == "chat.postMessage" and not call.args.get("thread_ts")
            ),
            "updates": sum(1 for _, call in calls if call.method == "chat.update"),
            "min_update_gap_s": _min_gap([at for at, call in calls if call.method == "chat.update"]),
            "last_shown_occurrences": _last_shown(calls),
            **env.summary(),
        }


def _warm_up(env: AppEnvironment) -> None:
    """One alert on another node first (its own incident, not counted): builds the engine and clients."""
    env.post_alerts(json.dumps(mining_alert(alert_id="bench-storm-warm-up", node="aks-storm-vmss000003")).encode())


def _body(batch: int) -> bytes:
    alerts = [mining_alert(alert_id=f"bench-storm-{batch}-{i}", node=NODE) for i in range(PER_BODY)]
    return json.dumps(alerts).encode()


def _send(env: AppEnvironment, body: bytes) -> dict[str, Any]:
    response = env.post_alerts(body)
    document: dict[str, Any] = json.loads(response.get_body()) if response.status_code in (200, 400) else {}
    return {**document, "status": response.status_code}


def _incidents_opened() -> int:
    from functions import wiring

    return sum(1 for incident in wiring.engine().incidents.list() if NODE in json.dumps(incident.signal))


def _by_method(calls: list[tuple[float, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, call in calls:
        counts[call.method] = counts.get(call.method, 0) + 1
    return counts


def _min_gap(stamps: list[float]) -> float | None:
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    return round(min(gaps), 3) if gaps else None


def _last_shown(calls: list[tuple[float, Any]]) -> int | None:
    for _, call in reversed(calls):
        if call.method in ("chat.update", "chat.postMessage") and not call.args.get("thread_ts"):
            found = _OCCURRENCES.findall(json.dumps(call.args.get("blocks")))
            return int(found[0]) if found else 1
    return None


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    allowed_updates = int(result["absorbed_s"]) + 1
    ok = (
        result["incidents_opened"] == 1
        and result["posts"] == 1
        and result["updates"] <= allowed_updates
        and result["accepted"] == result["alerts"]
    )
    gap = result["min_update_gap_s"]
    return [
        (
            "alert storm (2,000)",
            f"{result['incidents_opened']} incident, {result['posts']} post, {result['updates']} updates",
            f"1, 1, <= {allowed_updates} (1/s)",
            "ok" if ok else "OVER",
        ),
        (
            "  absorbed in",
            f"{result['absorbed_s']} s ({result['alerts_per_s']:,} alerts/s, {result['senders']} senders)",
            "",
            "",
        ),
        (
            "  message at the end",
            f"shows {result['last_shown_occurrences']} of {result['alerts']}; min update gap {gap} s",
            "",
            "",
        ),
    ]
