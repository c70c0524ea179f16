"""What a Kubernetes API error means: the runtime failure it stands for, with the server's own words.

Neighbours: `session.ClusterSession.call` retries each SDK call with `remediation.retry.RetryPolicy`,
classifying errors with `translate`; the action
modules (`nodes`, `rbac`, `pods`, `workloads`) catch `NotFound` and `Conflict` where those have a
meaning of their own (already deleted, re-read and try again). Everything else surfaces as the
runtime's `TransientFailure` (429, 5xx, connection errors, once the bounds are spent) or
`PermanentFailure` (other 4xx, with the API server's own message).
"""

from __future__ import annotations

import json
from typing import Any

from remediation.actions.runtime import PermanentFailure, TransientFailure


class NotFound(PermanentFailure):
    """The API answered 404 for the object (or its namespace)."""


class Conflict(PermanentFailure):
    """The API answered 409: a stale resourceVersion, or an object that already exists."""


class ApiTransient(TransientFailure):
    def __init__(self, message: str, *, delay: float | None = None, status: int | None = None) -> None:
        super().__init__(message, delay=delay)
        self.status = status


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
