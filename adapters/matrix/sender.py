"""Sending effects to Matrix, on the runtime's event loop (matrix-nio's AsyncClient).

- `Outbound` to a room: its reply rendered (adapters/matrix/render.py) in the language of the
  one locale rule (adapters/shell.py), posted as an `m.notice`; in a thread with `m.thread`;
  with an anchor, the earlier message is edited in place (`m.replace`).
- `Outbound.to=UserRef`: the person's direct chat, found (`dm:<user>` in matrix_state, the
  bot's `m.direct`) or created (`is_direct`, the person invited, encrypted like Element's).
- `Outbound.private_for` outside a direct chat (Matrix has no ephemeral message): the reply
  goes to the person's direct chat and a short acknowledgement (`matrix.private_ack`) to the room.
- A picture is uploaded (encrypted in an encrypted room) and posted as an `m.image`; an
  attachment as an `m.file`; a form starts a guided exchange in the reader's direct chat.
- `FetchHistory`, `SpaceChange`: explained to whom asked (`matrix.history_unavailable`,
  the approver's `manual_key`).
Every send is paced per room (`PACE_SECONDS` between two) and a 429 waits `retry_after_ms`
(up to RETRY_WAIT_MAX, then `DeliveryFailed` with that delay for the outbox to retry); 5xx and
connection errors are `DeliveryFailed` too; a refusal (not in the room, forbidden) is logged
and counts as done. Encrypted rooms are sent to with `ignore_unverified_devices=True`.

`observer(outbound, content)`, when given, sees every reply as rendered, before it is sent.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from adapters.matrix import forms
from adapters.matrix import render as rd
from adapters.shell import DeliveryShell
from bot.delivery import DeliveryFailed
from bot.text import marker_ids, ping_marker, reply_texts
from bot.types import ConversationRef, Effect, FetchHistory, Outbound, Reply, SpaceChange, UserRef

if TYPE_CHECKING:
    from adapters.matrix.runtime import MatrixRuntime

log = logging.getLogger("adapters.matrix")
Observer = Callable[[Outbound, Mapping[str, Any]], None]
PACE_SECONDS = 0.05
RETRY_WAIT_MAX = 10.0
RETRIES = 3
ROOM_WAIT_SECONDS = 10.0   # how long a new direct chat may take to appear in the sync
PERMANENT = frozenset({"M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN_TOKEN", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE",
                       "M_INVALID_PARAM", "M_UNRECOGNIZED"})


class Refused(Exception):
    """The homeserver refused for good (logged, counted as done)."""


class MatrixSender:
    def __init__(self, runtime: "MatrixRuntime", observer: Observer | None = None) -> None:
        self.runtime = runtime
        self.services = runtime.bot.services
        self.shell = DeliveryShell(self.services)
        self.observer = observer
        self._last_send: dict[str, float] = {}
        self._room_locks: dict[str, asyncio.Lock] = {}
        self._dm_locks: dict[str, asyncio.Lock] = {}

    @property
    def client(self) -> Any:
        return self.runtime.client

    # Entry point ---------------------------------------------------------------------------
    async def deliver(self, effects: Sequence[Effect], *, actor: str | None = None) -> None:
        """Send every effect; then raise DeliveryFailed naming those worth a retry. `actor`: who
        the effects answer (the reader of a form opened in a room)."""
        failed: list[DeliveryFailed] = []
        for effect in effects:
            try:
                if isinstance(effect, Outbound):
                    await self._outbound(effect, actor)
                elif isinstance(effect, FetchHistory):
                    await self._history_unavailable(effect)
                elif isinstance(effect, SpaceChange):
                    await self._space_by_hand(effect)
            except DeliveryFailed as exc:
                log.warning("matrix: delivery of %s failed for now: %s", type(effect).__name__, exc)
                failed.append(DeliveryFailed(str(exc), failed=(effect,), retry_after=exc.retry_after))
            except Refused as exc:
                log.warning("matrix: %s refused by the homeserver: %s", type(effect).__name__, exc)
            except (OSError, asyncio.TimeoutError) as exc:
                log.warning("matrix: delivery of %s failed for now: %r", type(effect).__name__, exc)
                failed.append(DeliveryFailed(f"matrix: {type(exc).__name__}", failed=(effect,)))
            except Exception:  # noqa: BLE001 - one failed delivery must not lose the rest
                log.exception("matrix: delivery of %s failed", type(effect).__name__)
        if failed:
            raise DeliveryFailed.merge(failed)

    async def _outbound(self, effect: Outbound, actor: str | None) -> None:
        to = effect.to
        if isinstance(to, UserRef):
            room = await self.direct_room(to)
            if room is None:
                raise Refused(f"no direct chat with {to.id}")
            await self._post(room, to.tenant, effect, reader=to.id, private=True, origin=None)
            return
        if effect.private_for is not None and to.kind != "dm":
            person = effect.private_for
            room = None
            try:
                room = await self.direct_room(person)
                if room is not None:
                    await self._post(room, person.tenant, effect, reader=person.id, private=True, origin=to)
            except Refused:
                room = None
            key = "matrix.private_ack" if room is not None else "matrix.private_unreachable"
            locale = await asyncio.to_thread(self.shell.locale, to.tenant, conversation_id=to.id, private=False)
            ack = Reply(text=self.services.prompts.t(locale, key, name=ping_marker(person.id)), key=key)
            await self._post(to.id, to.tenant, Outbound(ack, to, thread_id=effect.thread_id), reader=None,
                             private=False, origin=None, observe=False)
            return
        reader = actor if to.kind == "dm" else None
        await self._post(to.id, to.tenant, effect, reader=reader, private=to.kind == "dm", origin=to, actor=actor)

    async def _history_unavailable(self, effect: FetchHistory) -> None:
        person, conv = effect.requested_by, effect.conversation
        locale = await asyncio.to_thread(self.shell.locale, conv.tenant, person.id if person else None, conv.id,
                                         private=person is not None)
        reply = Reply(text=self.services.prompts.t(locale, "matrix.history_unavailable"), key="matrix.history_unavailable")
        await self._outbound(Outbound(reply, person if person is not None else conv), None)

    async def _space_by_hand(self, effect: SpaceChange) -> None:
        person = effect.report_to
        if person is None or not effect.manual_key:
            return
        locale = await asyncio.to_thread(self.shell.locale, effect.channel.tenant, person.id, None, private=True)
        text = self.services.prompts.t(locale, effect.manual_key, **effect.params)
        await self._outbound(Outbound(Reply(text=text, key=effect.manual_key), person), None)

    # Rendering and posting -----------------------------------------------------------------
    async def render(self, reply: Reply, tenant: str, reader: str | None, room_id: str, *, private: bool) -> rd.Rendered:
        texts = reply_texts(reply)
        users, channels = marker_ids(texts)
        names = await asyncio.to_thread(self.shell.names, tenant, texts) if users or channels else rd.NO_NAMES
        t = self.shell.translator(tenant, reader, room_id, private=private)
        rendered = await asyncio.to_thread(rd.render, reply, names, t, self.runtime.view.prefix, rd.MAX_BYTES,
                                           self.services.settings.command_name)
        return rendered

    async def _post(self, room_id: str, tenant: str, effect: Outbound, *, reader: str | None, private: bool,
                    origin: ConversationRef | None, observe: bool = True, actor: str | None = None) -> str | None:
        rendered = await self.render(effect.reply, tenant, reader, room_id, private=private)
        content = rendered.content
        if observe and self.observer is not None:
            self.observer(effect, content)
        previous = await asyncio.to_thread(self.shell.anchor, tenant, effect.anchor, room_id) if effect.anchor else None
        if previous:
            await self.send(room_id, rd.edit_content(content, previous))
            sent = previous
        else:
            sent = await self.send(room_id, rd.in_thread(content, effect.thread_id) if effect.thread_id else content)
            if effect.anchor and sent:
                await asyncio.to_thread(self.shell.remember_anchor, tenant, effect.anchor, room_id, sent)
        if rendered.actions and sent:
            await asyncio.to_thread(self.runtime.remember_card, room_id, sent, rendered.actions)
        if rendered.picture is not None:
            await self._picture(room_id, rendered.picture, effect.thread_id)
        if rendered.attachment is not None:
            await self._attachment(room_id, *rendered.attachment, thread_id=effect.thread_id)
        if rendered.form is not None:
            who = reader or actor or (effect.private_for.id if effect.private_for else None)
            if who is None:
                log.warning("matrix: a form (%s) with no reader to ask; shown as text only", effect.reply.key)
            else:
                where = origin or ConversationRef(rd_platform(), tenant, room_id, "dm")
                await self.start_form(UserRef(rd_platform(), tenant, who), rendered.form, where, effect.thread_id)
        return sent

    async def _picture(self, room_id: str, picture: Any, thread_id: str | None) -> None:
        width = height = None
        try:
            from PIL import Image

            with Image.open(io.BytesIO(picture.png)) as img:
                width, height = img.size
        except Exception:  # noqa: BLE001 - sizes are optional
            pass
        url, keys = await self._upload(room_id, picture.png, "image/png", picture.filename)
        content = rd.image_content(picture.alt, url, len(picture.png), width, height, picture.filename, keys)
        await self.send(room_id, rd.in_thread(content, thread_id) if thread_id else content)

    async def _attachment(self, room_id: str, filename: str, data: bytes, *, thread_id: str | None) -> None:
        mimetype = "text/csv" if filename.endswith(".csv") else "application/json" if filename.endswith(".json") \
            else "application/octet-stream"
        url, keys = await self._upload(room_id, data, mimetype, filename)
        content = rd.file_content(filename, url, len(data), mimetype, keys)
        await self.send(room_id, rd.in_thread(content, thread_id) if thread_id else content)

    async def _upload(self, room_id: str, data: bytes, mimetype: str, filename: str) -> tuple[str, dict[str, Any] | None]:
        from nio import UploadResponse

        encrypted = self.runtime.is_encrypted(room_id)
        response, keys = await self.client.upload(io.BytesIO(data), content_type=mimetype, filename=filename,
                                                  encrypt=encrypted, filesize=len(data))
        if not isinstance(response, UploadResponse):
            self._raise_for(response, "upload")
        return response.content_uri, keys

    # Calls -----------------------------------------------------------------------------------
    async def send(self, room_id: str, content: Mapping[str, Any]) -> str:
        """Post one `m.room.message`, paced per room, retrying a short 429; the new event's id."""
        from nio import RoomSendResponse

        lock = self._room_locks.setdefault(room_id, asyncio.Lock())
        async with lock:
            for attempt in range(RETRIES + 1):
                wait = PACE_SECONDS - (time.monotonic() - self._last_send.get(room_id, 0.0))
                if wait > 0:
                    await asyncio.sleep(wait)
                await self.runtime.room_ready(room_id)
                response = await self.client.room_send(room_id, "m.room.message", dict(content),
                                                       ignore_unverified_devices=True)
                self._last_send[room_id] = time.monotonic()
                if isinstance(response, RoomSendResponse):
                    return response.event_id
                retry_ms = getattr(response, "retry_after_ms", None)
                if _is_rate_limited(response) and attempt < RETRIES and (retry_ms or 1000) / 1000 <= RETRY_WAIT_MAX:
                    log.info("matrix: 429 sending to %s; waiting %d ms", room_id, retry_ms or 1000)
                    await asyncio.sleep((retry_ms or 1000) / 1000)
                    continue
                self._raise_for(response, "send to " + room_id)
        raise DeliveryFailed("matrix: send retries spent")

    @staticmethod
    def _raise_for(response: Any, what: str) -> None:
        code = str(getattr(response, "status_code", "") or "")
        status = getattr(getattr(response, "transport_response", None), "status", None)
        retry_ms = getattr(response, "retry_after_ms", None)
        if _is_rate_limited(response):
            raise DeliveryFailed(f"matrix: {what}: 429", retry_after=(retry_ms or 1000) / 1000)
        if code in PERMANENT or (status is not None and 400 <= int(status) < 500):
            raise Refused(f"{what}: {code or status} {getattr(response, 'message', '')}"[:300])
        raise DeliveryFailed(f"matrix: {what}: {code or status or type(response).__name__}")

    # Direct chats ---------------------------------------------------------------------------
    async def direct_room(self, person: UserRef) -> str | None:
        """The direct chat with `person` (created, the person invited, when there is none)."""
        if person.id == self.runtime.view.user_id:
            return None
        lock = self._dm_locks.setdefault(person.id, asyncio.Lock())
        async with lock:
            room = self.runtime.known_direct_room(person.id)
            if room is not None:
                return room
            return await self.runtime.create_direct_room(person.id)

    # Forms --------------------------------------------------------------------------------
    async def start_form(self, person: UserRef, form: Any, origin: ConversationRef, thread_id: str | None) -> None:
        room = await self.direct_room(person)
        if room is None:
            log.warning("matrix: no direct chat with %s for form %r", person.id, form.title)
            return
        session = forms.FormSession.start(form, room, origin, thread_id)
        await asyncio.to_thread(self.runtime.state.put, "form:" + person.id, forms.dumps(session))
        await self.ask(person, session)

    async def ask(self, person: UserRef, session: forms.FormSession, error: tuple[str, Mapping[str, object]] | None = None) -> None:
        """The current question of `session` (after `error`, when the last answer was refused)."""
        t = self.shell.translator(person.tenant, person.id, session.room_id, private=True)
        text, key = await asyncio.to_thread(forms.question, session, t, self.runtime.view.prefix)
        if error is not None:
            text = t(error[0], **error[1]) + "\n" + text
            key = error[0]
        conv = ConversationRef(rd_platform(), person.tenant, session.room_id, "dm")
        await self._post(session.room_id, person.tenant, Outbound(Reply(text=text, key=key), conv), reader=person.id,
                         private=True, origin=None)

    async def say(self, person: UserRef, room_id: str, key: str, **params: object) -> None:
        """One adapter message (`key`) to `person` in `room_id`, in their language."""
        t = self.shell.translator(person.tenant, person.id, room_id, private=True)
        conv = ConversationRef(rd_platform(), person.tenant, room_id, "dm")
        await self._post(room_id, person.tenant, Outbound(Reply(text=t(key, **params), key=key), conv),
                         reader=person.id, private=True, origin=None)


def _is_rate_limited(response: Any) -> bool:
    status = getattr(getattr(response, "transport_response", None), "status", None)
    return getattr(response, "status_code", None) in ("M_LIMIT_EXCEEDED", 429) or status == 429


def rd_platform() -> str:
    return "matrix"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
