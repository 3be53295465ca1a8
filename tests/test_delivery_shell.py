"""The receiving chores of the shared shell (adapters/shell.py), which Slack and Teams both use:
who and what the store knows already, and the idempotency claims that give a delivery one
effect; and Slack's "your answer is late" notice, in the language of whoever ran the command."""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Iterator

import pytest
from sqlalchemy import func, select

import adapters.slack.adapter as slack_adapter
from adapters.shell import DeliveryShell, Duplicate, RowWork
from bot.core import Bot
from store.models.core import ProcessedEvent
from tests.conftest import spec_file
from tests.harness.slack import TEAM, SlackServer, channel_id, seed_people, user_id

BUSY = {"en": "Causette is busy", "fr": "Causette est occupée"}


def claims(bot: Bot, key: str) -> int:
    with bot.services.db.session(TEAM) as s:
        return int(s.scalar(select(func.count(ProcessedEvent.id)).where(ProcessedEvent.key == key)) or 0)


def test_the_shell_knows_who_and_what_the_store_has(bot: Bot) -> None:
    seed_people(bot)
    shell = DeliveryShell(bot.services)
    assert shell.known_person(TEAM, user_id("sophie"))
    assert not shell.known_person(TEAM, "U-NEVER-SEEN")
    assert not shell.known_person("T-OTHER", user_id("sophie")), "a person is known in their own workspace only"
    assert shell.stored_kind(TEAM, channel_id("general")) == "public"
    assert shell.stored_kind(TEAM, "C-NEVER-SEEN") is None


def test_a_claim_without_an_inbox_row_is_taken_once_and_at_once(bot: Bot) -> None:
    shell = DeliveryShell(bot.services)
    assert not shell.seen(TEAM, "replay:1")
    assert [shell.claim(TEAM, "replay:1") for _ in range(3)] == [True, False, False]
    assert shell.seen(TEAM, "replay:1") and claims(bot, "replay:1") == 1


def test_a_rows_claim_is_written_by_its_main_transaction_and_a_second_one_rolls_back(bot: Bot) -> None:
    shell = DeliveryShell(bot.services)
    finished: list[str] = []
    first = RowWork(lambda _s: finished.append("first"))
    second = RowWork(lambda _s: finished.append("second"))
    assert shell.claim(TEAM, "msg:1", first) and shell.claim(TEAM, "msg:1", second)
    assert claims(bot, "msg:1") == 0, "nothing is written before the main event's transaction"
    with bot.services.db.session(TEAM) as s:
        first.commit(s)
    assert not shell.claim(TEAM, "msg:1", RowWork(lambda _s: None)), "committed: a later row skips the work"
    assert shell.claim(TEAM, "msg:1", RowWork(lambda _s: None), check=False), "unchecked: left to the commit"
    with pytest.raises(Duplicate):
        with bot.services.db.session(TEAM) as s:
            second.commit(s)
    assert finished == ["first"] and claims(bot, "msg:1") == 1
    assert first.finished and not second.finished


def test_a_main_event_that_fails_keeps_no_claim(bot: Bot) -> None:
    """The claim is written in the main event's transaction: rolled back with it, the row's
    retry does the work again."""
    shell = DeliveryShell(bot.services)
    work = RowWork(lambda _s: None)
    assert shell.claim(TEAM, "rolled:1", work)
    with pytest.raises(RuntimeError):
        with bot.services.db.session(TEAM) as session:
            work.commit(session)
            raise RuntimeError("the main event failed")
    assert claims(bot, "rolled:1") == 0 and shell.claim(TEAM, "rolled:1", RowWork(lambda _s: None))


# Slack's "delayed" notice ---------------------------------------------------------------
@pytest.fixture
def slow_inbox(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SlackServer, threading.Event]]:
    """A Slack server whose command writes to the inbox wait until the event is set: the ack
    goes out after ACK_WRITE_SECONDS with the 'delayed' notice, the answer after the write."""
    seed_people(bot)
    server = SlackServer(bot, spec_file("slack-web-openapi-v2.json"))
    pipeline = server.adapter.pipeline
    held = threading.Event()
    real_put = pipeline.put

    def put_later(*args: Any, **kwargs: Any) -> bool:
        held.wait(10)
        return bool(real_put(*args, **kwargs))

    def turn_taken(*_args: Any, **_kwargs: Any) -> None:
        return None  # the write turn is not free: the write goes to a thread

    monkeypatch.setattr(pipeline, "put_now", turn_taken)
    monkeypatch.setattr(pipeline, "put", put_later)
    monkeypatch.setattr(slack_adapter, "ACK_WRITE_SECONDS", 0.1)
    yield server, held
    held.set()
    server.close()
    assert server.mock.violations == []


def late_command(server: SlackServer, who: str) -> str:
    fields = server.command_fields(user_id(who), channel_id("general"), "skills add kubernetes", channel_name="general")
    result = server.post_form(fields)
    assert result.status == 200
    notice = str(json.loads(result.body)["text"])
    languages = [lang for lang, words in BUSY.items() if words in notice]
    assert len(languages) == 1, notice
    return languages[0]


def answered(server: SlackServer) -> int:
    return len([c for c in server.mock.calls if c.method == "response_url"])


def test_the_delayed_notice_is_in_the_language_of_who_ran_the_command(slow_inbox: tuple[SlackServer, threading.Event]) -> None:
    server, held = slow_inbox
    assert late_command(server, "sophie") == "fr"
    assert late_command(server, "james") == "en"
    held.set()
    deadline = time.monotonic() + 10
    while answered(server) < 2 and time.monotonic() < deadline:
        server.drain()
    assert answered(server) == 2, "both late commands are answered once written"


def test_the_delayed_notice_goes_out_in_the_default_language_when_the_store_is_slow_too(
        slow_inbox: tuple[SlackServer, threading.Event], monkeypatch: pytest.MonkeyPatch) -> None:
    server, _held = slow_inbox
    shell = server.adapter.shell

    def slow_locale(*_args: Any, **_kwargs: Any) -> str:
        time.sleep(1.0)
        return "fr"

    monkeypatch.setattr(shell, "locale", slow_locale)
    started = time.monotonic()
    assert late_command(server, "sophie") == "en"
    assert time.monotonic() - started < 1.0, "the ack does not wait for the person's language"
