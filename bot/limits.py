"""Slack's Block Kit limits, and the cutting that keeps every message within them.

Used by `bot.blocks` (messages, modals, App Home). A text over a limit makes the whole API call
fail (`invalid_blocks`), so an alert with a long title or many targets would never be shown:
everything user-supplied passes through `cut` or `escape` first.
"""

from __future__ import annotations

from typing import Any

SECTION_TEXT = 3000
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
CONTEXT_ELEMENTS = 10
CONTEXT_TEXT = 2000
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
FALLBACK_TEXT = 3000  # the notification text; Slack truncates at 40,000 but nobody reads that far
MODAL_TITLE = 24
INPUT_LABEL = 2000
INPUT_HINT = 2000
PLAIN_INPUT_MAX = 3000
ELLIPSIS = "…"


def cut(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def escape(text: str) -> str:
    """Text from an alert, safe in mrkdwn: no accidental links, mentions or broadcasts."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str, *, limit: int = SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": cut(text, limit)}


def plain(text: str, *, limit: int = SECTION_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": cut(text, limit) or " ", "emoji": True}


def fit_blocks(blocks: list[dict[str, Any]], *, limit: int = MESSAGE_BLOCKS) -> list[dict[str, Any]]:
    """At most `limit` blocks; the trailing actions block (the buttons) always survives."""
    if len(blocks) <= limit:
        return blocks
    tail = [blocks[-1]] if blocks and blocks[-1].get("type") == "actions" else []
    kept = blocks[: limit - len(tail) - 1]
    note = {"type": "context", "elements": [mrkdwn(f"{len(blocks) - len(kept) - len(tail)} more blocks left out")]}
    return [*kept, note, *tail]
