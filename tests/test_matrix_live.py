"""Causette against a real Synapse (tests/matrix/homeserver.py), through real matrix-nio
clients: the homeserver as configured, encrypted rooms and direct chats, a restart of the bot
in the middle, and the issue's bad input as the server really delivers it."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.matrix.homeserver import Homeserver, MatrixError


def test_homeserver_rate_limits_are_relaxed(matrix_homeserver: Homeserver) -> None:
    """Misspelled rc_* keys are silently ignored by Synapse: a burst of everything the tests do
    (registrations, logins, room creations, joins, invites, messages) gets no 429."""
    hs = matrix_homeserver
    try:
        with ThreadPoolExecutor(4) as pool:
            users = list(pool.map(lambda i: hs.register(f"burst{i}"), range(15)))
        owner = users[0]
        for _ in range(8):
            hs.login(owner.localpart, owner.password)
        rooms = [hs.api("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"}, token=owner.access_token)["room_id"]
                 for _ in range(12)]
        for user in users[1:]:
            hs.api("POST", f"/_matrix/client/v3/rooms/{rooms[0]}/invite", {"user_id": user.user_id}, token=owner.access_token)
        for user in users[1:]:
            hs.api("POST", f"/_matrix/client/v3/join/{rooms[0]}", {}, token=user.access_token)
        for i in range(15):  # Synapse's default rc_message: a burst of 10, then one every 5 s
            hs.api("PUT", f"/_matrix/client/v3/rooms/{rooms[0]}/send/m.room.message/burst{i}",
                   {"msgtype": "m.text", "body": f"burst {i}"}, token=owner.access_token)
    except MatrixError as exc:
        raise AssertionError(f"the homeserver refused a burst: {exc}") from None
    messages = hs.api("GET", f"/_matrix/client/v3/rooms/{rooms[0]}/messages?dir=b&limit=100", token=owner.access_token)
    assert sum(1 for e in messages["chunk"] if e["type"] == "m.room.message") == 15


# The bot live ----------------------------------------------------------------------------------
import secrets  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Iterator  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy import select  # noqa: E402

from adapters.console.seed import seed_demo  # noqa: E402
from bot.clock import FixedClock  # noqa: E402
from bot.core import Bot  # noqa: E402
from tests.harness.matrix import BotRunner, server_time_as_test_clock  # noqa: E402
from store.models.social import Topic  # noqa: E402
from tests.matrix.world import Humans, Received, World  # noqa: E402


@pytest.fixture
def live(bot: Bot, clock: FixedClock, matrix_world: World, matrix_humans: Humans, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The demo organisation on the matrix platform, a new device of the bot with its store."""
    server_time_as_test_clock(monkeypatch, clock)
    seed_demo(bot, tenant=matrix_world.hs.server_name, platform="matrix", user_id=matrix_world.user_id,
              channel_id=matrix_world.channel_id)
    device = matrix_world.bot_device()
    runners: list[BotRunner] = []

    def start(**kw: Any) -> BotRunner:
        runner = BotRunner(bot, matrix_world, tmp_path / "bot-store", device=(device.access_token, device.device_id),
                           loop=matrix_humans.loop, **kw)
        runners.append(runner.start())
        return runner

    yield {"start": start, "device": device}
    for runner in runners:
        runner.stop()
    matrix_world.sign_out(device)


def _from_bot(world: World, room: str, since_ms: int) -> Any:
    """What the bot said in `room` since `since_ms` (its messages, read or not: not its own
    membership, a state event that is never encrypted; the room's own join falls in the
    second of grace when the test is quick, and a plaintext join is no unreadable answer)."""
    bot_id = world.bot.user_id  # type: ignore[union-attr]
    return lambda r: r.room_id == room and r.sender == bot_id and r.ts >= since_ms - 1000 \
        and r.type in ("m.room.message", "m.room.encrypted")


def _keys(runner: BotRunner) -> list[str]:
    return [o.reply.key for o, _ in runner.take()]


def test_encrypted_room_and_direct_chat_round_trip(live: dict[str, Any], matrix_world: World, matrix_humans: Humans) -> None:
    """Element's defaults: an encrypted room and an encrypted direct chat. The bot reads, answers
    encrypted, the person's client decrypts; the homeserver holds only ciphertext."""
    world, humans = matrix_world, matrix_humans
    runner = live["start"]()
    sophie, thomas = world.accounts["sophie"], world.accounts["thomas"]
    room = world.create_room(sophie, "e2ee-" + secrets.token_hex(3), [thomas], encrypted=True)
    edith = world.hs.register("edith" + secrets.token_hex(3), displayname="Edith")
    dm = world.open_dm(edith, encrypted=True)
    runner.settle()  # the bot sees the new rooms (and welcomes itself in)
    runner.take()
    for who, account, where, text in (("sophie", sophie, room, "!causette help"), ("edith", edith, dm, "help")):
        human = humans[who] if who in world.accounts else humans.add(who + account.localpart, account)
        humans.run(human.sync(0))
        started = int(time.time() * 1000)
        eid = humans.run(human.send(where, text))
        runner.wait_for(eid)
        assert _keys(runner) == ["help.overview"], f"{who} in {where}"
        answer = _from_bot(world, where, started)
        got: list[Received] = humans.run(human.wait_for(lambda r: answer(r) and r.decrypted))
        assert got[0].decrypted and got[0].content.get("msgtype") == "m.notice" and got[0].body
        stored = world.hs.api("GET", f"/_matrix/client/v3/rooms/{where}/event/{got[0].event_id}", token=account.access_token)
        assert stored["type"] == "m.room.encrypted" and "body" not in stored["content"]


def _restart(live: dict[str, Any], world: World, humans: Humans) -> tuple[Any, Any, list[Received]]:
    """Stopped and started again with the same database, store and device, with two messages
    sent while it was down; returns (the human, the running bot, the bot's answers received)."""
    sophie, thomas = world.accounts["sophie"], world.accounts["thomas"]
    room = world.create_room(sophie, "restart-" + secrets.token_hex(3), [thomas], encrypted=True)
    first = live["start"]()
    first.settle()
    first.take()
    identity = first.runtime.client.olm.account.identity_keys
    human = humans["sophie"]
    humans.run(human.sync(0))
    eid = humans.run(human.send(room, "!causette help"))
    first.wait_for(eid)
    assert _keys(first) == ["help.overview"]
    first.stop()
    started = int(time.time() * 1000)
    while_down = [humans.run(human.send(room, text)) for text in ("!causette help", "!causette aide")]
    second = live["start"]()
    client = second.runtime.client
    assert (client.device_id, client.olm.account.identity_keys) == (live["device"].device_id, identity), \
        "the restarted bot is not the same device with the same keys (its store was not reloaded)"
    for eid in while_down:
        second.wait_for(eid)
    assert _keys(second) == ["help.overview", "help.overview"]
    eid = humans.run(human.send(room, "!causette help"))  # and it goes on
    second.wait_for(eid)
    assert _keys(second) == ["help.overview"]
    humans.run(human.wait_for(_from_bot(world, room, started), count=3))
    humans.run(human.sync(0))
    return human, second, [r for r in human.received.values() if _from_bot(world, room, started)(r)]


def test_restart_in_the_middle(live: dict[str, Any], matrix_world: World, matrix_humans: Humans) -> None:
    """Nothing already answered is answered again; what was sent while the bot was down is
    answered once (three answers reach the room: two for the messages of the pause, one after)."""
    _human, _bot, answers = _restart(live, matrix_world, matrix_humans)  # the bot's own counts are exact there
    assert len(answers) >= 3, f"an answer did not reach the room: {answers}"


def test_restart_keeps_the_encrypted_room_readable(live: dict[str, Any], matrix_world: World,
                                                   matrix_humans: Humans) -> None:
    """After a restart the bot is the same device with the same keys (its store reloaded); its
    new outbound session is shared with the person's device before its first answer, and every
    answer it posts is readable by the person's client (decrypted, as Element shows it)."""
    human, _bot, answers = _restart(live, matrix_world, matrix_humans)
    humans = matrix_humans
    ids = [r.event_id for r in answers]
    for _ in range(10):  # a room key sent just before its message may come a sync later, as in Element
        if all(human.received[i].decrypted for i in ids):
            break
        humans.run(human.sync(1000))
    answers = [human.received[i] for i in ids]
    unread = []
    for r in answers:
        if r.decrypted:
            continue
        raw = matrix_world.hs.api("GET", f"/_matrix/client/v3/rooms/{r.room_id}/event/{r.event_id}",
                                  token=human.account.access_token)
        why = ""
        if r.event_id in human._undecrypted:
            try:
                human.client.decrypt_event(human._undecrypted[r.event_id])
            except Exception as exc:  # noqa: BLE001 - said in the failure
                why = repr(exc)
        unread.append((r.event_id, r.type, raw.get("type"), raw.get("content", {}).get("session_id"),
                       raw.get("content", {}).get("device_id"), why))
    assert len(answers) >= 3 and not unread, \
        f"the person's client cannot read {len(unread)} of {len(answers)} answers: {unread}"


def test_bad_input_from_the_real_server(live: dict[str, Any], matrix_world: World, matrix_humans: Humans) -> None:
    world, humans = matrix_world, matrix_humans
    hs = world.hs
    runner = live["start"]()
    room = world.rooms["engineering"]
    lucas = humans["lucas"]

    def send(text: str, **kw: Any) -> str:
        eid = humans.run(lucas.send(room, text, **kw))
        runner.wait_for(eid)
        return eid

    # The bot's own message is never answered.
    bot_token = live["device"].access_token
    own = hs.api("PUT", f"/_matrix/client/v3/rooms/{room}/send/m.room.message/own{secrets.token_hex(4)}",
                 {"msgtype": "m.text", "body": "!causette help"}, token=bot_token)["event_id"]
    runner.wait_for(own)
    assert _keys(runner) == []
    # A message near the homeserver's 64 KB event limit: handled, no crash, the bot goes on.
    send("!causette who knows " + "kubernetes " * 5800)
    runner.take()
    # Hostile HTML in formatted_body: the bot reads the plain body, and renders nothing of it.
    started = int(time.time() * 1000)
    send("!causette idea <b>Bold</b> plan #ideas",
         formatted='!causette idea <img src=x onerror=alert(1)><script>alert(2)</script>'
                   '<a href="javascript:alert(3)">Bold</a> plan #ideas')
    seen = runner.take()
    assert seen and seen[0][0].reply.key == "idea.card"
    for _, content in seen:
        html = str(content.get("formatted_body", ""))
        assert "<script" not in html and "<img" not in html and "javascript:" not in html and "<b>" not in html
    assert any("&lt;b&gt;Bold&lt;/b&gt;" in str(content.get("formatted_body", "")) for _, content in seen)
    humans.run(lucas.wait_for(_from_bot(world, room, started)))
    # A redaction of an event the bot never recorded (a notice: the bot leaves other bots' posts
    # alone; Synapse refuses to redact an event id it does not know at all).
    notice = humans.run(lucas.send(room, "a notice", msgtype="m.notice"))
    redaction = hs.api("PUT", f"/_matrix/client/v3/rooms/{room}/redact/{notice}/r{secrets.token_hex(4)}",
                       {"reason": "test"}, token=world.accounts["lucas"].access_token)["event_id"]
    runner.wait_for(redaction)
    assert _keys(runner) == []
    # @room and a pill in user text: what the bot posts back notifies nobody.
    started = int(time.time() * 1000)
    thomas_pill = f'<a href="https://matrix.to/#/{world.user_id("thomas")}">Thomas Thomas</a>'
    send("!causette idea @room Thomas Thomas look at this #ideas",
         formatted=f"!causette idea @room {thomas_pill} look at this #ideas")
    seen = runner.take()
    assert seen
    for _, content in seen:
        mentions = content.get("m.mentions")
        assert mentions is not None and not mentions.get("room") and world.user_id("thomas") not in mentions.get("user_ids", [])
    got = humans.run(lucas.wait_for(_from_bot(world, room, started)))
    assert all(not (r.content.get("m.mentions") or {}).get("room") for r in got)
    # Still answering.
    send("!causette help")
    assert _keys(runner) == ["help.overview"]


def test_a_server_not_allowed_is_not_answered(live: dict[str, Any], matrix_world: World, matrix_humans: Humans) -> None:
    """One homeserver here: the allow-list names another, so its own people are 'foreign'."""
    runner = live["start"](allowed_servers="elsewhere.example")
    human = matrix_humans["lucas"]
    eid = matrix_humans.run(human.send(matrix_world.rooms["engineering"], "!causette help"))
    runner.wait_for(eid)
    assert _keys(runner) == []


def test_an_undecryptable_event_asks_for_the_keys(live: dict[str, Any], matrix_world: World, matrix_humans: Humans) -> None:
    """An encrypted event whose room key the bot never got (the sender's device withheld it):
    logged, the sender asked to re-share, never a crash; the bot goes on."""
    world, humans = matrix_world, matrix_humans
    sophie = world.accounts["sophie"]
    room = world.create_room(sophie, "withheld-" + secrets.token_hex(3), [world.accounts["thomas"]], encrypted=True)
    runner = live["start"]()
    runner.settle()
    runner.take()
    started = int(time.time() * 1000)
    bogus = {"algorithm": "m.megolm.v1.aes-sha2", "sender_key": "A" * 43, "device_id": sophie.device_id,
             "session_id": "B" * 43, "ciphertext": "AwgAEnB" + "C" * 100}
    eid = world.hs.api("PUT", f"/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/u{secrets.token_hex(4)}", bogus,
                       token=sophie.access_token)["event_id"]
    runner.wait_for(eid)
    human = humans["sophie"]
    humans.run(human.wait_for(_from_bot(world, room, started)))  # the request reached the room
    assert "matrix.reshare_keys" in _keys(runner)
    humans.run(human.sync(0))
    eid = humans.run(human.send(room, "!causette help"))
    runner.wait_for(eid)
    assert _keys(runner) == ["help.overview"]


def test_a_room_alias_is_not_a_hashtag(live: dict[str, Any], matrix_world: World, matrix_humans: Humans, bot: Bot) -> None:
    runner = live["start"]()
    lucas = matrix_humans["lucas"]
    tag = "zebra" + secrets.token_hex(2)

    def send(text: str) -> list[str]:
        eid = matrix_humans.run(lucas.send(matrix_world.rooms["engineering"], text))
        runner.wait_for(eid)
        return _keys(runner)

    send(f"Notes are in #opsroom{tag}:{matrix_world.hs.server_name} and about #{tag}")
    assert send(f"!causette topic #{tag}") == ["topic.card"]
    # (`topic #opsroom…` would answer the nearest topic by spelling: read the stored topics instead)
    with bot.services.db.session(matrix_world.hs.server_name, readonly=True) as session:
        keys = set(session.scalars(select(Topic.key).where(Topic.key.contains(tag))))
    assert keys == {tag}, f"a room alias was indexed as a hashtag: {keys}"
