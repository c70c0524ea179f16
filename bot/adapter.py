"""Translation between Azure Functions HTTP objects and Bolt's, like Bolt's own framework adapters,
and the door check that comes before any of it.

Neighbours: `functions/slack_events.py` calls `refusal(req, settings=...)` with the Slack settings
alone (no storage, no engine), then `handle(app, req)`; Bolt (`bot.app`) checks the signature again
and dispatches. `refusal` answers 401 for a bad or stale signature and 403 for a request from a
workspace or app other than the pinned `SLACK_TEAM_ID` / `SLACK_APP_ID`, so a forged or foreign
request costs no I/O and changes nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import azure.functions as func

if TYPE_CHECKING:
    from slack_bolt import App, BoltRequest, BoltResponse

    from remediation.settings import SlackSettings

logger = logging.getLogger(__name__)

# Slack's own handshakes carry no workspace or app id; everything else names both.
_HANDSHAKES = frozenset({"url_verification"})


def to_bolt_request(req: func.HttpRequest) -> BoltRequest:
    from slack_bolt import BoltRequest

    return BoltRequest(
        body=req.get_body().decode("utf-8"),
        query=dict(req.params),
        headers={name.lower(): value for name, value in req.headers.items()},
    )


def to_http_response(resp: BoltResponse) -> func.HttpResponse:
    headers = {name: ", ".join(values) for name, values in resp.headers.items() if name.lower() != "content-type"}
    content_type = (resp.headers.get("content-type") or ["text/plain;charset=utf-8"])[0]
    return func.HttpResponse(body=resp.body, status_code=resp.status, headers={**headers, "Content-Type": content_type})


def handle(app: App, req: func.HttpRequest) -> func.HttpResponse:
    return to_http_response(app.dispatch(to_bolt_request(req)))


def refusal(req: func.HttpRequest, *, settings: SlackSettings) -> func.HttpResponse | None:
    """401 or 403 when the request must go no further; None when it may reach the app."""
    from slack_sdk.signature import SignatureVerifier  # its replay window is Slack's 5 minutes

    body = req.get_body()
    if not SignatureVerifier(settings.signing_secret).is_valid_request(body, dict(req.headers.items())):
        logger.warning("Slack request refused: bad or stale signature", extra={"status": 401})
        return func.HttpResponse("invalid signature", status_code=401)
    foreign = _foreign(body.decode("utf-8", "replace"), req.headers.get("content-type"), settings=settings)
    if foreign:
        logger.warning("Slack request refused: %s", foreign, extra={"status": 403, "reason": foreign})
        return func.HttpResponse("not this workspace's app", status_code=403)
    return None


def _foreign(body: str, content_type: str | None, *, settings: SlackSettings) -> str | None:
    """Why the request is not from the pinned workspace and app, or None."""
    if settings.team_id is None and settings.app_id is None:
        return None
    payload = _payload(body, content_type)
    if payload is None:
        return "unreadable body"
    if payload.get("type") in _HANDSHAKES or payload.get("ssl_check"):
        return None
    teams, apps = _ids(payload, "team"), _ids(payload, "app")
    if settings.team_id is not None and teams != {settings.team_id}:
        return f"workspace {sorted(teams)} is not the pinned one"
    if settings.app_id is not None and apps != {settings.app_id}:
        return f"app {sorted(apps)} is not the pinned one"
    return None


def _payload(body: str, content_type: str | None) -> dict[str, Any] | None:
    from slack_bolt.request.internals import parse_body

    try:
        payload = parse_body(body, content_type)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _ids(payload: dict[str, Any], kind: str) -> set[str]:
    """Every workspace (or app) id the request names for itself: all must be the pinned one."""
    team, view = payload.get("team"), payload.get("view")
    if kind == "team":
        found = [payload.get("team_id"), team.get("id") if isinstance(team, dict) else team]
        if isinstance(view, dict):
            found += [view.get("team_id"), view.get("app_installed_team_id")]
    else:
        found = [payload.get("api_app_id")]
        if isinstance(view, dict):
            found.append(view.get("app_id"))
    return {str(value) for value in found if value}
