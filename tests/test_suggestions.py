"""Suggestions: routed to the référent responsible (channel, department, site, everywhere,
admins — saying which step had no one), handled with take / answer / done / decline, the
author told at every step, lists, privacy (an outsider sees nothing), anonymity audited, and
the escalation to admins once, even with two worker processes."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.context import Services
from bot.core import Bot
from bot.text import split_markers
from bot.types import Outbound
from store.models.core import AuditLog, Conversation, Person, Role
from store.models.notifications import Notification
from store.models.referents import Suggestion
from tests.test_ideas_support import Driver, everything, keys, outbound

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def grant(d: Driver, handle: str, kind: str | None = None, value: str = "", channel: str | None = None) -> None:
    with d.session() as s:
        person = s.scalar(select(Person).where(Person.handle == handle))
        conv = s.scalar(select(Conversation).where(Conversation.name == channel)) if channel else None
        s.add(Role(person_id=person.id, role="referent", conversation_id=conv.id if conv else None, scope_kind=kind,
                   scope_value=value, created_at=d.clock.now()))


def pings(d: Driver, handle: str) -> list[tuple[str, dict[str, object]]]:
    with d.session() as s:
        rows = s.execute(select(Notification.key, Notification.params).join(Person, Person.id == Notification.person_id)
                         .where(Person.handle == handle).order_by(Notification.id))
        return [(k, p) for k, p in rows]


def routed_to(d: Driver, number: int) -> tuple[str, str]:
    with d.session() as s:
        row = s.scalar(select(Suggestion).where(Suggestion.number == number))
        return row.route, row.route_value


def test_department_referent_receives_takes_answers_and_the_author_hears_each_step(d: Driver) -> None:
    # An admin names alice (Marketing) référent of the Sales department.
    assert keys(d.say("camille", "dm", "role add @alice referent department Sales")) == ["roles.added"]
    # nathan is in Sales (demo); #general has no référent: the department's référent receives it.
    effects = d.say("nathan", "#general", "suggest A shared calendar of customer visits")
    filed = outbound(effects, "suggestions.filed")
    assert filed.private_for is not None and "Alice" in filed.reply.text and "#general" in filed.reply.text
    assert routed_to(d, 1) == ("department", "Sales")
    assert [k for k, _ in pings(d, "alice")] == ["suggestions.notify.new"]
    assert pings(d, "alice")[0][1]["author"] == "Nathan Simon"
    d.clock.advance(timedelta(minutes=30))
    [dm] = [e for e in d.job("notifications.flush") if isinstance(e, Outbound) and e.to.id == "alice"]
    assert "customer visits" in everything([dm]) and "Nathan Simon" in everything([dm])
    assert dm.reply.card is not None
    commands = [a.command for a in dm.reply.card.actions]
    assert commands[:2] == ["suggestion take 1", "suggestion answer 1"] and "suggestion decline 1" in commands
    assert keys(d.say("thomas", "dm", "suggestion take 1")) and \
        keys(d.say("thomas", "dm", "suggestion take 1")) == ["suggestions.not_found"]  # an outsider cannot even see it
    assert keys(d.say("nathan", "dm", "suggestion take 1")) == ["suggestions.not_handler"]
    assert keys(d.say("alice", "dm", "suggestion take 1")) == ["suggestions.taken"]
    assert keys(d.say("alice", "dm", "suggestion take 1")) == ["suggestions.already_yours"]
    assert keys(d.say("alice", "dm", "suggestion answer 1")) == ["suggestions.answer_form"]
    assert keys(d.say("alice", "dm", "suggestion answer 1 Good idea, it is in the CRM from Monday")) == ["suggestions.answered"]
    assert keys(d.say("alice", "dm", "suggestion done 1")) == ["suggestions.closed"]
    assert keys(d.say("alice", "dm", "suggestion decline 1 too late")) == ["suggestions.already_done"]
    heard = pings(d, "nathan")
    assert [k for k, _ in heard] == ["suggestions.notify.taken", "suggestions.notify.answered", "suggestions.notify.done"]
    assert "CRM from Monday" in str(heard[1][1]["answer"])
    d.clock.advance(timedelta(minutes=30))
    told = everything([e for e in d.job("notifications.flush") if isinstance(e, Outbound) and e.to.id == "nathan"])
    assert "CRM from Monday" in told and "Alice" in told  # the author reads the answer, in his grouped DM
    listed = d.say("nathan", "dm", "suggestions")
    assert keys(listed) == ["suggestions.list"] and "customer visits" in everything(listed)
    handled = d.say("alice", "dm", "suggestions")
    assert "Nathan" in everything(handled)
    with d.session() as s:
        actions = list(s.scalars(select(AuditLog.action).order_by(AuditLog.id)))
    assert actions == ["role.add", "suggestion.answered", "suggestion.done"]


def test_fallbacks_are_said_channel_then_department_then_site_then_admins(d: Driver) -> None:
    # #sales has a référent (sophie): the channel's comes first.
    filed = outbound(d.say("thomas", "#sales", "suggest Pin the price list"), "suggestions.filed")
    assert "Sophie" in filed.reply.text and routed_to(d, 1) == ("channel", "sales")
    # In a DM, nathan (Sales, Paris): no department référent, a site référent of Paris.
    grant(d, "emma", "site", "Paris")
    filed = outbound(d.say("nathan", "dm", "suggest More meeting rooms"), "suggestions.filed")
    assert routed_to(d, 2) == ("site", "Paris")
    assert "Le service Sales n'a pas de référent" in filed.reply.text and "Emma" in filed.reply.text  # nathan reads French
    # A person without a department or site, nobody else: the admins, and it says why.
    with d.session() as s:
        s.scalar(select(Person).where(Person.handle == "hugo")).department = ""
    filed = outbound(d.say("hugo", "dm", "suggest A quieter open space"), "suggestions.filed")
    assert routed_to(d, 3) == ("admins", "")  # hugo works in London: no site référent either
    assert "Votre profil n'indique pas de service" in filed.reply.text and "London" in filed.reply.text
    assert "Camille" in filed.reply.text


def test_admins_fallback_and_anonymous_suggestion_is_audited_when_revealed(d: Driver) -> None:
    filed = outbound(d.say("lucas", "dm", "suggest anon Fewer meetings on Fridays"), "suggestions.filed_anon")
    assert routed_to(d, 1) == ("admins", "")
    assert "Camille" in filed.reply.text
    new = pings(d, "camille")
    assert new and new[0][1]["author"] != "Lucas Petit" and "Lucas" not in json.dumps(new, ensure_ascii=False)
    shown = d.say("camille", "dm", "suggestion show 1")
    assert "Lucas" not in everything(shown)
    assert keys(d.say("thomas", "dm", "suggestion author 1")) == ["error.not_allowed"]
    revealed = d.say("camille", "dm", "suggestion author 1")
    assert keys(revealed) == ["suggestions.author_is"] and "Lucas" in everything(revealed)
    with d.session() as s:
        assert s.scalar(select(AuditLog.action).where(AuditLog.action == "suggestion.author_revealed")) is not None
    # the author still hears back
    d.say("camille", "dm", "suggestion decline 1 We need the Friday reviews")
    assert [k for k, _ in pings(d, "lucas")] == ["suggestions.notify.declined"]


def test_bad_input(d: Driver) -> None:
    assert keys(d.say("thomas", "dm", "suggest")) == ["suggestions.form"]
    assert keys(d.say("thomas", "dm", "suggest ab")) == ["suggestions.text_required"]
    assert keys(d.say("thomas", "dm", "suggest " + "x" * 2500)) == ["error.too_long"]  # the core's argument limit
    assert keys(d.say("thomas", "dm", "suggestion take")) == ["error.missing_argument"]
    assert keys(d.say("thomas", "dm", "suggestion take the first")) == ["suggestions.id_required"]
    assert keys(d.say("thomas", "dm", "suggestion take 99")) == ["suggestions.not_found"]
    assert keys(d.say("camille", "dm", "suggestion decline 99")) == ["suggestions.not_found"]


def test_user_text_never_pings(d: Driver) -> None:
    """The suggestion's text reaches the référent's grouped DM with its @mention as a name, never a ping."""
    d.say("thomas", "#sales", "suggest ask @julien and <!channel> about the price list")
    d.clock.advance(timedelta(minutes=30))
    dms = [e for e in d.job("notifications.flush") if isinstance(e, Outbound) and e.to.id == "sophie"]
    assert dms, "sophie got no DM"
    text = everything(dms)
    assert "price list" in text and "<!channel>" in text  # literal: the adapters escape it
    kinds = {kind for dm in dms for kind, _ in split_markers(dm.reply.text)}
    assert "ping" not in kinds and "user" in kinds  # @julien is named, not pinged


def test_escalates_once_after_the_working_days(d: Driver) -> None:
    d.say("thomas", "#sales", "suggest Pin the price list")          # #1 to sophie, waits
    d.say("thomas", "#sales", "suggest Archive the old tenders")     # #2 to sophie, she takes it
    d.say("sophie", "dm", "suggestion take 2")
    d.clock.advance(timedelta(days=2))
    assert d.job("suggestions.escalate") == []
    d.clock.advance(timedelta(days=3))  # Monday + 5 days: past 3 working days
    d.job("suggestions.escalate")
    d.job("suggestions.escalate")
    assert [k for k, p in pings(d, "camille")] == ["suggestions.notify.escalated"]
    assert [k for k, _ in pings(d, "thomas")] == ["suggestions.notify.taken", "suggestions.notify.escalated_author"]
    # the admin now handles it
    assert keys(d.say("camille", "dm", "suggestion take 1")) == ["suggestions.taken"]


@pytest.mark.postgresql_only
def test_escalation_is_claimed_once_by_two_processes(d: Driver, services: Services, db_url: str) -> None:
    for i in range(30):
        d.say("thomas", "#sales", f"suggest Improvement number {i}")
    due = (services.clock.now() + timedelta(days=7)).isoformat()
    start_at = time.time() + 3.0
    workers = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "referents_worker.py"), db_url, due, str(start_at)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    escalated: list[int] = []
    spans = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        escalated += [line["thread"] for line in lines if "thread" in line]
        spans.append(next(line for line in lines if "started" in line))
    assert max(s["started"] for s in spans) < min(s["ended"] for s in spans), "the workers did not run at the same time"
    assert len(escalated) == 30 and len(set(escalated)) == 30
    with d.session() as s:
        assert len(list(s.scalars(select(AuditLog.id).where(AuditLog.action == "suggestion.escalated")))) == 30
        rows = list(s.scalars(select(Notification.thread_key).join(Person, Person.id == Notification.person_id)
                              .where(Person.handle == "camille", Notification.key == "suggestions.notify.escalated")))
        assert sorted(rows) == sorted(f"suggestion:{i}:escalated" for i in range(1, 31))


def test_teams_message_action_sends_the_message_as_a_suggestion(bot: Bot, settings) -> None:  # type: ignore[no-untyped-def]
    """Teams' "Send as a suggestion" (a message extension action): the invoke is answered with an
    empty 200 (its dialog closes), written to the inbox, and the message becomes a suggestion."""
    import asyncio

    from tests.teams_mock import MockConnector, channel_message
    from tests.test_teams_http import drained, local, post, serving

    tenant = "tenant-suggest"
    with bot.services.db.session(tenant) as s:
        from store.people import ensure_workspace

        ensure_workspace(s, tenant, "teams", "en")
        s.add(Person(external_id="29:camille", handle="camille", display_name="Camille Bernard"))

    async def run() -> list[int]:
        mock = MockConnector()
        service = await mock.start()
        try:
            async with serving(bot, local(settings)) as (url, _):
                invoke = channel_message(service, tenant, "29:ana", "19:general@thread.tacv2", "", "act-1", mention_bot=False,
                                         name="Ana")
                invoke.update(type="invoke", name="composeExtension/submitAction", value={
                    "commandId": "suggest", "commandContext": "message", "data": {"text": ""},
                    "messagePayload": {"id": "1763000000111", "body": {"contentType": "html",
                                                                        "content": "<p>Let us <b>share</b> the &lt;pricing&gt; grid</p>"},
                                       "linkToMessage": "https://teams.microsoft.com/l/message/19:general/1763000000111"}})
                other = dict(invoke, id="act-2", name="adaptiveCard/action", value={"action": {"type": "Action.Execute"}})
                statuses = [await post(url, invoke), await post(url, other)]
                await drained(url)
        finally:
            await mock.stop()
        return statuses

    assert asyncio.run(run()) == [200, 501]
    with bot.services.db.session(tenant) as s:
        row = s.scalar(select(Suggestion))
        assert row is not None and row.text == "Let us share the <pricing> grid" and row.route == "admins"
        assert row.permalink.startswith("https://teams.microsoft.com/")


def test_slack_message_shortcut_sends_the_message_as_a_suggestion(bot: Bot) -> None:
    """Slack's "Send as a suggestion" on a message in #sales: signed, written to the inbox, and
    the message (its Slack markup read back as text) becomes a suggestion for #sales' référent;
    the author's confirmation is private."""
    from tests.conftest import spec_file
    from tests.harness.slack import TEAM, SlackHarness, channel_id, user_id

    harness = SlackHarness(bot, spec_file("slack-web-openapi-v2.json"))
    try:
        server = harness.server
        payload = {"type": "message_action", "callback_id": "causette_suggest", "team": {"id": TEAM, "domain": "demo"},
                   "user": {"id": user_id("thomas"), "username": "thomas", "team_id": TEAM}, "api_app_id": "A0CAUSETTE",
                   "token": "legacy", "trigger_id": "77.trigger", "response_url": server.mock.response_url("sc1"),
                   "channel": {"id": channel_id("sales"), "name": "sales"}, "message_ts": "1763000000.000900",
                   "message": {"type": "message", "user": user_id("lucas"), "ts": "1763000000.000900",
                               "text": "We should pin the &lt;2026&gt; price list for <@" + user_id("julien") + ">"}}
        assert server.post_interactive(payload).status == 200
        server.drain()
        assert server.post_interactive(payload).status == 200  # Slack's retry: nothing more
        server.drain()
        with bot.services.db.session(TEAM) as s:
            rows = list(s.scalars(select(Suggestion)))
            assert len(rows) == 1 and rows[0].route == "channel" and rows[0].text.startswith("We should pin the <2026> price list")
            author = s.get(Person, rows[0].author_id)
            assert author is not None and author.handle == "thomas"
        answers = [c for c in server.mock.calls if c.method in ("response_url", "chat.postEphemeral")]
        assert answers and all(c.args.get("response_type", "ephemeral") == "ephemeral" for c in answers)
        assert server.mock.violations == []
    finally:
        harness.close()
