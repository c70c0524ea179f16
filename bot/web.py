"""The Slack Web API client: bounded timeout, retries on connection errors and on 429 Retry-After.

Built once per worker by `functions/wiring.py` and shared by the notifier, the directory and the
Bolt app. A 429 is retried once when Slack asks for a short wait only: the notifier also runs inside
a click, which Slack wants answered within 3 seconds, and a missed update is redone by the next one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slack_sdk import WebClient

TIMEOUT_SECONDS = 5
MAX_RETRY_AFTER_SECONDS = 2


def make_client(*, token: str, base_url: str, timeout: int = TIMEOUT_SECONDS) -> WebClient:
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

    handlers = [ConnectionErrorRetryHandler(max_retry_count=1), _bounded_rate_limit_handler()]
    return WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=handlers)


def _bounded_rate_limit_handler(max_wait: int = MAX_RETRY_AFTER_SECONDS) -> Any:
    """slack_sdk's RateLimitErrorRetryHandler, retrying only when Retry-After is at most `max_wait`."""
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    class BoundedRateLimitErrorRetryHandler(RateLimitErrorRetryHandler):
        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            if response is None or response.status_code != 429:
                return False
            wait = next((values[0] for name, values in response.headers.items() if name.lower() == "retry-after"), "1")
            return str(wait).isdigit() and int(wait) <= max_wait

    return BoundedRateLimitErrorRetryHandler(max_retry_count=1)
