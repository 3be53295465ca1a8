"""The durable outbox: the effects codec, recording in the work's transaction, sending after the
commit, retrying only what failed, resending what a crash left behind, and notification DMs
that are not lost when the platform answers 5xx."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot import effects_json, outbox
from bot import text as text_module
from bot.context import Services
from bot.core import Bot
from bot.delivery import DeliveryFailed, current_attempt
from bot.types import (Action, Card, ConversationRef, Effect, FetchHistory, Form, FormField, IncomingMessage, Outbound,
                       Reply, UserRef)
from store import outbox as store
from store.db import ALL_TENANTS
from store.models.outbox import OutboxEntry
from tests.test_notifications import TENANT, _notify, _person

CHANNEL = ConversationRef("slack", "T1", "C1", "private", "1700000000.000100", "sales")
SOPHIE = UserRef("slack", "T1", "USOPHIE", "Sophie")


def _rich() -> list[Effect]:
    form = Form("Ask", "ask submit", (FormField("q", "Question", "multiline", "", True, (), 500),
                                      FormField("k", "Kind", "select", "a", False, (("a", "A"), ("b", "B")))), "Send")
    card = Card("Title", "Body", (("k", "v"),), (Action("Vote", "idea vote 3", "primary"),), "footer", (("h", "b"),))
    reply = Reply(text="hello " + text_module.ping_marker("UJULIEN"), card=card, key="x.y", params={"n": 2, "$odd": "z", "day": date(2026, 12, 7), "at": datetime(2026, 12, 7, 9, tzinfo=timezone.utc)},
                  private=True, in_thread=True, form=form, attachment=("export.json", b"\x00\xff{}"))
    return [Outbound(reply, CHANNEL, private_for=SOPHIE, thread_id="1700000000.000100", anchor="idea:3",
                     response_url="https://hooks.slack.com/x"),
            Outbound(Reply(text="dm"), SOPHIE),
            FetchHistory(CHANNEL, datetime(2026, 11, 1, tzinfo=timezone.utc), SOPHIE, "backfill:C1")]


def test_every_effect_survives_the_codec() -> None:
    effects = _rich()
    assert effects_json.loads_all(effects_json.dumps_all(effects)) == effects
    assert effects_json.loads(effects_json.dumps(effects[0])) == effects[0]


def test_a_ping_stays_live_in_the_process_that_resends_it(monkeypatch: pytest.MonkeyPatch) -> None:
    forged = "⟦*" + "0" * 12 + "@UEVE⟧"  # a live marker of some other key: never becomes live
    stored = effects_json.dumps(Outbound(Reply(text=text_module.ping_marker("UJULIEN") + " " + forged), SOPHIE))
    assert text_module.LIVE_KEY not in stored  # the process key never leaves the process
    other = "abcdef012345"  # "another process"
    monkeypatch.setattr(text_module, "LIVE_KEY", other)
    monkeypatch.setattr(effects_json, "LIVE_KEY", other)
    loaded = effects_json.loads(stored)
    assert isinstance(loaded, Outbound)
    assert ("ping", "UJULIEN") in text_module.split_markers(loaded.reply.text)
    assert ("user", "UEVE") in text_module.split_markers(loaded.reply.text)


def test_the_codec_refuses_what_is_not_an_effect() -> None:
    with pytest.raises(ValueError):
        effects_json.loads_all('{"v": 1, "seal": "", "effects": [{"$": "Services"}]}')
    with pytest.raises(ValueError):
        effects_json.loads_all('{"v": 1, "seal": "", "effects": [{"$": "UserRef", "platform": "x", "tenant": "t", "id": "u"}]}')


def _row(services: Services) -> OutboxEntry:
    with services.db.session(ALL_TENANTS, readonly=True) as s:
        row = s.scalar(select(OutboxEntry))
        assert row is not None
        s.expunge(row)
        return row


def test_only_the_failed_effect_is_retried_and_a_crash_is_resent(services: Services) -> None:
    effects = [Outbound(Reply(text="one"), SOPHIE), Outbound(Reply(text="two"), CHANNEL)]
    now = services.clock.now()
    with services.db.session(TENANT) as s:  # the work's transaction
        leased = outbox.record(s, effects, now, context={"slack": {"team": "T1"}}, token=outbox.new_token("test"))
    assert leased is not None
    sent: list[tuple[str, bool]] = []
    refuse = {"two"}

    def send(items: list[Effect]) -> None:
        attempt = current_attempt()
        assert attempt is not None and attempt.context == {"slack": {"team": "T1"}}
        for item in items:
            assert isinstance(item, Outbound)
            if item.reply.text in refuse:
                raise DeliveryFailed("503", failed=(item,), retry_after=120)
            sent.append((item.reply.text, attempt.retry))

    assert outbox.deliver(services.db, services.clock, leased, send, effects) is False
    row = _row(services)
    assert (row.state, row.done) == ("pending", "0") and row.next_attempt_at == now + timedelta(seconds=120)
    assert outbox.sweep(services.db, services.clock, send) == []  # not before Retry-After
    refuse.clear()
    services.clock.advance(timedelta(seconds=121))  # type: ignore[attr-defined]
    outbox.sweep(services.db, services.clock, send)
    assert sent == [("one", False), ("two", True)]  # "one" never twice; the resend is a retry
    assert _row(services).state == "sent"
    assert store.pending_count(services.db) == 0


def test_a_row_left_by_a_killed_process_is_sent_once_its_lease_expires(services: Services) -> None:
    now = services.clock.now()
    with services.db.session(TENANT) as s:
        outbox.record(s, [Outbound(Reply(text="late"), SOPHIE)], now, token=outbox.new_token("dead"))
    # … the process dies here, before sending.
    got: list[bool] = []

    def send(items: list[Effect]) -> None:
        got.append(current_attempt().retry)  # type: ignore[union-attr]

    outbox.sweep(services.db, services.clock, send)
    assert got == [] and store.pending_count(services.db) == 1
    services.clock.advance(store.LEASE + timedelta(seconds=1))  # type: ignore[attr-defined]
    outbox.sweep(services.db, services.clock, send)
    outbox.sweep(services.db, services.clock, send)
    assert got == [True] and _row(services).state == "sent"


def test_a_command_records_its_replies_in_its_own_transaction(bot: Bot, services: Services) -> None:
    recorded: list[list[Effect]] = []
    msg = IncomingMessage("m1", "help", SOPHIE, ConversationRef("slack", "T1", "C1", "public"), addressed=True)

    def record(session: object, effects: list[Effect]) -> None:
        recorded.append(list(effects))
        outbox.record(session, effects, services.clock.now())  # type: ignore[arg-type]

    effects = bot.handle(msg, in_transaction=lambda session: None, record=record)
    assert effects and recorded == [effects]
    assert effects_json.loads_all(_row(services).effects) == effects


def test_a_ping_whose_dm_got_a_5xx_is_retried_not_lost(bot: Bot, services: Services) -> None:
    alice = _person(services, "alice")
    _notify(services, alice, "notifications.grouped", params={"count": 1}, thread_key="t1")
    services.clock.advance(timedelta(minutes=6))  # type: ignore[attr-defined]
    delivered: list[Outbound] = []
    failing = [True]

    def deliver(effects: list[Effect]) -> None:
        if failing[0]:
            raise DeliveryFailed("slack chat.postMessage: internal_error", failed=tuple(effects))
        delivered.extend(e for e in effects if isinstance(e, Outbound))

    services.deliver = deliver
    assert bot.run_all_jobs() == []
    assert delivered == [] and store.pending_count(services.db) == 1
    failing[0] = False
    services.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    bot.run_all_jobs()
    bot.run_all_jobs()
    assert [(d.to.id, d.reply.key) for d in delivered] == [("alice", "notifications.grouped")]
    assert store.pending_count(services.db) == 0
