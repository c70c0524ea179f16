"""Slack settings from environment variables (local.settings.json `Values` locally, app settings in Azure).

Read by the composition code in `functions/wiring.py`; the bot's modules receive the values they
need. In Azure the token and the signing secret are Key Vault references. Neither is ever logged:
`repr` hides them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from remediation.settings import SettingsError

SLACK_API_BASE_URL = "https://slack.com/api/"
DEFAULT_MESSAGES_TABLE = "slackmessages"


@dataclass(frozen=True, slots=True)
class SlackSettings:
    bot_token: str = field(repr=False)
    signing_secret: str = field(repr=False)
    default_channel: str | None = None
    api_base_url: str = SLACK_API_BASE_URL
    messages_table: str = DEFAULT_MESSAGES_TABLE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlackSettings | None:
        """The settings, or None when SLACK_BOT_TOKEN is unset (the engine then only logs)."""
        values = os.environ if env is None else env

        def setting(name: str, default: str = "") -> str:
            return values.get(name, "").strip() or default

        token = setting("SLACK_BOT_TOKEN")
        if not token:
            return None
        secret = setting("SLACK_SIGNING_SECRET")
        if not secret:
            raise SettingsError(
                "SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not: requests could not be verified"
            )
        base_url = setting("SLACK_API_BASE_URL", SLACK_API_BASE_URL)
        return cls(
            bot_token=token,
            signing_secret=secret,
            default_channel=setting("SLACK_DEFAULT_CHANNEL") or None,
            api_base_url=base_url if base_url.endswith("/") else base_url + "/",
            messages_table=setting("SLACK_MESSAGES_TABLE", DEFAULT_MESSAGES_TABLE),
        )
