"""Bounded retries around every Kubernetes API call, and the translation of its errors.

Neighbours: `session.ClusterSession.call` wraps each SDK call with `RetryPolicy.call`; the action
modules (`nodes`, `rbac`, `pods`, `workloads`) catch `NotFound` and `Conflict` where those have a
meaning of their own (already deleted, re-read and try again). Everything else surfaces as the
runtime's `TransientFailure` (429, 5xx, connection errors, once the bounds are spent) or
`PermanentFailure` (other 4xx, with the API server's own message).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

from remediation.actions.runtime import PermanentFailure, TransientFailure

logger = logging.getLogger(__name__)
T = TypeVar("T")


class NotFound(PermanentFailure):
    """The API answered 404 for the object (or its namespace)."""


class Conflict(PermanentFailure):
    """The API answered 409: a stale resourceVersion, or an object that already exists."""


class ApiTransient(TransientFailure):
    def __init__(self, message: str, *, delay: float | None = None, status: int | None = None) -> None:
        super().__init__(message, delay=delay)
        self.status = status


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring Retry-After; bounded in attempts and in time.

    `sleep` and `clock` are injectable so tests run the backoff instantly and can see each delay.
    """

    attempts: int = 5
    max_seconds: float = 60.0
    initial_delay: float = 0.5
    max_delay: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = field(default=time.monotonic)

    def call(self, fn: Callable[[], T], *, what: str, retry_throttled: bool = True) -> T:
        """`fn()` with retries on transient errors; `what` names the call in every message."""
        started = self.clock()

        def translated() -> T:
            try:
                return fn()
            except Exception as exc:
                raise translate(exc, what=what) from exc

        def should_stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.attempts:
                return True
            return self.clock() - started + self._delay(state) > self.max_seconds

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, TransientFailure) and (retry_throttled or getattr(exc, "status", None) != 429)

        retrying = Retrying(
            retry=retry_if_exception(retryable),
            stop=should_stop,
            wait=self._delay,
            sleep=self.sleep,
            reraise=True,
            before_sleep=lambda state: logger.warning(
                "kubernetes call failed, retrying: %s",
                what,
                extra={"call": what, "attempt": state.attempt_number, "error": str(_error(state))},
            ),
        )
        return retrying(translated)

    def _delay(self, state: RetryCallState) -> float:
        error = _error(state)
        if isinstance(error, TransientFailure) and error.delay is not None:
            return error.delay
        backoff: float = min(self.max_delay, self.initial_delay * 2 ** (state.attempt_number - 1))
        return backoff * random.uniform(0.5, 1.0)  # jitter, not cryptography


def _error(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None


def translate(exc: Exception, *, what: str) -> Exception:
    """The runtime failure an SDK exception stands for; unknown exceptions pass through unchanged."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        message = f"{what}: {status} {api_message(exc)}"
        if status == 429 or status >= 500 or status == 0:
            return ApiTransient(message, delay=_retry_after(exc), status=status)
        if status == 404:
            return NotFound(message)
        if status == 409:
            return Conflict(message)
        return PermanentFailure(message)
    if isinstance(exc, HTTPError | ConnectionError | TimeoutError):
        return ApiTransient(f"{what}: cannot reach the API server ({type(exc).__name__}: {exc})")
    return exc


def api_message(exc: Any) -> str:
    """The API server's own reason and message from a Status body, else the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        return str(exc.reason or "")
    if not isinstance(body, dict):
        return str(exc.reason or "")
    return f"{body.get('reason') or exc.reason}: {body.get('message') or ''}".rstrip(": ")


def _retry_after(exc: Any) -> float | None:
    headers = exc.headers or {}
    raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None
