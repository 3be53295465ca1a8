"""A reply with a picture (a chart, `Reply.picture`) reaches people on every messenger:

- Slack, through the real signed-HTTP path, the durable outbox and the mock Web API checked
  against Slack's spec: the external-upload flow with the alt text (`alt_txt`) in the reader's
  language; a plain-text reply is the upload's comment (one message); a card is posted, then the
  picture below it; a private reply's picture goes to the person's DM with the bot and the
  ephemeral says so; a 5xx on the upload is retried by the outbox, not lost.
- Teams, through the real turn (botbuilder TestAdapter): an Adaptive Card 1.5 `Image` with the
  PNG as a data URI and its `altText`, schema-valid and under 28 KB even beside a long card.
- The console: the PNG saved under its files directory, its path and alt text printed.
- The outbox codec keeps the picture's bytes exactly.
"""
from __future__ import annotations

import base64
import io
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest

from adapters.console.messenger import ConsoleMessenger
from adapters.teams.render import MAX_BYTES, cards_of, render, size_of
from bot import effects_json
from bot.charts import ChartLabels, example_points, render_trend
from bot.context import Ctx
from bot.core import Bot
from bot.i18n import Prompts
from bot.registry import CommandSpec
from bot.text import NO_NAMES
from bot.types import Card, ConversationRef, IncomingMessage, Outbound, Picture, Reply, UserRef
from store import outbox as outbox_store
from store.demo import DEMO_TENANT
from tests.conftest import spec_file
from tests.harness.slack import TEAM, SlackServer, channel_id, seed_people, user_id
from tests.harness.teams import TeamsHarness
from tests.scenarios import Step

END = date(2026, 11, 23)
PROMPTS = Prompts.load()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chart_in(locale: str, title: str = "#sales") -> Picture:
    return render_trend(example_points(END), title=title, labels=ChartLabels.of(lambda k, **p: PROMPTS.t(locale, k, **p)),
                        locale=locale)


def chart_command(bot: Bot) -> None:
    """`chart [private|public|card]`: what the stats command will answer, a reply with a chart,
    in the language of whoever reads it (the asker privately, the channel publicly)."""
    def handler(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
        mode = args.strip() or "private"
        private = mode == "private"
        locale = ctx.locale if private or ctx.conversation is None else ctx.locale_in(ctx.conversation)
        chart = render_trend(example_points(END), title="#sales", labels=ChartLabels.of(ctx.translator(locale)), locale=locale)
        text = ctx.t_in(locale, "charts.subtitle", weeks=12)
        card = Card(title="Stats #sales", body=text) if mode == "card" else None
        return Reply(text=text, key="charts.subtitle", private=private, picture=chart, card=card)

    bot.registry.command(CommandSpec("chart", "graphique", handler, "help.help"))  # type: ignore[arg-type]


# Slack -------------------------------------------------------------------------------
@pytest.fixture
def slack(bot: Bot) -> Iterator[SlackServer]:
    seed_people(bot)
    chart_command(bot)
    server = SlackServer(bot, spec_file("slack-web-openapi-v2.json"))
    yield server
    server.close()
    assert server.mock.violations == [], "every Web API call must match Slack's spec"


def slash(server: SlackServer, who: str, channel: str, text: str) -> None:
    result = server.post_form(server.command_fields(user_id(who), channel, text, channel_name=channel.lower()))
    assert result.status == 200
    server.drain()


def uploads(server: SlackServer) -> list[tuple[dict[str, Any], int, dict[str, Any]]]:
    """(getUploadURLExternal args, bytes uploaded, completeUploadExternal args) of each upload."""
    mock = server.mock
    sizes = [c.args["size"] for c in mock.of("upload")]
    return list(zip([c.args for c in mock.of("files.getUploadURLExternal")], sizes,
                    [c.args for c in mock.of("files.completeUploadExternal")]))


def test_slack_private_chart_goes_to_the_dm_and_the_ephemeral_says_so(slack: SlackServer) -> None:
    slash(slack, "sophie", channel_id("general"), "chart private")  # Sophie reads French, #general is English
    expected = chart_in("fr")
    [(url_args, size, done)] = uploads(slack)
    assert url_args["alt_txt"] == expected.alt and url_args["alt_txt"].startswith("Contributeurs par semaine dans #sales")
    assert url_args["filename"] == expected.filename and int(url_args["length"]) == len(expected.png) == size
    assert done["channel_id"] == "DSOPHIE" and "initial_comment" not in done  # her DM with the bot, nobody else's
    files = json.loads(done["files"]) if isinstance(done["files"], str) else done["files"]
    assert files[0]["title"].startswith("Contributeurs par semaine dans #sales")
    [answer] = [c for c in slack.mock.calls if c.method in ("response_url", "chat.postEphemeral", "chat.postMessage")]
    assert answer.method == "response_url" and answer.args["response_type"] == "ephemeral"
    assert "Contributeurs et participation, 12 dernières semaines" in answer.args["text"]
    assert "Le graphique est dans vos messages directs" in answer.args["text"]
    methods = [c.method for c in slack.mock.calls]
    assert methods.index("files.completeUploadExternal") < methods.index("response_url")  # said once it is true


def test_slack_a_long_alt_text_is_cut_to_slacks_limit(slack: SlackServer) -> None:
    long = Picture(png=chart_in("en").png, alt="Contributors per week in #sales. " + "x" * 3000, filename="c.png")
    slack.adapter.sender.deliver([Outbound(Reply(text="the trend", picture=long), to=UserRef("slack", TEAM, user_id("james")))])
    [(url_args, _, done)] = uploads(slack)
    assert len(url_args["alt_txt"]) == 1000 and url_args["alt_txt"].endswith("…")
    assert done["channel_id"] == "DJAMES" and done["initial_comment"] == "the trend"
    files = json.loads(done["files"]) if isinstance(done["files"], str) else done["files"]
    assert files[0]["title"] == "Contributors per week in #sales"


def test_slack_where_files_are_refused_the_chart_comes_in_words(slack: SlackServer) -> None:
    slack.mock.failures["files.getUploadURLExternal"] = ["file_uploads_disabled", "file_uploads_disabled"]
    slash(slack, "sophie", channel_id("general"), "chart private")
    [answer] = [c for c in slack.mock.calls if c.method in ("response_url", "chat.postEphemeral", "chat.postMessage")]
    assert chart_in("fr").alt in answer.args["text"] and "messages directs" not in answer.args["text"]
    slash(slack, "james", channel_id("general"), "chart public")
    [post] = slack.mock.of("chat.postMessage")
    assert post.args["text"].startswith("Contributors and participation, last 12 weeks")
    assert chart_in("en").alt in post.args["text"]
    assert not slack.mock.of("files.completeUploadExternal")


def test_slack_public_plain_reply_is_one_message_the_upload_with_its_comment(slack: SlackServer) -> None:
    slash(slack, "sophie", channel_id("sales"), "chart public")  # #sales reads French
    [(url_args, size, done)] = uploads(slack)
    assert url_args["alt_txt"] == chart_in("fr").alt
    assert done["channel_id"] == channel_id("sales")
    assert done["initial_comment"] == "Contributeurs et participation, 12 dernières semaines"
    assert not slack.mock.of("chat.postMessage") and not slack.mock.of("response_url")
    assert size == len(chart_in("fr").png)


def test_slack_card_is_posted_then_the_picture_below_it_in_english(slack: SlackServer) -> None:
    slash(slack, "james", channel_id("general"), "chart card")  # #general reads English
    [post] = slack.mock.of("chat.postMessage")
    assert "Stats #sales" in json.dumps(post.args["blocks"])
    [(url_args, _, done)] = uploads(slack)
    assert url_args["alt_txt"].startswith("Contributors per week in #sales, 12 weeks: from 7 to 16.")
    assert done["channel_id"] == channel_id("general") and "initial_comment" not in done
    methods = [c.method for c in slack.mock.calls]
    assert methods.index("chat.postMessage") < methods.index("files.getUploadURLExternal")


def test_slack_a_dm_with_the_bot_gets_text_and_picture_as_one_message(slack: SlackServer) -> None:
    event = {"type": "message", "channel": "DJAMES", "channel_type": "im", "user": user_id("james"),
             "text": "chart public", "ts": slack.next_ts()}
    assert slack.post_json(slack.event_payload(event)).status == 200
    slack.drain()
    [(url_args, _, done)] = uploads(slack)
    assert done["channel_id"] == "DJAMES" and done["initial_comment"].startswith("Contributors and participation")
    assert url_args["alt_txt"].startswith("Contributors per week")


def test_slack_a_chart_asked_in_a_dm_between_two_people_goes_to_the_askers_dm(slack: SlackServer) -> None:
    slash(slack, "james", "DJAMESLUCAS", "chart public")  # the bot cannot post there; Lucas must not get it
    [(_, _, done)] = uploads(slack)
    assert done["channel_id"] == "DJAMES"
    [answer] = [c for c in slack.mock.calls if c.method in ("response_url", "chat.postEphemeral", "chat.postMessage")]
    assert answer.method == "response_url" and answer.args["response_type"] == "ephemeral"
    assert "The chart is in your direct messages with me" in answer.args["text"]


def test_slack_an_upload_that_got_5xx_is_retried_by_the_outbox(slack: SlackServer, bot: Bot) -> None:
    slack.mock.fail_http("files.getUploadURLExternal", 503, times=3)  # more than slack_sdk's own retries
    slash(slack, "james", channel_id("general"), "chart public")
    assert uploads(slack) == [] and outbox_store.pending_count(bot.services.db) == 1
    bot.services.clock.advance(timedelta(minutes=10))  # type: ignore[attr-defined]
    bot.run_all_jobs()
    slack.drain()
    [(url_args, size, done)] = uploads(slack)
    assert url_args["alt_txt"] == chart_in("en").alt and size == len(chart_in("en").png)
    assert done["initial_comment"].startswith("Contributors and participation")
    assert outbox_store.pending_count(bot.services.db) == 0


# Teams -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def card_validator() -> jsonschema.Draft6Validator:
    return jsonschema.Draft6Validator(json.loads(spec_file("adaptive-card-1.5.json").read_text()))


def sent_cards(harness: TeamsHarness) -> list[tuple[Any, dict[str, Any]]]:
    """(activity, card) of every Adaptive Card the bot sent through botbuilder."""
    out = []
    for activity in harness.adapter.activity_buffer:
        for attachment in activity.attachments or []:
            if attachment.content_type == "application/vnd.microsoft.card.adaptive":
                out.append((activity, attachment.content))
    return out


def image_of(card: dict[str, Any]) -> dict[str, Any]:
    [image] = [e for e in card["body"] if e["type"] == "Image"]
    return image


@pytest.mark.parametrize("where, who, locale", [("#sales", "sophie", "fr"), ("#general", "james", "en")])
def test_teams_chart_is_an_image_in_a_valid_card(bot: Bot, card_validator: jsonschema.Draft6Validator,
                                                  where: str, who: str, locale: str) -> None:
    chart_command(bot)
    harness = TeamsHarness(bot)
    harness.run_step(Step(who, where, "chart public", command=True))
    [(activity, card)] = sent_cards(harness)
    assert list(card_validator.iter_errors(card)) == []
    image = image_of(card)
    expected = chart_in(locale)
    assert image["url"] == "data:image/png;base64," + base64.b64encode(expected.png).decode()
    assert base64.b64decode(image["url"].split(",", 1)[1])[:8] == PNG_MAGIC
    assert image["altText"] == expected.alt
    from adapters.teams.wire import to_wire

    assert len(json.dumps(to_wire(activity)).encode()) <= MAX_BYTES  # the activity as sent on the wire


def test_teams_private_chart_goes_to_the_personal_chat(bot: Bot, card_validator: jsonschema.Draft6Validator) -> None:
    chart_command(bot)
    harness = TeamsHarness(bot)
    harness.run_step(Step("sophie", "#general", "chart private", command=True))
    cards = sent_cards(harness)
    [(activity, card)] = cards
    assert activity.conversation.id == "a:dm-sophie"
    assert image_of(card)["altText"] == chart_in("fr").alt
    assert list(card_validator.iter_errors(card)) == []


def test_teams_a_chart_beside_a_long_card_is_scaled_down_to_fit(card_validator: jsonschema.Draft6Validator) -> None:
    picture = chart_in("fr", "#ventes-équipe-région-auvergne-rhône-alpes")
    long = "Élément très détaillé — « citation » " * 300
    reply = Reply(text="Statistiques", card=Card(title="Statistiques", body=long[:9000]), picture=picture)
    out = render(reply, NO_NAMES, lambda k, **p: PROMPTS.t("fr", k, **p))
    assert size_of(out) <= MAX_BYTES
    [card] = cards_of(out)
    assert list(card_validator.iter_errors(card)) == []
    image = image_of(card)
    smaller = base64.b64decode(image["url"].split(",", 1)[1])
    assert smaller[:8] == PNG_MAGIC and len(smaller) < len(picture.png)
    from PIL import Image

    with Image.open(io.BytesIO(smaller)) as img:
        assert img.width in (600, 400)  # 75 % or 50 % of 800
    assert long[:9000].strip()[:40] in json.dumps(card, ensure_ascii=False)  # the text was kept whole
    assert image["altText"] == picture.alt


# Console -----------------------------------------------------------------------------
def test_console_saves_the_picture_and_prints_its_path_and_alt_text(bot: Bot, tmp_path: Path) -> None:
    from adapters.console.seed import seed_demo

    seed_demo(bot)
    chart_command(bot)
    out = io.StringIO()
    console = ConsoleMessenger(bot, DEMO_TENANT, "sophie", out=out, lang="fr", files_dir=tmp_path / "files")
    console.handle_line("/in sales")
    console.handle_line(f"{console.command} chart public")
    printed = out.getvalue()
    [line] = [ln for ln in printed.splitlines() if "Image enregistrée" in ln]
    path = Path(line.split(" : ", 1)[1].strip())
    assert path.is_absolute() and path.parent == (tmp_path / "files").resolve()
    assert path.read_bytes() == chart_in("fr").png
    assert "Ce qu'elle montre : " + chart_in("fr").alt in printed
    # the same chart again is the same file; another chart of that name does not replace it
    other = Picture(png=chart_in("en").png, alt="x", filename=path.name)
    assert console.save_picture(chart_in("fr")) == path
    assert console.save_picture(other).name == path.stem + "-2.png" and path.read_bytes() == chart_in("fr").png
    hostile = Picture(png=chart_in("en").png, alt="x", filename="../../escape.png")
    assert console.save_picture(hostile).parent == (tmp_path / "files").resolve()


# Outbox ------------------------------------------------------------------------------
def test_a_picture_survives_the_outbox_codec_byte_for_byte() -> None:
    picture = chart_in("fr", "#ventes-équipe")
    effect = Outbound(Reply(text="stats", picture=picture, private=True),
                      ConversationRef("slack", TEAM, "C1", "public"), private_for=UserRef("slack", TEAM, "USOPHIE"))
    stored = effects_json.dumps(effect)
    assert picture.alt in stored  # readable text, not escaped away
    again = effects_json.loads(stored)
    assert again == effect and isinstance(again, Outbound) and again.reply.picture is not None
    assert again.reply.picture.png == picture.png and again.reply.picture.png[:8] == PNG_MAGIC

