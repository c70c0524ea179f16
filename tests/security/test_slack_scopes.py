"""Attack surface: OAuth scopes the app asks for but never uses (a leaked token could use them).

Every bot scope in slack-manifest.yaml is needed by a Web API method the code in bot/ calls (or
by the slash command), and every scope those methods need is asked for.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# Web API method (as the SDK spells it) -> the bot scopes it needs; `chat:write.public` lets
# chat.postMessage post into public channels the bot was not invited to.
SCOPES: dict[str, set[str]] = {
    "chat_postMessage": {"chat:write", "chat:write.public"},
    "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_getPermalink": {"chat:write"},
    "usergroups_list": {"usergroups:read"},
    "usergroups_users_list": {"usergroups:read"},
    "views_open": set(),
    "views_publish": set(),
}
# A Web API call in bot/: `client.chat_update(`, or by name through the notifier, `call("chat_update"`.
METHOD = re.compile(
    r"""(?:\.|call\(\s*")((?:auth|chat|conversations|usergroups|users|views|reactions|files)_[A-Za-z_]+)\b"""
)


def called_methods() -> set[str]:
    sources = "\n".join(path.read_text() for path in (ROOT / "bot").glob("*.py"))
    return set(METHOD.findall(sources))


def test_the_manifest_asks_only_for_scopes_the_code_uses() -> None:
    manifest = yaml.safe_load((ROOT / "slack-manifest.yaml").read_text())
    asked = set(manifest["oauth_config"]["scopes"]["bot"])
    methods = called_methods()
    assert methods, "no Web API call found in bot/"
    unknown = methods - set(SCOPES)
    assert not unknown, f"add the scopes of {sorted(unknown)} to this test's table"
    needed = {scope for method in methods for scope in SCOPES[method]}
    if manifest["features"].get("slash_commands"):
        needed.add("commands")
    assert asked == needed, f"unused: {sorted(asked - needed)}; missing: {sorted(needed - asked)}"
    docs = (ROOT / "docs" / "slack.md").read_text()
    assert all(f"`{scope}`" in docs for scope in asked)
    assert "users:read" not in docs
