"""The Function App: composes one blueprint per module of `functions/` and nothing else.

As the worker loads it, the composition starts building in the background when the settings ask
for it (`functions.wiring.warm_up`: under the Functions host), so the first event does not wait.
"""

import azure.functions as func

from functions import (
    approval_timeouts,
    defender_alerts,
    executor,
    registry_events,
    registry_findings,
    slack_events,
    slack_outbox,
    wiring,
)

app = func.FunctionApp()
app.register_functions(registry_events.bp)
app.register_functions(defender_alerts.bp)
app.register_functions(approval_timeouts.bp)
app.register_functions(slack_events.bp)
app.register_functions(registry_findings.bp)
app.register_functions(executor.bp)
app.register_functions(slack_outbox.bp)
wiring.warm_up()
