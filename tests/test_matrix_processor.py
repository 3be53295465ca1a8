"""The Matrix runtime's inbox processor (adapters/matrix/runtime.py `process_row`) without a
homeserver: rows as the sync loop writes them, the core, and what would be sent (the
sender's network calls replaced by a recorder)."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.matrix import forms
from adapters.matrix.runtime import MatrixRuntime
from bot.config import Settings
from bot.core import Bot
from bot.types import ConversationRef, Effect, Form, FormField, Outbound, ReactionAdded
from store.inbox import Claimed

ROOM = {"id": "!general:example.org", "kind": "public", "name": "general", "names": {}, "members": []}
DM = {"id": "!dm-sophie:example.org", "kind": "dm", "name": "", "names": {}, "members": []}
SOPHIE = "@sophie:example.org"


class Recorder:
    def __init__(self) -> None:
        self.effects: list[Effect] = []
        self.posted: list[tuple[str, dict[str, Any]]] = []


@pytest.fixture
def runtime(bot: Bot, settings: Settings, tmp_path: Path) -> tuple[MatrixRuntime, Recorder]:
    s = settings.model_copy(update={"matrix_homeserver": "http://127.0.0.1:9", "matrix_user_id": "@causette:example.org",
                                    "matrix_password": "x", "matrix_store_path": str(tmp_path / "store")})
    rt = MatrixRuntime(bot, s)
    rec = Recorder()

    def deliver(effects: Any, actor: str | None = None) -> None:
        rec.effects.extend(effects)

    async def send(room_id: str, content: Any) -> str:
        rec.posted.append((room_id, dict(content)))
        return f"$sent{len(rec.posted)}"

    rt.deliver = deliver  # type: ignore[method-assign]
    rt.call = lambda factory, timeout=0: asyncio.run(factory())  # type: ignore[method-assign, assignment]
    rt.sender.send = send  # type: ignore[method-assign]
    rt.client = SimpleNamespace(rooms={}, invited_rooms={}, olm=None)
    return rt, rec


def row(room: dict[str, Any], event: dict[str, Any], n: int = 1) -> Claimed:
    return Claimed(n, "matrix", str(event.get("type")), "example.org", room["id"],
                   json.dumps({"room": room, "event": event}), 0, "t", datetime.now(timezone.utc))


def text(body: str, eid: str, sender: str = SOPHIE, **content: Any) -> dict[str, Any]:
    return {"type": "m.room.message", "event_id": eid, "sender": sender, "origin_server_ts": 1764547200000,
            "content": {"msgtype": "m.text", "body": body, **content}}


def keys(rec: Recorder) -> list[str]:
    return [e.reply.key for e in rec.effects if isinstance(e, Outbound)]


def test_a_command_is_answered_and_its_row_finished(runtime: tuple[MatrixRuntime, Recorder]) -> None:
    rt, rec = runtime
    finished: list[Any] = []
    rt.process_row(row(ROOM, text("!causette help", "$e1")), finished.append)
    assert "help.overview" in keys(rec) and len(finished) == 1
    assert rt._flag("$e1").is_set()  # wait_for("$e1") returns at once


def test_a_keycap_reaction_or_a_numbered_reply_to_a_card_runs_its_command(runtime: tuple[MatrixRuntime, Recorder]) -> None:
    rt, rec = runtime
    rt.remember_card(ROOM["id"], "$card", ["help", "kudos list"])
    react = {"type": "m.reaction", "event_id": "$r1", "sender": SOPHIE,
             "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$card", "key": "1\ufe0f\u20e3"}}}
    rt.process_row(row(ROOM, react), lambda s: None)
    assert keys(rec) == ["help.overview"]
    rec.effects.clear()
    rt.process_row(row(ROOM, text("2", "$e2", **{"m.relates_to": {"m.in_reply_to": {"event_id": "$card"}}})), lambda s: None)
    assert keys(rec) and keys(rec)[0].startswith("kudos")
    rec.effects.clear()
    rt.process_row(row(ROOM, text("2", "$e3")), lambda s: None)  # a bare number in a room is just a message
    assert keys(rec) == []


def test_an_ordinary_reaction_is_remembered_so_its_redaction_removes_it(runtime: tuple[MatrixRuntime, Recorder],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    rt, _rec = runtime
    handled: list[Any] = []
    original = rt.bot.handle

    def spy(event: Any, **kw: Any) -> Any:
        handled.append(event)
        return original(event, **kw)

    monkeypatch.setattr(rt.bot, "handle", spy)
    rt.process_row(row(ROOM, text("#kubernetes rocks", "$m1")), lambda s: None)
    react = {"type": "m.reaction", "event_id": "$r2", "sender": "@julien:example.org",
             "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$m1", "key": "👍"}}}
    rt.process_row(row(ROOM, react), lambda s: None)
    assert rt.state.get_json("reaction:$r2") == ["$m1", "👍", "@julien:example.org"]
    redact = {"type": "m.room.redaction", "event_id": "$x", "sender": "@julien:example.org", "redacts": "$r2", "content": {}}
    rt.process_row(row(ROOM, redact), lambda s: None)
    last = handled[-1]
    assert isinstance(last, ReactionAdded) and last.removed and last.message_id == "$m1"
    assert rt.state.get("reaction:$r2") is None


def test_a_form_is_answered_in_the_direct_chat_then_submitted_where_it_was_opened(runtime: tuple[MatrixRuntime, Recorder]) -> None:
    rt, rec = runtime
    form = Form(title="Submit an idea", submit_command="idea submit", fields=(
        FormField("title", "Title", required=True, max_length=200), FormField("details", "Details", kind="multiline"),
        FormField("anonymous", "Post anonymously", kind="checkbox")))
    origin = ConversationRef("matrix", "example.org", ROOM["id"], "public", name="general")
    rt.state.put("form:" + SOPHIE, forms.dumps(forms.FormSession.start(form, DM["id"], origin)))
    rt.process_row(row(DM, text("Better coffee", "$a1")), lambda s: None)
    assert rec.posted[-1][0] == DM["id"] and "question 2 of 3" in rec.posted[-1][1]["body"]
    rt.process_row(row(DM, text("-", "$a2")), lambda s: None)
    rt.process_row(row(DM, text("maybe", "$a3")), lambda s: None)  # refused, asked again
    assert "yes or no" in rec.posted[-1][1]["body"] and "question 3 of 3" in rec.posted[-1][1]["body"]
    assert rec.effects == []
    rt.process_row(row(DM, text("no", "$a4")), lambda s: None)
    assert rt.state.get("form:" + SOPHIE) is None
    cards = [e for e in rec.effects if isinstance(e, Outbound) and e.reply.key == "idea.card"]
    assert cards and cards[0].to.id == ROOM["id"]


def test_a_number_in_reply_to_a_card_presses_it_even_with_a_form_in_progress(runtime: tuple[MatrixRuntime, Recorder]) -> None:
    """A person opens a questionnaire, then presses the card's button again by replying to the
    card with its number: that reply is a press (it names the card it answers), not the answer
    to the form's first question; a bare number still answers the form."""
    rt, rec = runtime
    form = Form(title="Pulse", submit_command="idea submit", fields=(
        FormField("q1", "How?", kind="select", options=(("1", "bad"), ("2", "good"))), FormField("title", "Title")))
    rt.state.put("form:" + SOPHIE, forms.dumps(forms.FormSession.start(form, DM["id"], ConversationRef(
        "matrix", "example.org", DM["id"], "dm"))))
    rt.remember_card(DM["id"], "$card", ["help"])
    rt.process_row(row(DM, text("1", "$p1", **{"m.relates_to": {"m.in_reply_to": {"event_id": "$card"}}})), lambda s: None)
    assert keys(rec) == ["help.overview"]
    session = forms.loads(rt.state.get("form:" + SOPHIE) or "")
    assert session is not None and session.index == 0  # the form still waits for its first answer
    rt.process_row(row(DM, text("2", "$p2")), lambda s: None)
    session = forms.loads(rt.state.get("form:" + SOPHIE) or "")
    assert session is not None and session.values == {"q1": "2"} and "question 2 of 2" in rec.posted[-1][1]["body"]


def test_cancel_stops_a_form_and_a_command_in_the_dm_still_runs(runtime: tuple[MatrixRuntime, Recorder]) -> None:
    rt, rec = runtime
    form = Form(title="Suggest", submit_command="idea submit", fields=(FormField("title", "Title", required=True),))
    origin = ConversationRef("matrix", "example.org", DM["id"], "dm")
    rt.state.put("form:" + SOPHIE, forms.dumps(forms.FormSession.start(form, DM["id"], origin)))
    rt.process_row(row(DM, text("!causette help", "$c1")), lambda s: None)  # the prefix: a command, the form waits
    assert "help.overview" in keys(rec) and rt.state.get("form:" + SOPHIE) is not None
    rt.process_row(row(DM, text("annuler", "$c2")), lambda s: None)
    assert rt.state.get("form:" + SOPHIE) is None and "Stopped" in rec.posted[-1][1]["body"]


def test_a_429_waits_its_retry_after_then_a_long_one_or_a_5xx_is_left_to_the_outbox(bot: Bot, settings: Settings,
                                                                                    tmp_path: Path) -> None:
    from nio import RoomSendError, RoomSendResponse

    from adapters.matrix.sender import Refused
    from bot.delivery import DeliveryFailed

    s = settings.model_copy(update={"matrix_homeserver": "http://127.0.0.1:9", "matrix_user_id": "@causette:example.org",
                                    "matrix_password": "x", "matrix_store_path": str(tmp_path / "store")})
    rt = MatrixRuntime(bot, s)
    answers: list[Any] = []
    calls: list[dict[str, Any]] = []

    async def room_send(room_id: str, kind: str, content: Any, ignore_unverified_devices: bool = False) -> Any:
        assert ignore_unverified_devices
        calls.append(content)
        return answers.pop(0)

    rt.client = SimpleNamespace(rooms={"!r": object()}, room_send=room_send)
    content = {"msgtype": "m.notice", "body": "hi"}
    answers[:] = [RoomSendError("slow down", "M_LIMIT_EXCEEDED", 20), RoomSendResponse("$ok", "!r")]
    assert asyncio.run(rt.sender.send("!r", content)) == "$ok" and len(calls) == 2
    answers[:] = [RoomSendError("slow down", "M_LIMIT_EXCEEDED", 60_000)]
    with pytest.raises(DeliveryFailed) as failed:
        asyncio.run(rt.sender.send("!r", content))
    assert failed.value.retry_after == 60.0
    answers[:] = [RoomSendError("busy", "M_UNKNOWN")]
    with pytest.raises(DeliveryFailed):
        asyncio.run(rt.sender.send("!r", content))
    answers[:] = [RoomSendError("not in room", "M_FORBIDDEN")]
    with pytest.raises(Refused):  # logged and counted as done by `deliver`
        asyncio.run(rt.sender.send("!r", content))


def test_an_event_undecryptable_on_arrival_is_handled_once_its_key_comes(runtime: tuple[MatrixRuntime, Recorder]) -> None:
    rt, _rec = runtime
    room = SimpleNamespace(room_id=ROOM["id"], users={SOPHIE: SimpleNamespace(display_name="Sophie")}, invited_users={},
                           name="general", canonical_alias=None, join_rule="public")
    key_arrived: list[bool] = []
    encrypted = SimpleNamespace(event_id="$enc", sender=SOPHIE, session_id="s1")

    def decrypt_event(event: Any) -> Any:
        if not key_arrived:
            raise ValueError("no session")
        return SimpleNamespace(source=text("!causette help", "$enc"))

    rt.client = SimpleNamespace(rooms={ROOM["id"]: room}, decrypt_event=decrypt_event, olm=None)
    rt._undecrypted["$enc"] = (ROOM["id"], encrypted, __import__("time").monotonic())
    assert rt._decrypted_late() == [] and "$enc" in rt._undecrypted
    key_arrived.append(True)
    rows = rt._decrypted_late()
    assert [r[0] for r in rows] == ["matrix:$enc"] and "$enc" not in rt._undecrypted
    payload = json.loads(rows[0][2])
    assert payload["event"]["content"]["body"] == "!causette help" and payload["room"]["kind"] == "public"


def test_a_syncs_events_and_the_token_after_them_commit_together(runtime: tuple[MatrixRuntime, Recorder],
                                                                 bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync loop's write (runtime `_write`): the events to the inbox and the sync token in
    one transaction. A failure before the commit leaves neither (the batch is replayed, from the
    old token); the replay writes them once; a second replay writes nothing new."""
    from adapters.server import Pipeline
    from store import inbox as inbox_store

    rt, _rec = runtime
    rt.pipeline = Pipeline(bot, threads=1)  # not started: the rows stay pending
    rows = [(f"matrix:$w{n}", "m.room.message", json.dumps({"room": ROOM, "event": text("hello", f"$w{n}")}), ROOM["id"])
            for n in (1, 2)]
    real = rt.state.put_all_in

    def failing(session: Any, values: dict[str, str]) -> None:
        raise RuntimeError("killed before the token")

    monkeypatch.setattr(rt.state, "put_all_in", failing)
    with pytest.raises(RuntimeError):
        rt._write(rows, "s2")
    now = datetime.now(timezone.utc)
    assert inbox_store.stats(bot.services.db, now).pending == 0 and rt.state.get("sync_token") is None
    monkeypatch.setattr(rt.state, "put_all_in", real)
    assert rt._write(rows, "s2") == [True, True]
    assert rt._write(rows, "s2") == [False, False]
    assert inbox_store.stats(bot.services.db, now).pending == 2 and rt.state.get("sync_token") == "s2"
    assert rt._write([], "s3") == [] and rt.state.get("sync_token") == "s3"  # the token row updated in place
