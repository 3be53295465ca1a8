"""A reply's picture (a chart) is shown exactly once on Slack, however its delivery is cut short
(issue #12): the sender uploads the bytes, notes the file id for the delivery key (store
`delivery_steps`) and only then completes the upload, the step that shows the file; a retry of
the same key asks Slack (files.info, or the channel's messages without files:read) whether the
file is shown, and completes it only if not. Checked through the real signed-HTTP path, the
durable outbox and the mock Web API (Slack's spec), on SQLite and PostgreSQL:

- completeUploadExternal took effect but its answer was a 500 or a dropped connection;
- a failure before the file was shown (the bytes upload, or a completion refused with a 503);
- the process killed between the note and the completion, the outbox's sweeper resending;
- a card posted then its picture: neither twice; a private chart: one file in the DM;
- without files:read, the thread's or channel's messages tell; a completion Slack may still be
  sharing is not repeated at once; delivery notes are someone else's once older than the effect.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from adapters.shell import DeliveryShell
from bot import outbox
from bot.core import Bot
from bot.types import ConversationRef, Outbound, Reply, UserRef
from store import outbox as outbox_store
from store.db import ALL_TENANTS
from tests.harness.slack import TEAM, SlackServer, channel_id, user_id
from tests.test_picture_delivery import chart_in, slack, slash  # noqa: F401 - slack: the fixture

GENERAL = channel_id("general")


class Killed(BaseException):
    """The process died here (not an Exception: nothing on the way catches it)."""


def retry_later(slack: SlackServer, bot: Bot, seconds: float = 600) -> None:
    """Time passes; the outbox's sweeper (the `outbox.send` job) sends what is due, as retries."""
    bot.services.clock.advance(timedelta(seconds=seconds))  # type: ignore[attr-defined]
    bot.run_all_jobs()
    slack.drain()


def pending(bot: Bot) -> int:
    return outbox_store.pending_count(bot.services.db)


def calls(slack: SlackServer, method: str) -> int:
    return len(slack.mock.of(method))


@pytest.mark.parametrize("answer", [500, "reset"])
def test_a_completion_answered_500_or_cut_is_not_shown_twice(slack: SlackServer, bot: Bot, answer: int | str) -> None:
    slack.mock.fail_after("files.completeUploadExternal", answer)  # shared, but the bot never hears so
    slash(slack, "james", GENERAL, "chart public")
    assert len(slack.mock.files_in(GENERAL)) == 1 and pending(bot) == 1
    retry_later(slack, bot)
    [shown] = slack.mock.files_in(GENERAL)
    [message] = slack.mock.visible(GENERAL)
    assert message["text"].startswith("Contributors and participation")  # the comment, once
    assert calls(slack, "files.completeUploadExternal") == 1 and calls(slack, "files.getUploadURLExternal") == 1
    assert [c.args["file"] for c in slack.mock.of("files.info")] == [shown]
    assert pending(bot) == 0


def test_a_completion_refused_with_503_is_completed_by_the_retry_with_the_same_file(slack: SlackServer, bot: Bot) -> None:
    slack.mock.fail_http("files.completeUploadExternal", 503)  # before anything was shared
    slash(slack, "james", GENERAL, "chart public")
    assert slack.mock.files_in(GENERAL) == [] and pending(bot) == 1
    retry_later(slack, bot)
    [file_id] = [c.args["file"] for c in slack.mock.of("upload")]
    assert slack.mock.files_in(GENERAL) == [file_id]  # the file uploaded the first time, shown now
    assert calls(slack, "files.getUploadURLExternal") == 1 and calls(slack, "files.completeUploadExternal") == 2
    assert pending(bot) == 0


def test_a_failed_upload_of_the_bytes_is_uploaded_again_and_shown_once(slack: SlackServer, bot: Bot) -> None:
    slack.mock.fail_http("upload", 500)
    slash(slack, "james", GENERAL, "chart public")
    assert slack.mock.files_in(GENERAL) == [] and pending(bot) == 1 and calls(slack, "files.completeUploadExternal") == 0
    retry_later(slack, bot)
    assert len(slack.mock.files_in(GENERAL)) == 1
    assert calls(slack, "files.getUploadURLExternal") == 2 and calls(slack, "files.completeUploadExternal") == 1
    assert not slack.mock.of("files.info")  # nothing was noted: nothing to ask about
    assert pending(bot) == 0


def _record_and_send_killed(slack: SlackServer, bot: Bot, effect: Outbound, monkeypatch: pytest.MonkeyPatch) -> None:
    """Record `effect` in the outbox and send it as the process that recorded it, which dies
    right after the file id is noted, before the upload is completed."""
    noted = DeliveryShell.note_step

    def note_then_die(self: DeliveryShell, *args: object, **kwargs: object) -> None:
        noted(self, *args, **kwargs)  # type: ignore[arg-type]
        raise Killed()

    db, clock = bot.services.db, bot.services.clock
    with db.session(ALL_TENANTS) as session:
        leased = outbox.record(session, [effect], clock.now(), token=outbox.new_token("dying"))
    assert leased is not None
    monkeypatch.setattr(DeliveryShell, "note_step", note_then_die)
    with pytest.raises(Killed):
        outbox.deliver(db, clock, leased, slack.adapter.sender.deliver, [effect])
    monkeypatch.setattr(DeliveryShell, "note_step", noted)


def test_a_process_killed_between_upload_and_completion_shows_the_file_once(slack: SlackServer, bot: Bot,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    effect = Outbound(Reply(text="the trend", picture=chart_in("en")), to=ConversationRef("slack", TEAM, GENERAL, "public"))
    _record_and_send_killed(slack, bot, effect, monkeypatch)
    assert slack.mock.files_in(GENERAL) == [] and calls(slack, "upload") == 1 and pending(bot) == 1
    retry_later(slack, bot, 30)  # the dead process's lease still holds
    assert calls(slack, "files.info") == 0 and slack.mock.files_in(GENERAL) == []
    retry_later(slack, bot, outbox_store.LEASE.total_seconds())  # expired: the sweeper takes the row
    [file_id] = [c.args["file"] for c in slack.mock.of("upload")]
    assert slack.mock.files_in(GENERAL) == [file_id]
    [done] = slack.mock.of("files.completeUploadExternal")
    assert done.args["initial_comment"] == "the trend"
    assert calls(slack, "files.getUploadURLExternal") == 1 and pending(bot) == 0


def test_a_process_killed_after_the_completion_took_effect_shows_the_file_once(slack: SlackServer, bot: Bot,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed while Slack answered the completion: the note tells the sweeper which file to ask about."""
    effect = Outbound(Reply(text="the trend", picture=chart_in("en")), to=ConversationRef("slack", TEAM, GENERAL, "public"))
    slack.mock.fail_after("files.completeUploadExternal", "reset")
    db, clock = bot.services.db, bot.services.clock
    with db.session(ALL_TENANTS) as session:
        leased = outbox.record(session, [effect], clock.now(), token=outbox.new_token("dying"))
    assert leased is not None

    def send_then_die(effects: object) -> None:  # what the sender heard dies with the process
        try:
            slack.adapter.sender.deliver(effects)  # type: ignore[arg-type]
        finally:
            raise Killed()

    with pytest.raises(Killed):
        outbox.deliver(db, clock, leased, send_then_die, [effect])
    assert len(slack.mock.files_in(GENERAL)) == 1
    retry_later(slack, bot, outbox_store.LEASE.total_seconds() + 60)
    assert len(slack.mock.files_in(GENERAL)) == 1 and calls(slack, "files.completeUploadExternal") == 1
    assert pending(bot) == 0


def test_a_card_and_its_picture_are_each_shown_once_after_a_cut_completion(slack: SlackServer, bot: Bot) -> None:
    slack.mock.fail_after("files.completeUploadExternal", 500)
    slash(slack, "james", GENERAL, "chart card")
    retry_later(slack, bot)
    cards = [m for m in slack.mock.visible(GENERAL) if m.get("blocks")]
    assert len(cards) == 1 and "Stats #sales" in json.dumps(cards[0]["blocks"])
    assert cards[0].get("edited")  # the retry found its labelled card and updated it in place
    assert len(slack.mock.files_in(GENERAL)) == 1 and len(slack.mock.visible(GENERAL)) == 2
    assert calls(slack, "chat.postMessage") == 1 and calls(slack, "files.completeUploadExternal") == 1
    assert pending(bot) == 0


def test_a_card_whose_picture_failed_before_showing_is_not_posted_again(slack: SlackServer, bot: Bot) -> None:
    slack.mock.fail_http("files.getUploadURLExternal", 503, times=3)  # more than slack_sdk's own retries
    slash(slack, "james", GENERAL, "chart card")
    assert len(slack.mock.visible(GENERAL)) == 1 and pending(bot) == 1
    retry_later(slack, bot)
    assert calls(slack, "chat.postMessage") == 1 and len(slack.mock.files_in(GENERAL)) == 1
    assert len(slack.mock.visible(GENERAL)) == 2 and pending(bot) == 0


def test_a_private_chart_is_one_file_in_the_dm_and_one_answer(slack: SlackServer, bot: Bot) -> None:
    slack.mock.fail_after("files.completeUploadExternal", 500)
    slash(slack, "sophie", GENERAL, "chart private")
    assert len(slack.mock.files_in("DSOPHIE")) == 1 and not slack.mock.of("response_url")  # not said before it is true
    retry_later(slack, bot)
    assert len(slack.mock.files_in("DSOPHIE")) == 1 and slack.mock.files_in(GENERAL) == []
    [answer] = slack.mock.of("response_url")
    assert answer.args["response_type"] == "ephemeral" and "Le graphique est dans vos messages directs" in answer.args["text"]
    assert pending(bot) == 0


@pytest.mark.parametrize("thread", [None, "1763888000.000100"])
def test_without_files_read_the_channels_messages_tell(slack: SlackServer, bot: Bot, thread: str | None) -> None:
    """Causette does not ask for files:read: files.info is refused, the history (or the thread) answers."""
    slack.mock.failures["files.info"] = ["missing_scope"] * 3
    slack.mock.fail_after("files.completeUploadExternal", 500)
    effect = Outbound(Reply(text="the trend", picture=chart_in("en")), to=ConversationRef("slack", TEAM, GENERAL, "public"),
                      thread_id=thread)
    with bot.services.db.session(ALL_TENANTS) as session:
        leased = outbox.record(session, [effect], bot.services.clock.now(), token=outbox.new_token("w"))
    assert leased is not None
    assert not outbox.deliver(bot.services.db, bot.services.clock, leased, slack.adapter.sender.deliver, [effect])
    retry_later(slack, bot)
    [message] = slack.mock.visible(GENERAL)
    assert len(message["files"]) == 1 and message.get("thread_ts") == thread
    assert calls(slack, "files.completeUploadExternal") == 1 and calls(slack, "files.info") == 1
    assert calls(slack, "conversations.replies" if thread else "conversations.history") == 1
    assert pending(bot) == 0


def test_a_completion_slack_may_still_be_sharing_is_asked_again_later(slack: SlackServer, bot: Bot,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds after a completion with no answer, a file not shown yet may be on its way: the
    retry waits out SHARE_SETTLE before completing it again."""
    monkeypatch.setattr(outbox_store, "backoff_seconds", lambda attempts: 1.0)
    slack.mock.fail_http("files.completeUploadExternal", 503)
    slash(slack, "james", GENERAL, "chart public")
    retry_later(slack, bot, 2)
    assert calls(slack, "files.info") == 1 and calls(slack, "files.completeUploadExternal") == 1 and pending(bot) == 1
    retry_later(slack, bot, 20)
    assert len(slack.mock.files_in(GENERAL)) == 1 and calls(slack, "files.completeUploadExternal") == 2
    assert pending(bot) == 0


def test_an_attachment_is_shown_once_too(slack: SlackServer, bot: Bot) -> None:
    slack.mock.fail_after("files.completeUploadExternal", 500)
    effect = Outbound(Reply(text="your export", attachment=("export.json", b'{"ideas": []}')),
                      to=UserRef("slack", TEAM, user_id("james")))
    with bot.services.db.session(ALL_TENANTS) as session:
        leased = outbox.record(session, [effect], bot.services.clock.now(), token=outbox.new_token("w"))
    assert leased is not None
    assert not outbox.deliver(bot.services.db, bot.services.clock, leased, slack.adapter.sender.deliver, [effect])
    retry_later(slack, bot)
    assert len(slack.mock.files_in("DJAMES")) == 1 and calls(slack, "chat.postMessage") == 1
    assert len(slack.mock.visible("DJAMES")) == 2 and pending(bot) == 0


def test_a_delivery_note_older_than_its_effect_is_ignored_and_purged(bot: Bot) -> None:
    db, now = bot.services.db, bot.services.clock.now()
    outbox_store.note_step(db, "outbox:1:0", "slack.picture", '{"file": "F1"}', now - timedelta(days=3))
    assert outbox_store.recall_step(db, "outbox:1:0", "slack.picture", now) is None  # a purged row's id, reused
    assert outbox_store.recall_step(db, "outbox:1:0", "slack.picture", now - timedelta(days=4)) is not None
    outbox_store.note_step(db, "outbox:1:0", "slack.picture", '{"file": "F2"}', now)
    assert outbox_store.recall_step(db, "outbox:1:0", "slack.picture", now) == ('{"file": "F2"}', now)
    outbox_store.note_step(db, "outbox:2:0", "slack.picture", '{"file": "F3"}', now - timedelta(days=3))
    assert outbox_store.purge_steps(db, now - timedelta(days=2)) == 1
    assert outbox_store.recall_step(db, "outbox:1:0", "slack.picture") is not None
    assert outbox_store.recall_step(db, "outbox:2:0", "slack.picture") is None


@pytest.mark.parametrize("answer", [500, "reset"])
def test_a_labelled_post_whose_answer_failed_is_looked_for_before_posting_again(slack: SlackServer, bot: Bot,
                                                                              answer: int | str) -> None:
    """slack_sdk would repeat a chat.postMessage answered 500 (or cut): Slack may have posted it.
    The sender looks for its labelled post first, at once, and goes on with the picture."""
    slack.mock.fail_after("chat.postMessage", answer)
    slash(slack, "james", GENERAL, "chart card")
    [card, picture] = slack.mock.visible(GENERAL)
    assert "Stats #sales" in json.dumps(card["blocks"]) and len(picture["files"]) == 1
    assert calls(slack, "chat.postMessage") == 1 and pending(bot) == 0


def test_a_labelled_post_refused_with_5xx_is_tried_again_at_once(slack: SlackServer, bot: Bot) -> None:
    slack.mock.fail_http("chat.postMessage", 503, times=2)  # nothing posted: as slack_sdk's retries would
    slash(slack, "james", GENERAL, "chart card")
    assert calls(slack, "chat.postMessage") == 3 and len(slack.mock.visible(GENERAL)) == 2
    assert len(slack.mock.files_in(GENERAL)) == 1 and pending(bot) == 0
