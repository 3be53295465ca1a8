"""The handler toolkit on Ctx/JobCtx: answering the message being handled, the audit log,
numbered arguments, other people's and conversations' languages, and acting as someone in a
job. Driven through the Bot where a user can see the result; a `probe` command added to the
registry shows what a handler gets."""
from __future__ import annotations

from functools import partial

import pytest
from sqlalchemy import select

from bot.context import Ctx, JobCtx, UserError
from bot.core import Bot
from bot.registry import CommandSpec
from bot.types import Effect, IncomingMessage, Reply
from store.models.core import AuditLog, Conversation, Person, Workspace
from tests.harness import driver
from tests.test_social_index import TENANT, command, conv, keys, post, user


def probe(bot: Bot, handler: object) -> None:
    bot.registry.command(CommandSpec("probe", "sonde", handler, "help.help"))  # type: ignore[arg-type]


# A slash command typed as is, from a person whose display name is their handle, titled.
say = partial(driver.say, tenant=TENANT, mark_mentions=False, display=str.title)


def answers(ctx: Ctx, msg: IncomingMessage, args: str) -> list[Effect]:
    return [ctx.answer(ctx.reply("help.title", private=True)),
            ctx.answer(ctx.reply("help.footer", in_thread=True), anchor="probe:1")]


def test_answers_go_privately_to_the_sender_in_a_channel_and_into_the_message_thread(bot: Bot) -> None:
    probe(bot, answers)
    private, threaded = say(bot, "thomas", "general", "probe", msg_id="m7")
    assert private.to == conv("general") and private.private_for == user("thomas")
    assert private.reply.text == bot.services.prompts.t("en", "help.title") and private.thread_id is None
    assert threaded.private_for is None and threaded.thread_id == "m7" and threaded.anchor == "probe:1"
    private, threaded = say(bot, "thomas", "general", "probe", thread_id="t1", msg_id="m8")
    assert private.thread_id == "t1" and threaded.thread_id == "t1"  # a reply in a thread stays there


def test_in_a_dm_a_private_answer_is_an_ordinary_message(bot: Bot) -> None:
    probe(bot, answers)
    private, _ = say(bot, "thomas", "dm", "probe")
    assert private.to == driver.conversation("thomas", "dm", tenant=TENANT) and private.private_for is None


def test_the_audit_log_names_the_actor_and_a_refused_command_leaves_no_entry(bot: Bot, clock) -> None:
    command(bot, "thomas", "help")
    assert keys(command(bot, "camille", "role add @thomas animator")) == ["roles.added"]

    def refused(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
        ctx.audit("probe.refused", "written, then undone")
        raise UserError("error.no_one")

    probe(bot, refused)
    assert keys(command(bot, "camille", "probe")) == ["error.no_one"]
    with bot.services.db.session(TENANT) as s:
        rows = [(s.get(Person, r.actor_id).external_id, r.action, r.created_at)  # type: ignore[union-attr]
                for r in s.scalars(select(AuditLog))]
    assert rows == [("camille", "role.add", clock.now())]


def test_a_job_audits_as_the_bot_in_one_workspace(bot: Bot, clock) -> None:
    command(bot, "thomas", "help")
    services = bot.services
    with services.db.session(TENANT) as s:
        JobCtx(services, s, clock.now()).audit(s, "probe.job", "request 3")
    with services.db.session(TENANT) as s:
        row = s.scalars(select(AuditLog)).one()
        assert (row.actor_id, row.action, row.detail, row.tenant, row.created_at) == (
            None, "probe.job", "request 3", TENANT, clock.now())


@pytest.mark.parametrize(("args", "expected"), [
    ("12", (12, "")), ("#12 rest of it", (12, "rest of it")), ("  7  done ", (7, "done")), ("3: accepted", (3, ": accepted")),
    ("12abc", (None, "12abc")), ("one", (None, "one")), ("", (None, "")), ("1234567890", (None, "1234567890")),
])
def test_numbered_reads_the_leading_number_of_the_arguments(args: str, expected: tuple[int | None, str]) -> None:
    assert Ctx.numbered(args) == expected


@pytest.mark.parametrize(("token", "expected"), [("1", 1), ("50", 50), ("0", None), ("51", None), ("²", None),
                                                 ("-1", None), ("2.0", None), ("", None)])
def test_number_in_takes_whole_numbers_within_bounds_only(token: str, expected: int | None) -> None:
    assert Ctx.number_in(token, 1, 50) == expected


def test_a_superscript_page_or_cap_is_refused_not_an_internal_error(bot: Bot) -> None:
    assert keys(command(bot, "reader", "feed ²")) == ["feed.bad_page"]
    assert keys(command(bot, "reader", "notifications cap ¹")) == ["notifications.bad_cap"]
    assert keys(command(bot, "reader", "notifications cap 5")) == ["notifications.cap_set"]


def test_an_idea_card_speaks_its_channels_language_and_the_answer_the_voters(bot: Bot) -> None:
    post(bot, "lucas", "general", "hello")
    with bot.services.db.session(TENANT) as s:
        s.scalars(select(Conversation).where(Conversation.name == "general")).one().language = "fr"
    card = say(bot, "lucas", "general", "idea Car pooling")
    assert keys(card) == ["idea.card"] and card[0].reply.text.startswith("Idée #1 : Car pooling")
    card_update, ack = command(bot, "emma", "idea vote 1")
    assert card_update.to == conv("general") and card_update.reply.card.title.startswith("💡 Idée #1")  # type: ignore[union-attr]
    assert ack.reply.text == bot.services.prompts.t("en", "idea.voted", id=1, votes=1)
    assert ack.to == conv("emma", "dm")


def test_a_job_acts_as_someone_in_their_own_language_and_has_nothing_to_answer(bot: Bot, clock) -> None:
    command(bot, "sophie", "lang fr")
    services = bot.services
    with services.db.session(TENANT) as s:
        sophie = s.scalars(select(Person).where(Person.external_id == "sophie")).one()
        workspace = s.get(Workspace, TENANT)
        assert workspace is not None
        ctx = JobCtx(services, s, clock.now()).acting_as(s, workspace, sophie)
        assert (ctx.actor, ctx.locale, ctx.msg, ctx.conversation) == (sophie, "fr", None, None)
        assert ctx.t("idea.anonymous") == services.prompts.t("fr", "idea.anonymous")
        assert ctx.translator("en")("idea.anonymous") == ctx.t_in("en", "idea.anonymous") != ctx.t("idea.anonymous")
        with pytest.raises(RuntimeError):
            ctx.answer(ctx.reply("idea.anonymous"))
