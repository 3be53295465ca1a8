"""The install kit matches the code: scopes, events, command, shortcuts, interactivity."""
from __future__ import annotations

from pathlib import Path

import yaml

from adapters.slack.bolt_app import EVENTS, SHORTCUT_IDS
from adapters.slack.oauth import BOT_SCOPES
from bot.config import Settings

MANIFEST = Path(__file__).resolve().parent.parent / "deploy" / "slack" / "manifest.yaml"
MESSAGE_EVENTS = {"message.channels", "message.groups", "message.im", "message.mpim"}


def test_manifest_matches_the_code() -> None:
    m = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert sorted(m["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    events = set(m["settings"]["event_subscriptions"]["bot_events"])
    assert {e for e in events if not e.startswith("message.")} | {"message"} == set(EVENTS)
    assert events & MESSAGE_EVENTS == MESSAGE_EVENTS
    [command] = m["features"]["slash_commands"]
    assert command["command"] == Settings().command_name and command["should_escape"] is True
    assert command["url"].endswith("/slack/events")
    assert sorted(s["callback_id"] for s in m["features"]["shortcuts"]) == sorted(SHORTCUT_IDS)
    assert all(s["type"] == "message" for s in m["features"]["shortcuts"])
    assert m["settings"]["interactivity"]["is_enabled"] is True
    assert m["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    assert m["features"]["app_home"]["home_tab_enabled"] is True
    assert m["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")
