"""Multi-workspace OAuth: install, callback, then requests of that workspace answered with
its own bot token, read from slack_sdk's SQLAlchemy installation store in our database."""
from __future__ import annotations

import re
from typing import Iterator

import pytest
from sqlalchemy import select

from bot.core import Bot
from store.models.slack import SlackBot, SlackInstallation
from tests.conftest import spec_file
from tests.harness.slack import SlackServer

# slack_sdk's async client still builds aiohttp.BasicAuth for oauth.v2.access (a warning, not an error).
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")


@pytest.fixture
def server(bot: Bot) -> Iterator[SlackServer]:
    s = SlackServer(bot, spec_file("slack-web-openapi-v2.json"), oauth=True)
    yield s
    s.close()
    assert s.mock.violations == []


def test_install_then_serve_that_workspace(server: SlackServer, bot: Bot) -> None:
    status, headers, page = server.get("/slack/install")
    assert status == 200 and b"slack.com/oauth/v2/authorize" in page
    state = re.search(rb"state=([\w\-]+)", page).group(1).decode()  # type: ignore[union-attr]
    cookie = headers["set-cookie"].split(";")[0]
    status, _, _ = server.get(f"/slack/oauth_redirect?code=2WS&state={state}", headers={"Cookie": cookie})
    assert status == 200
    with bot.services.db.session("*") as s:
        bots = list(s.scalars(select(SlackBot)))
        assert [(b.team_id, b.bot_token) for b in bots] == [("T2WS", "xoxb-T2WS")]
        assert s.scalar(select(SlackInstallation.team_id)) == "T2WS"
    replay, _, _ = server.get(f"/slack/oauth_redirect?code=3WS&state={state}", headers={"Cookie": cookie})
    assert replay >= 400, "a state is consumed once"

    fields = server.command_fields("UZOE", "CGENERAL", "help")
    fields["team_id"] = "T2WS"
    assert server.post_form(fields).status == 200
    server.drain()
    [answer] = server.mock.of("response_url")
    assert answer.args["text"]
    assert {c.token for c in server.mock.calls if c.method == "users.info"} == {"xoxb-T2WS"}


def test_unknown_workspace_is_not_served(server: SlackServer) -> None:
    handled: list[object] = []
    server.adapter.handle = lambda event: handled.append(event) or []  # type: ignore[method-assign]
    fields = server.command_fields("UZOE", "CGENERAL", "help")
    fields["team_id"] = "TNOBODY"
    result = server.post_form(fields)
    server.drain()
    assert result.status in (200, 401)
    assert handled == [] and not server.mock.of("users.info"), "nothing reached the bot"
