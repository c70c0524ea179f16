"""Cold start, whole process: a fresh interpreter's first event against `python -c "import azure.functions"`.

Each run starts fresh interpreters, alternated so a change in the machine's load hits all alike:

- the baseline: `python -c "import azure.functions"`, timed from spawning the process to the
  import's end;
- `import function_app` alone (what the worker does at load), with the import timed in-process
  against the baseline's own import: the import budget;
- the first event, timed from spawning the process to the registered function returning: the
  interpreter starts with the app's settings as the Functions host sets them (which starts the
  warm-up), imports function_app, and at once calls (a) `registry_events` with an allowed push that
  matches no playbook, (b) `registry_events` with `latest` pushed to a prod repository (playbook
  registry-quarantine-latest-in-prod: its preview reads the tag on the ACR TLS server through a
  managed identity token) and (c) `defender_alerts_http` with a node-compromise alert (playbook
  node-cordon: its preview reads the node on kmock);
- (d) the same alert once the warm-up is done, as an event arriving a while after the load finds
  the app: the figure is the call alone, beside (c)'s call.

Peak RSS is the child's VmHWM when the function returned. The servers (Azurite, the local Slack
API, kmock, the ACR/ARM/Resource Graph TLS server, an App Service managed identity endpoint) run in
this process; a child imports nothing but what its code says, so nothing this process loaded
helps it. One round before the measured ones creates the tables and queues, as an app finds them
after its first deployment.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.environment import CLUSTER_ID, ROOT, mining_alert
from functions.wiring import WARM_UP_THREAD

RUNS = 7
BUDGET_RATIO = 1.5  # import function_app against import azure.functions
FIRST_ALERT_BUDGET = 3.0  # the first Defender alert, whole process, against the baseline process
SPARE_NODES = 10  # schedulable nodes beyond the alerts' own, so the blast-radius guard allows a cordon
# name -> (event kind, when it is called: at once after the load, or once the warm-up is done)
SCENARIOS = {
    "acr_allowed": ("acr", "at-once"),
    "acr_locked": ("acr", "at-once"),
    "defender": ("defender", "at-once"),
    "defender_after_warm_up": ("defender", "after-warm-up"),
}
LABELS = {
    "acr_allowed": "cold first ACR push, no playbook",
    "acr_locked": "cold first ACR push, quarantine",
    "defender": "cold first Defender alert",
    "defender_after_warm_up": "first Defender alert, after warm-up",
}
_APP_PREFIXES = ("AzureWebJobs", "REMEDIATION_", "SLACK_", "AZURE_", "IDENTITY_", "MSI_", "FUNCTIONS_")

# Peak RSS from VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would report the benchmark
# process's own size (inherited through fork) whenever that is the larger.
_PEAK = "next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM'))"
# The stamps are CLOCK_MONOTONIC, which every process shares; os._exit leaves out the teardown (and
# does not wait on a warm-up that is still running).
_IMPORT = (
    "import time; t = time.perf_counter(); import {module}; wall = time.perf_counter() - t; "
    f"done = time.monotonic(); print(done, wall, {_PEAK}, flush=True); import os; os._exit(0)"
)
# The first event: the worker's load (import, then indexing through get_functions), then the
# invocation with binding objects built by the worker's own converters. With "after-warm-up" the
# child first waits for the warm-up thread, as an event arriving a while after the load would.
_FIRST_EVENT = f"""
import time, sys, json, logging, os, threading
logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
import function_app
from azure.functions import HttpRequest, meta
from azure.functions.eventgrid import EventGridEventInConverter
functions = {{f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}}
kind, body, when = sys.argv[1:4]
if when == "after-warm-up":
    for thread in threading.enumerate():
        if thread.name == "{WARM_UP_THREAD}":
            thread.join()
started = time.perf_counter()
if kind == "defender":
    request = HttpRequest("POST", "http://localhost:7071/api/defender/alerts",
                          headers={{"Content-Type": "application/json"}}, body=body.encode())
    response = functions["defender_alerts_http"](request)
    answer = json.loads(response.get_body())
else:
    event = EventGridEventInConverter.decode(meta.Datum(body, "json"), trigger_metadata={{}})
    answer = functions["registry_events"](event)
call = time.perf_counter() - started
print(time.monotonic(), call, {_PEAK}, json.dumps(answer), flush=True)
os._exit(0)  # a warm-up still running is no part of the figure
"""


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds from spawning the interpreter to the code's end
    inner: float  # seconds of the import (import rows) or of the function call (event rows), in-process
    rss_mib: float
    answer: Any = None


def _child(code: str, env: dict[str, str], *args: str) -> Sample:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    stamp, inner, rss, *rest = done.stdout.split(maxsplit=3)
    return Sample(float(stamp) - started, float(inner), int(rss) / 1024, json.loads(rest[0]) if rest else None)


def run() -> dict[str, Any]:
    with servers() as world:
        bare = world.child_env(hosted=False)
        for scenario in SCENARIOS:  # creates the tables and queues; not measured
            _first_event(world, scenario, "warm")
        samples: dict[str, list[Sample]] = {"baseline": [], "import": [], **{name: [] for name in SCENARIOS}}
        for index in range(RUNS):
            samples["baseline"].append(_child(_IMPORT.format(module="azure.functions"), bare))
            samples["import"].append(_child(_IMPORT.format(module="function_app"), world.child_env(hosted=True)))
            for scenario in SCENARIOS:
                samples[scenario].append(_first_event(world, scenario, f"{index}"))
        problems = world.check(samples)
    return _summary(samples, problems)


def _first_event(world: Servers, scenario: str, run: str) -> Sample:
    kind, when = SCENARIOS[scenario]
    if kind == "defender":
        node = f"aks-cold-{when}-{run}"  # a DNS name: a node name with "_" would not be acted on
        world.add_node(node)
        body = json.dumps(mining_alert(alert_id=f"cold-{scenario}-{run}-{time.time_ns()}", node=node))
    else:
        repository, tag = ("prod/api", f"v-{run}") if scenario == "acr_allowed" else (f"prod/cold-{run}", "latest")
        body = json.dumps(world.push(repository, tag, event_id=f"cold-{scenario}-{run}-{time.time_ns()}"))
    return _child(_FIRST_EVENT, world.child_env(hosted=True), kind, body, when)


def _summary(samples: dict[str, list[Sample]], problems: list[str]) -> dict[str, Any]:
    def ms(name: str, field: str) -> float:
        return statistics.median(getattr(sample, field) for sample in samples[name]) * 1000

    base_ms, base_import = ms("baseline", "wall"), ms("baseline", "inner")
    result: dict[str, Any] = {
        "runs": RUNS,
        "baseline_process_ms": round(base_ms, 1),
        "baseline_import_ms": round(base_import, 1),
        "function_app_import_ms": round(ms("import", "inner"), 1),
        "import_ratio": round(ms("import", "inner") / base_import, 2),
        "baseline_rss_mib": round(ms("baseline", "rss_mib") / 1000, 1),
        "function_app_rss_mib": round(ms("import", "rss_mib") / 1000, 1),
        "budget_ratio": BUDGET_RATIO,
        "first_alert_budget": FIRST_ALERT_BUDGET,
        "problems": problems,
    }
    for scenario in SCENARIOS:
        result[f"{scenario}_ms"] = round(ms(scenario, "wall"), 1)
        result[f"{scenario}_call_ms"] = round(ms(scenario, "inner"), 1)
        result[f"{scenario}_ratio"] = round(ms(scenario, "wall") / base_ms, 2)
        result[f"{scenario}_rss_mib"] = round(ms(scenario, "rss_mib") / 1000, 1)
    return result


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    import_figure = (
        f"{result['function_app_import_ms']} ms vs {result['baseline_import_ms']} ms ({result['import_ratio']}x)"
    )
    rss = f"{result['function_app_rss_mib']} vs {result['baseline_rss_mib']} MiB"
    table = [
        ("cold start import (median)", import_figure, f"<= {BUDGET_RATIO}x baseline",
         "ok" if result["import_ratio"] <= BUDGET_RATIO else "OVER"),
        ("cold start import peak RSS", rss, "", ""),
    ]  # fmt: skip
    for scenario, label in LABELS.items():
        if SCENARIOS[scenario][1] == "after-warm-up":
            figure = f"call {result[f'{scenario}_call_ms']} ms (at once: {result['defender_call_ms']} ms)"
            table.append((label, figure, "", ""))
            continue
        figure = (
            f"{result[f'{scenario}_ms']} ms vs {result['baseline_process_ms']} ms ({result[f'{scenario}_ratio']}x); "
            f"call {result[f'{scenario}_call_ms']} ms; {result[f'{scenario}_rss_mib']} MiB"
        )
        budget = f"<= {FIRST_ALERT_BUDGET}x baseline process" if scenario == "defender" else ""
        verdict = ("ok" if result["defender_ratio"] <= FIRST_ALERT_BUDGET else "OVER") if budget else ""
        table.append((label, figure, budget, verdict))
    if result["problems"]:
        table.append(("cold start problems", "; ".join(result["problems"])[:200], "none", "WRONG"))
    return table


class Servers:
    """What the children talk to, and the settings that point them at it."""

    def __init__(self, *, env: dict[str, str], kube: Any, acr: Any, slack: Any) -> None:
        self.env, self.kube, self.acr, self.slack = env, kube, acr, slack

    def child_env(self, *, hosted: bool) -> dict[str, str]:
        """This process's environment without its app settings; with the app's settings and the
        variables the Functions host sets for its Python worker when `hosted`."""
        base = {name: value for name, value in os.environ.items() if not name.startswith(_APP_PREFIXES)}
        if not hosted:
            return base
        return {**base, **self.env, "FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsScriptRoot": str(ROOT)}

    def add_node(self, name: str) -> None:
        from kube_api import NODES, node

        self.kube.emulator.put(NODES, node(name))

    def push(self, repository: str, tag: str, *, event_id: str) -> dict[str, Any]:
        """An ImagePushed event of `repository:tag`, the image pushed to the registry server first."""
        from acr_server import LOGIN_SERVER, REGISTRY_ID

        digest = "sha256:" + hashlib.sha256(event_id.encode()).hexdigest()
        self.acr.push(repository, tag, digest)
        target = {"digest": digest, "repository": repository, "tag": tag, "size": 3023,
                  "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}  # fmt: skip
        return {
            "id": event_id, "topic": REGISTRY_ID, "subject": f"{repository}:{tag}",
            "eventType": "Microsoft.ContainerRegistry.ImagePushed", "eventTime": "2024-11-21T10:00:00Z",
            "data": {"id": f"data-{event_id}", "timestamp": "2024-11-21T10:00:00Z", "action": "push",
                     "target": target, "request": {"id": "r", "host": LOGIN_SERVER, "method": "PUT"}},
            "dataVersion": "2.0", "metadataVersion": "1",
        }  # fmt: skip

    def check(self, samples: dict[str, list[Sample]]) -> list[str]:
        """What went wrong in the measured runs: an alert not accepted, an incident not opened."""
        from remediation.compose import compose
        from remediation.settings import Settings

        alerts = [s for name, (kind, _) in SCENARIOS.items() if kind == "defender" for s in samples[name]]
        problems = [f"defender answered {s.answer}" for s in alerts if (s.answer or {}).get("accepted") != 1]
        components = compose(Settings.from_env(self.env))
        try:
            opened = [incident.playbook for incident in components.incidents().live()]
        finally:
            components.close()
        runs = RUNS + 1  # the unmeasured round too
        expected = {"node-cordon": 2 * runs, "registry-quarantine-latest-in-prod": runs}
        for playbook, count in expected.items():
            if opened.count(playbook) != count:
                problems.append(f"{opened.count(playbook)} {playbook} incidents opened, {count} expected")
        if len(opened) != sum(expected.values()):
            problems.append(f"{len(opened)} incidents opened, {sum(expected.values())} expected")
        return problems


@contextmanager
def servers() -> Iterator[Servers]:
    """Azurite, the local Slack API, kmock, the ACR/ARM TLS server and a managed identity endpoint."""
    import slack_server
    from acr_server import LOGIN_SERVER, REGISTRY_ID, AcrServer
    from azurite import Azurite
    from kube_api import KubeServer, write_kubeconfig

    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cold-")))
        azurite = stack.enter_context(Azurite())
        acr = stack.enter_context(AcrServer(scratch))
        slack = slack_server.SlackServer()
        slack.url = _serve(stack, slack_server._handler(slack))
        identity = _serve(stack, _IdentityHandler)
        kube = KubeServer()
        kube.start()
        stack.callback(kube.stop)
        kubeconfig = write_kubeconfig(scratch / "kubeconfig", server=kube.url)
        env = {
            "AzureWebJobsStorage": azurite.connection_string,
            "REMEDIATION_KUBECONFIGS": json.dumps({CLUSTER_ID: kubeconfig}),
            "REMEDIATION_CLUSTERS": CLUSTER_ID,
            "REMEDIATION_REGISTRIES": json.dumps({LOGIN_SERVER: REGISTRY_ID}),
            "AZURE_RESOURCE_MANAGER_ENDPOINT": acr.url,
            "REMEDIATION_ACR_DATA_ENDPOINT": acr.url,
            "REQUESTS_CA_BUNDLE": str(acr.ca_path),
            "IDENTITY_ENDPOINT": f"{identity}/msi/token",
            "IDENTITY_HEADER": "bench-identity-header",
            "SLACK_BOT_TOKEN": slack_server.BOT_TOKEN,
            "SLACK_SIGNING_SECRET": slack_server.SIGNING_SECRET,
            "SLACK_API_BASE_URL": slack.url + "/api/",
            "SLACK_DEFAULT_CHANNEL": slack_server.DEFAULT_CHANNEL,
        }  # fmt: skip
        world = Servers(env=env, kube=kube, acr=acr, slack=slack)
        for index in range(SPARE_NODES):
            world.add_node(f"aks-spare-{index:03d}")
        yield world


def _serve(stack: ExitStack, handler: Any) -> str:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    stack.callback(httpd.server_close)
    stack.callback(httpd.shutdown)
    return f"http://127.0.0.1:{httpd.server_address[1]}"


class _IdentityHandler(BaseHTTPRequestHandler):
    """An App Service managed identity endpoint: any resource, one token an hour long."""

    def do_GET(self) -> None:
        body = json.dumps({"access_token": "bench-token", "expires_on": str(int(time.time()) + 3600),
                           "token_type": "Bearer"}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass
