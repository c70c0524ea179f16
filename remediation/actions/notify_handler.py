"""The `notify` action: a message for the incident's channel, delivered by the executor's notifier.

It changes nothing anywhere, so preview and undo are trivial; the executor reports its message
through `Notifier.step_progress`, which the Slack notifier posts in the incident's thread.
"""

from __future__ import annotations

from pydantic import BaseModel

from remediation.actions.notify import NotifyParams
from remediation.actions.runtime import Outcome, PermanentFailure, Preview, StepContext, StepResult


def _message(params: BaseModel) -> str:
    if not isinstance(params, NotifyParams):
        raise PermanentFailure(f"notify got {type(params).__name__} parameters")
    return params.message


class NotifyActions:
    def preview(self, action: str, params: BaseModel, ctx: StepContext) -> Preview:
        return Preview(action=action, summary=f"post: {_message(params)}")

    def apply(self, action: str, params: BaseModel, ctx: StepContext) -> StepResult:
        return StepResult(action=action, outcome=Outcome.APPLIED, message=_message(params))

    def undo(self, action: str, params: BaseModel, result: StepResult, ctx: StepContext) -> StepResult:
        return StepResult(action=action, outcome=Outcome.NOOP, message="a message cannot be unsent: nothing to undo")
