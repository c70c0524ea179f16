"""Every Azure SDK call of the registry family goes through `call`: bounded retries, clear failures.

Neighbours: `clients` builds the SDK clients with their own retries switched off (`retry_total=0`),
so this module is the one place that retries, with `remediation.retry.RetryPolicy`: HTTP 429
(honouring Retry-After), 5xx and connection errors, bounded in attempts and in time.
What is still transient after the last attempt becomes `TransientFailure(delay=...)` for the
executor; anything else (404 ImageNotFound, 403, bad input) fails at once as `PermanentFailure`
carrying the service's own message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from remediation.actions.runtime import PermanentFailure, TransientFailure
from remediation.retry import RetryPolicy

T = TypeVar("T")


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
    return policy.call(fn, what=what, classify=lambda error: _failure(error, what))


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
