"""The per-event context: one query for the stored rows, the tenant guard built once per tenant,
and the help list built once per process — none of which may go stale or cross workspaces."""
from __future__ import annotations

import threading
from itertools import count
from typing import Any

from sqlalchemy import event, select, update

from bot.clock import FixedClock
from bot.config import Settings
from bot.context import Services
from bot.core import Bot
from bot.i18n import Prompts
from bot.types import ConversationRef, IncomingMessage, MembersChanged, UserRef
from handlers import build_registry
from store import people
from store.db import Database
from store.models.core import ConversationMember, Person

PLATFORM = "slack"
_ids = count(1)


def message(tenant: str, user: str, text: str, channel: str = "D1", kind: str = "dm") -> IncomingMessage:
    return IncomingMessage(id=f"m{next(_ids)}", text=text, sender=UserRef(PLATFORM, tenant, user, user),
                           conversation=ConversationRef(PLATFORM, tenant, channel, kind, name=channel), addressed=True)


def second_process(settings: Settings, clock: FixedClock, prompts: Prompts) -> Bot:
    """Another worker on the same database: its own engine, registry and per-process caches."""
    return Bot(Services(settings=settings, db=Database(settings.database_url), prompts=prompts, clock=clock,
                        registry=build_registry()))


def seed(db: Database, tenant: str, clock: FixedClock, *, member: bool) -> None:
    with db.session(tenant) as s:
        people.ensure_workspace(s, tenant, PLATFORM, "en")
        person = people.upsert_person(s, UserRef(PLATFORM, tenant, "U1", f"alice-{tenant}"), clock.now())
        conv = people.upsert_conversation(s, ConversationRef(PLATFORM, tenant, "C1", "private", name=f"c-{tenant}"), clock.now())
        if member:
            people.add_member(s, conv, person, clock.now())


def test_event_rows_come_from_the_sessions_tenant_only(db_url: str, clock: FixedClock) -> None:
    db = Database(db_url)
    seed(db, "T1", clock, member=False)
    seed(db, "T2", clock, member=True)
    for tenant, member in (("T1", False), ("T2", True), ("T1", False), ("T2", True)):
        with db.session(tenant) as s:
            rows = people.event_rows(s, tenant, "U1", "C1")
            assert rows.workspace is not None and rows.workspace.id == tenant
            assert rows.person is not None and rows.person.display_name == f"alice-{tenant}"
            assert rows.conversation is not None and rows.conversation.name == f"c-{tenant}"
            assert rows.member is member
            alone = people.event_rows(s, tenant, "U1", None)
            assert alone.person is not None and alone.person.tenant == tenant and alone.conversation is None
    with db.session("T1") as s:
        assert people.event_rows(s, "T2", "U1", "C1").person is None  # T1's guard hides T2's rows
        unknown = people.event_rows(s, "T1", "U404", "C404")
        assert unknown.workspace is not None and unknown.person is None and unknown.conversation is None
        assert not unknown.member
        assert people.event_rows(s, "T404", "U1", "C1") == people.EventRows(None, None, None, False)
    db.dispose()


def test_the_guard_scopes_reads_and_writes_when_tenants_alternate(db_url: str, clock: FixedClock) -> None:
    db = Database(db_url)
    seed(db, "T1", clock, member=False)
    seed(db, "T2", clock, member=False)
    for tenant in ("T1", "T2", "T1", "T2"):
        with db.session(tenant) as s:
            assert [p.tenant for p in s.scalars(select(Person))] == [tenant]
            s.execute(update(Person).values(title=f"title-{tenant}"))
    with db.session("T1") as s:
        assert s.scalar(select(Person.title)) == "title-T1"
    with db.session("T2") as s:
        assert s.scalar(select(Person.title)) == "title-T2"
    db.dispose()


def test_first_event_of_a_tenant_creates_its_rows_and_membership(bot: Bot) -> None:
    out = bot.handle(message("T9", "U1", "help", channel="C1", kind="public"))
    assert [e.reply.key for e in out] == ["help.overview"]
    with bot.services.db.session("T9") as s:
        rows = people.event_rows(s, "T9", "U1", "C1")
        assert rows.workspace is not None and rows.person is not None and rows.conversation is not None
        assert rows.member
    bot.handle(message("T9", "U1", "help", channel="C1", kind="public"))
    with bot.services.db.session("T9") as s:
        assert len(s.scalars(select(ConversationMember)).all()) == 1


def test_a_member_removed_elsewhere_is_added_back_by_their_next_message(bot: Bot, settings: Settings, clock: FixedClock,
                                                                        prompts: Prompts) -> None:
    other = second_process(settings, clock, prompts)
    bot.handle(message("T1", "U1", "help", channel="C1", kind="private"))
    user, conv = UserRef(PLATFORM, "T1", "U1", "U1"), ConversationRef(PLATFORM, "T1", "C1", "private", name="C1")
    other.handle(MembersChanged(conv, left=(user,)))
    with bot.services.db.session("T1") as s:
        assert not people.event_rows(s, "T1", "U1", "C1").member
    bot.handle(message("T1", "U1", "help", channel="C1", kind="private"))
    with bot.services.db.session("T1") as s:
        assert people.event_rows(s, "T1", "U1", "C1").member
    other.services.db.dispose()


def test_a_language_set_in_another_process_applies_to_the_next_help(bot: Bot, settings: Settings, clock: FixedClock,
                                                                    prompts: Prompts) -> None:
    other = second_process(settings, clock, prompts)
    english = bot.handle(message("T1", "U1", "help"))[0].reply
    other.handle(message("T1", "U1", "lang fr"))
    french = bot.handle(message("T1", "U1", "help"))[0].reply
    assert english.card is not None and french.card is not None
    assert french.card.title == prompts.t("fr", "help.title") != english.card.title
    assert bot.handle(message("T1", "U1", "help"))[0].reply == french
    other.services.db.dispose()


def test_help_lists_admin_commands_to_admins_only_whoever_asks_first(bot: Bot) -> None:
    for _ in range(2):
        admin = bot.handle(message("T1", "camille", "help"))[0].reply
        member = bot.handle(message("T1", "U1", "help"))[0].reply
        assert admin.card is not None and member.card is not None
        assert "role add" in str(admin.card.sections) and "role add" not in str(member.card.sections)
        assert admin.params["count"] > member.params["count"]


def test_a_tenants_first_events_in_two_processes_at_once_share_one_workspace(settings: Settings, clock: FixedClock,
                                                                              prompts: Prompts) -> None:
    """Process A has found no workspace and is about to create it when process B creates it."""
    a, b = second_process(settings, clock, prompts), second_process(settings, clock, prompts)
    about_to_insert, b_done = threading.Event(), threading.Event()

    def hold_a_before_its_insert(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO workspaces") and not about_to_insert.is_set():
            about_to_insert.set()
            b_done.wait(10)

    event.listen(a.services.db.engine, "before_cursor_execute", hold_a_before_its_insert)
    answers: dict[str, Any] = {}
    first = threading.Thread(target=lambda: answers.setdefault("a", a.handle(message("T7", "U1", "help", channel="D-U1"))))
    first.start()
    assert about_to_insert.wait(10)
    answers["b"] = b.handle(message("T7", "U2", "help", channel="D-U2"))
    b_done.set()
    first.join(10)
    assert [e.reply.key for e in answers["a"]] == [e.reply.key for e in answers["b"]] == ["help.overview"]
    with a.services.db.session("T7") as s:
        assert sorted(p.external_id for p in s.scalars(select(Person))) == ["U1", "U2"]
    a.services.db.dispose()
    b.services.db.dispose()
