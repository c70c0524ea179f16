"""Every Azure SDK call of the registry family goes through `call`: bounded retries, clear failures.

Neighbours: `clients` builds the SDK clients with their own retries switched off (`retry_total=0`),
so this module is the one place that retries: tenacity on HTTP 429 (honouring Retry-After), 5xx and
connection errors, bounded in attempts and in time, with an injectable `sleep` so tests never wait.
What is still transient after the last attempt becomes `TransientFailure(delay=...)` for the
executor; anything else (404 ImageNotFound, 403, bad input) fails at once as `PermanentFailure`
carrying the service's own message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_exponential_jitter

from remediation.actions.runtime import PermanentFailure, TransientFailure

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    deadline_seconds: float = 60.0  # no new attempt starts after this
    max_wait_seconds: float = 30.0  # a longer Retry-After is left to the executor's own retry
    sleep: Callable[[float], None] = time.sleep


def status_of(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(error: BaseException) -> bool:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return True
    status = status_of(error)
    return isinstance(error, HttpResponseError) and status is not None and (status in (408, 429) or status >= 500)


def retry_after(error: BaseException) -> float | None:
    """Seconds from the response's Retry-After (or retry-after-ms) header, when it has one."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue  # an HTTP date: fall back to backoff
    return None


def service_message(error: BaseException) -> str:
    """The service's own words: ACR's `errors[0].message`, ARM's `error.message`, else the SDK's text."""
    response = getattr(error, "response", None)
    try:
        body: Any = response.json() if response is not None else None
    except Exception:  # not JSON: the SDK's message is all there is
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return f"{errors[0].get('code', '')}: {errors[0].get('message', '')}".strip(": ")
        inner = body.get("error")
        if isinstance(inner, dict):
            return f"{inner.get('code', '')}: {inner.get('message', '')}".strip(": ")
    return str(getattr(error, "message", None) or error).splitlines()[0]


def call(fn: Callable[[], T], *, what: str, policy: RetryPolicy) -> T:
    """`fn()` with bounded retries of transient errors; failures become Transient/PermanentFailure."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        delay = retry_after(error) if error else None
        if delay is None:
            delay = wait_exponential_jitter(multiplier=0.5, max=policy.max_wait_seconds)(state)
        logger.info("retrying %s in %.1fs", what, delay, extra={"call": what, "delay": delay})
        return min(delay, policy.max_wait_seconds)

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.deadline_seconds),
        wait=wait,
        retry=retry_if_exception(is_transient),
        sleep=policy.sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except Exception as error:
        raise _failure(error, what) from error


def _failure(error: Exception, what: str) -> Exception:
    from azure.core.exceptions import AzureError

    if isinstance(error, PermanentFailure | TransientFailure):
        return error
    if not isinstance(error, AzureError):
        return PermanentFailure(f"{what} failed: {error}")
    message = f"{what} failed: {service_message(error)}"
    if is_transient(error):
        return TransientFailure(message, delay=retry_after(error))
    return PermanentFailure(message)
