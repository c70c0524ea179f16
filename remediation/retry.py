"""Bounded retries for every call to an outside service: one policy, used by each SDK call site.

Neighbours: the Kubernetes session (`remediation.actions.kubernetes.session`), the container
registry calls (`remediation.actions.container_registry.calls`) and the Resource Graph findings
(`remediation.push_policy.findings`) wrap their SDK calls with `RetryPolicy.call`, passing a
`classify` that turns an SDK exception into the runtime's `TransientFailure` (429, 5xx, connection
errors; with the server's Retry-After as `delay`) or `PermanentFailure`. Only transient failures are
retried: exponential backoff with jitter, or the server's own delay, bounded in attempts and in time.
`sleep` and `clock` are injectable, so tests run every backoff instantly and can read each delay.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

from remediation.failures import TransientFailure

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _unchanged(error: Exception) -> Exception:
    return error


def _transient(error: BaseException) -> bool:
    return isinstance(error, TransientFailure)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring Retry-After; bounded in attempts and in time.

    No new attempt starts when its wait would end past `max_seconds` from the first attempt.
    `max_retry_after` caps a server's requested delay (None: honoured as asked, within `max_seconds`).
    """

    attempts: int = 4
    max_seconds: float = 60.0
    initial_delay: float = 0.5
    max_delay: float = 10.0  # the longest computed backoff
    max_retry_after: float | None = 30.0  # a longer wait is left to the executor's own retry
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = field(default=time.monotonic)

    def call(
        self,
        fn: Callable[[], T],
        *,
        what: str,
        classify: Callable[[Exception], Exception] = _unchanged,
        retryable: Callable[[BaseException], bool] = _transient,
    ) -> T:
        """`fn()` with retries of what `classify` makes a retryable failure; `what` names the call."""
        started = self.clock()

        def classified() -> T:
            try:
                return fn()
            except Exception as exc:
                failure = classify(exc)
                if failure is exc:
                    raise
                raise failure from exc

        def should_stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.attempts:
                return True
            return self.clock() - started + self._delay(state) > self.max_seconds

        retrying = Retrying(
            retry=retry_if_exception(retryable),
            stop=should_stop,
            wait=self._delay,
            sleep=self.sleep,
            reraise=True,
            before_sleep=lambda state: logger.warning(
                "call failed, retrying: %s",
                what,
                extra={"call": what, "attempt": state.attempt_number, "error": str(_error(state))},
            ),
        )
        return retrying(classified)

    def _delay(self, state: RetryCallState) -> float:
        error = _error(state)
        if isinstance(error, TransientFailure) and error.delay is not None:
            cap = self.max_retry_after
            return error.delay if cap is None else min(error.delay, cap)
        backoff: float = min(self.max_delay, self.initial_delay * 2 ** (state.attempt_number - 1))
        return backoff * random.uniform(0.5, 1.0)  # jitter, not cryptography


def _error(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None
