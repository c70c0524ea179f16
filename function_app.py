"""The Function App: composes one blueprint per module of `functions/` and nothing else."""

import azure.functions as func

from functions import (
    approval_timeouts,
    defender_alerts,
    executor,
    registry_events,
    registry_findings,
    slack_events,
    slack_outbox,
)

app = func.FunctionApp()
app.register_functions(registry_events.bp)
app.register_functions(defender_alerts.bp)
app.register_functions(approval_timeouts.bp)
app.register_functions(slack_events.bp)
app.register_functions(registry_findings.bp)
app.register_functions(executor.bp)
app.register_functions(slack_outbox.bp)
