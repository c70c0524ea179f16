"""Timer trigger, every minute: approval timeouts per playbook (expire, escalate once, break-glass).

Also appends audit records that a crashed writer left pending, so the audit chain catches up.
"""

from __future__ import annotations

import azure.functions as func

from functions import wiring

bp = func.Blueprint()


@bp.function_name("approval_timeouts")
@bp.timer_trigger(arg_name="timer", schedule="0 * * * * *", run_on_startup=False, use_monitor=True)
def approval_timeouts(timer: func.TimerRequest) -> None:
    wiring.engine().on_timer()
