"""Effects → Slack Web API calls: messages, ephemerals, DMs, threads, in-place updates,
modals, file uploads and history backfill. Runs in worker threads, never on the event loop.

Failures are told truthfully (bot/delivery.py): `deliver` tries every effect, then raises
`DeliveryFailed` naming those that hit a retryable failure (429, 5xx, connection error or
timeout after slack_sdk's own retries); a permanent refusal (not_in_channel, missing_scope…)
is logged, hinted to the person when there is one, and counts as done.

A reply's picture (a chart) is uploaded through the external-upload flow with its alt text
(`alt_txt`): with the reply's text as the upload's comment when the reply is plain text (one
message), else after the message, in the same channel and thread. An ephemeral cannot carry a
file: a private reply's picture goes to the person's DM with the bot, and the ephemeral says so.
Where files are refused (uploads disabled, no files:write), the text goes with the chart in words
(its alt text).

Under `bot.delivery.attempt(key, retry=…)` (the durable outbox, digest deliveries) every
message posted carries `key` in its Slack metadata (`event_type` "causette_delivery"); a retry
first looks for a message so labelled in the channel's recent history and updates it in place
instead of posting a second one. Uploads (pictures, attachments) are exactly-once too: the
sender does the three steps itself (files.getUploadURLExternal, the bytes, then
files.completeUploadExternal, the only step anyone sees) and notes the file id for `key`
(`DeliveryShell.note_step`, table `delivery_steps`) before completing; the completion is never
repeated blindly (no slack_sdk retry on its 5xx or dropped connection), and a retry that finds
the note asks Slack whether the file is in the channel (files.info; without files:read, which
Causette does not ask for, the channel's or thread's recent messages) and completes the upload
only if it is not, with the same file. A card then its picture: the card through its label,
the picture through its note; neither is shown twice.

What stays at-least-once (a retry after an unknown outcome may show it twice, to one person):
ephemerals and response_url answers (Slack keeps no trace a bot can look up, and gives no key
to label them with), and anything sent outside an attempt (nothing durable to note the file
id in). A completion whose answer was lost is asked about only SHARE_SETTLE seconds later (Slack
may still be sharing the file), and if it never appears the upload is completed again.
"""
from __future__ import annotations

import logging
import re
import time
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from sqlalchemy import func, select

from adapters.shell import DeliveryShell
from adapters.slack import inbound
from adapters.slack.client import HINTS, Clients, Pacer, TokenSource, error_code, log_api_error, make_webhook, transient
from adapters.slack.render import MESSAGE_TEXT, SlackMessage, Translate, mrkdwn, render_modal, render_reply
from bot.context import Services
from bot.delivery import Attempt, DeliveryFailed, current_attempt
from bot.text import link_marker, reply_texts
from bot.charts import shorten
from bot.types import Action, ConversationRef, Effect, Event, FetchHistory, MembersChanged, Outbound, Picture, Reply, SpaceChange, UserRef
from store.models.core import Conversation
from store.models.social import Message

log = logging.getLogger("adapters.slack")
_TS = re.compile(r"^\d{9,12}\.\d{1,9}$")
RESPONSE_URL_USES = 5
META_EVENT = "causette_delivery"  # the metadata event_type of posts labelled with a delivery key
TRIGGER_SECONDS = 3.0  # a trigger_id older than this cannot open a modal any more
LOOKBACK = 100  # messages searched for an earlier attempt's post
ALT_MAX = 1000  # files.getUploadURLExternal refuses a longer alt_txt (alt_txt_too_large)
TITLE_MAX = 120
PICTURE_STEP = "slack.picture"  # delivery steps (store/outbox.py) of an effect's uploads
ATTACHMENT_STEP = "slack.attachment"
SHARE_SETTLE = 15.0  # seconds Slack may take to show a completed upload in its channel
GONE_FILE = ("file_not_found", "file_deleted")
POST_TRIES = 3  # a labelled post after a 5xx: as many tries as slack_sdk's (1 + 2 retries)


def _labelled(message: dict[str, Any], key: str) -> bool:
    """The message was posted with delivery `key` in its metadata (`_post`)."""
    meta = message.get("metadata") or {}
    return meta.get("event_type") == META_EVENT and (meta.get("event_payload") or {}).get("id") == key


def is_ts(value: str | None) -> bool:
    return bool(value) and bool(_TS.match(value or ""))


@dataclass
class Origin:
    """The interaction an effect answers: lets replies use response_url and trigger_id."""

    team: str
    user: str = ""
    channel: str = ""
    token: str | None = None
    response_url: str | None = None
    trigger_id: str | None = None
    command_text: str = ""
    response_uses: int = 0
    trigger_used: bool = False

    def can_respond(self, channel: str) -> bool:
        return bool(self.response_url) and self.channel == channel and self.response_uses < RESPONSE_URL_USES

    def stored(self, now: float) -> dict[str, Any]:
        """What a durable outbox row keeps to answer this interaction after a restart: never the token."""
        return {"team": self.team, "user": self.user, "channel": self.channel, "response_url": self.response_url,
                "trigger_id": self.trigger_id, "trigger_at": now, "command_text": self.command_text,
                "response_uses": self.response_uses}

    @classmethod
    def from_stored(cls, data: Any, now: float) -> "Origin | None":
        """The interaction back from a stored row; its trigger_id only while still fresh."""
        if not isinstance(data, dict) or not data.get("team"):
            return None
        fresh = now - float(data.get("trigger_at") or 0.0) < TRIGGER_SECONDS
        return cls(team=str(data["team"]), user=str(data.get("user") or ""), channel=str(data.get("channel") or ""),
                   response_url=data.get("response_url") or None, trigger_id=(data.get("trigger_id") or None) if fresh else None,
                   command_text=str(data.get("command_text") or ""), response_uses=int(data.get("response_uses") or 0))


class SlackSender:
    def __init__(self, services: Services, tokens: TokenSource, clients: Clients, pacer: Pacer,
                 handle: Callable[[Event], list[Effect]], backfill_pool: ThreadPoolExecutor | None = None) -> None:
        self.services = services
        self.shell = DeliveryShell(services)
        self.tokens = tokens
        self.clients = clients
        self.pacer = pacer
        self.handle = handle
        self.backfill_pool = backfill_pool or ThreadPoolExecutor(1, thread_name_prefix="slack-backfill")
        self.pending: set[Future[None]] = set()

    # Entry points -------------------------------------------------------------
    def deliver(self, effects: Sequence[Effect], origin: Origin | None = None) -> None:
        """Send every effect; then raise DeliveryFailed naming those worth retrying."""
        if origin is None:
            attempt = current_attempt()
            origin = Origin.from_stored(attempt.context.get("slack"), time.time()) if attempt is not None else None
        failed: list[DeliveryFailed] = []
        for effect in effects:
            try:
                if isinstance(effect, FetchHistory):
                    future = self.backfill_pool.submit(self.fetch_history, effect)
                    self.pending.add(future)
                    future.add_done_callback(self.pending.discard)
                elif isinstance(effect, SpaceChange):
                    self.change_space(effect)
                elif isinstance(effect, Outbound):
                    self.send(effect, origin)
            except DeliveryFailed as exc:
                failed.append(DeliveryFailed(str(exc), failed=(effect,), retry_after=exc.retry_after))
            except Exception:  # noqa: BLE001 - a bug or a refusal: retrying would fail the same way
                log.exception("slack delivery failed")
        if failed:
            raise DeliveryFailed.merge(failed)

    def client_for(self, tenant: str, origin: Origin | None = None) -> Any:
        token = origin.token if origin is not None and origin.team == tenant and origin.token else self.tokens.bot_token(tenant)
        return self.clients.get(token)

    def translator(self, tenant: str, user_id: str | None) -> Translate:
        """Prompts in the language of what `user_id` alone reads (the one locale rule)."""
        return self.shell.translator(tenant, user_id, private=True)

    # One outbound -------------------------------------------------------------
    def send(self, ob: Outbound, origin: Origin | None) -> None:
        to, reply = ob.to, ob.reply
        tenant = to.tenant
        client = self.client_for(tenant, origin)
        reader = ob.private_for.id if ob.private_for else to.id if isinstance(to, UserRef) else origin.user if origin else None
        private = ob.private_for is not None or isinstance(to, UserRef) or to.kind == "dm"
        t = self.shell.translator(tenant, reader, to.id if isinstance(to, ConversationRef) else None, private=private)
        if reply.form is not None and self._open_form(client, ob, origin):
            return
        extra: tuple[Action, ...] = ()
        if reply.form is not None and origin is not None and origin.command_text:
            extra = (Action(t("slack.form_open"), origin.command_text, "primary"),)
        picture = reply.picture
        file_here = reply.attachment is not None or picture is not None  # a file cannot ride an ephemeral or response_url answer
        thread_ts = ob.thread_id if is_ts(ob.thread_id) else None
        if picture is not None and ob.private_for is not None and isinstance(to, ConversationRef):
            self._private_picture(client, ob, origin, t, thread_ts)
            return
        if (picture is not None and isinstance(to, ConversationRef) and to.kind == "dm" and origin is not None
                and not ob.anchor and origin.can_respond(to.id) and self._open_dm(client, origin.user) != to.id):
            self._private_picture(client, ob, origin, t, None)  # a DM between people: the chart goes to the asker's DM with the bot
            return
        message = render_reply(reply, t, extra, self.shell.names(tenant, reply_texts(reply)))
        if ob.response_url and not file_here and not ob.anchor:  # the core named the URL to answer
            direct = Origin(team=tenant, response_url=ob.response_url)
            if self.respond(direct, message, "ephemeral" if ob.private_for else "in_channel"):
                return
        if (isinstance(to, ConversationRef) and to.kind == "dm" and origin is not None and not ob.anchor
                and not file_here and origin.can_respond(to.id) and self.respond(origin, message, "ephemeral")):
            return  # a command typed in a DM (maybe between two people): only its author sees the answer
        if picture is not None and ob.private_for is None and self._fits_comment(message, ob):
            where = self._open_dm(client, to.id) if isinstance(to, UserRef) else to.id
            if where and self._upload_picture(client, where, picture, thread_ts, message.text):
                return  # one message: the text introduces the picture
            # files refused here (uploads disabled, missing scope…): the text, and the chart in words
            reply = replace(reply, text=reply.text.rstrip() + "\n\n" + picture.alt, picture=None)
            message = render_reply(reply, t, extra, self.shell.names(tenant, reply_texts(reply)))
            picture = None
        if isinstance(to, UserRef):
            channel = self._post(client, tenant, to.id, message, None, ob.anchor, origin)
            if reply.attachment and channel:
                self._upload(client, channel, reply.attachment, None)
            if picture is not None and channel:
                self._upload_picture(client, channel, picture, None, None)
        elif ob.private_for is not None:
            self._ephemeral(client, to, ob.private_for, message, thread_ts, origin)
            if reply.attachment:
                dm = self._open_dm(client, ob.private_for.id)
                if dm:
                    self._upload(client, dm, reply.attachment, None)
        else:
            channel = self._post(client, tenant, to.id, message, thread_ts, ob.anchor, origin)
            if reply.attachment and channel:
                self._upload(client, channel, reply.attachment, thread_ts)
            if picture is not None and channel:
                self._upload_picture(client, channel, picture, thread_ts, None)

    # Pictures -----------------------------------------------------------------
    @staticmethod
    def _fits_comment(message: SlackMessage, ob: Outbound) -> bool:
        """A plain-text reply (no blocks, not an in-place update, no other file) can be the
        upload's `initial_comment`: text and picture arrive as one message."""
        return not message.blocks and not ob.anchor and ob.reply.attachment is None and len(message.text) <= MESSAGE_TEXT

    def _private_picture(self, client: Any, ob: Outbound, origin: Origin | None, t: Translate, thread_ts: str | None) -> None:
        """Only one person may see the reply, and a Slack ephemeral cannot carry a file: the picture
        goes to the person's DM with the bot first, then the text as an ephemeral saying so (or,
        when files are refused there, carrying the chart in words: its alt text). A transient
        upload failure sends neither now: the outbox retries the whole effect."""
        reply, to = ob.reply, ob.to
        assert isinstance(to, ConversationRef) and reply.picture is not None
        person = ob.private_for.id if ob.private_for else origin.user if origin else ""
        dm = self._open_dm(client, person) if person else None
        sent = bool(dm) and self._upload_picture(client, dm or "", reply.picture, None, None)  # titled by the alt text
        note = t("charts.sent_to_dm") if sent else reply.picture.alt
        noted = replace(reply, text=reply.text.rstrip() + "\n\n" + note, picture=None)
        message = render_reply(noted, t, (), self.shell.names(to.tenant, reply_texts(noted)))
        if ob.private_for is not None:
            self._ephemeral(client, to, ob.private_for, message, thread_ts, origin)
        elif origin is not None:
            self.respond(origin, message, "ephemeral")

    def _upload_picture(self, client: Any, channel: str, picture: Picture, thread_ts: str | None, comment: str | None) -> bool:
        """Upload a PNG with its alt text (`alt_txt`, at most 1,000 characters) and the comment,
        exactly once per delivery key (`_upload_file`). A transient failure raises DeliveryFailed
        (the outbox sends the effect again); a refusal (uploads disabled, missing scope…) is
        logged and answers False."""
        title = shorten(picture.alt.split(". ")[0].rstrip("."), TITLE_MAX) or picture.filename
        return self._upload_file(client, channel, picture.filename, picture.png, title, shorten(picture.alt, ALT_MAX),
                                 thread_ts, comment, PICTURE_STEP)

    def _upload_file(self, client: Any, channel: str, filename: str, content: bytes, title: str, alt: str | None,
                     thread_ts: str | None, comment: str | None, step: str) -> bool:
        """The external-upload flow, step by step: files.getUploadURLExternal (`alt_txt`), the
        bytes to the upload URL, then, under a delivery attempt, the file id noted durably
        (`DeliveryShell.note_step`), and only then files.completeUploadExternal, the step that
        shows the file. A retry of the same delivery key that finds the note asks Slack whether
        the file is in the channel (`_shared`) and completes the upload only if it is not.
        True when the file is (or was already) shown; False when Slack refused it for good."""
        attempt = current_attempt()
        if attempt is not None and attempt.retry:
            earlier = self._earlier_upload(client, attempt, step, channel, thread_ts, title, comment)
            if earlier is not None:
                return earlier
        self.pacer.wait(channel)
        method = "files.getUploadURLExternal"
        try:
            kwargs: dict[str, Any] = {"filename": filename, "length": len(content)}
            if alt:
                kwargs["alt_txt"] = alt
            got = client.files_getUploadURLExternal(**kwargs)
            file_id, url = str(got["file_id"]), str(got["upload_url"])
            method = "files.upload"  # the bytes, to the upload URL
            self._put_bytes(client, url, content)
        except Exception as exc:  # noqa: BLE001
            self._failed(method, exc, channel=channel)
            return False
        if attempt is not None:
            self.shell.note_step(attempt.key, step, {"file": file_id, "channel": channel, "thread_ts": thread_ts or ""})
        return self._complete(client, file_id, title, channel, thread_ts, comment) == ""

    @staticmethod
    def _put_bytes(client: Any, url: str, content: bytes) -> None:
        """POST the bytes to files.getUploadURLExternal's URL (as slack_sdk's files_upload_v2
        does). Nothing is shown until the upload is completed, so this may be repeated."""
        handlers: list[Any] = [urllib.request.HTTPSHandler(context=client.ssl)] if client.ssl is not None else []
        if client.proxy:
            handlers.append(urllib.request.ProxyHandler({"http": client.proxy, "https": client.proxy}))
        opener = urllib.request.build_opener(*handlers)
        with opener.open(urllib.request.Request(url, data=content, method="POST"), timeout=client.timeout) as resp:
            resp.read()

    def _complete(self, client: Any, file_id: str, title: str, channel: str, thread_ts: str | None,
                  comment: str | None) -> str:
        """files.completeUploadExternal, through a client that never repeats it on its own (a 5xx
        or a dropped connection may come after Slack shared the file). "" when done, else the
        error code of a refusal; an unknown outcome raises DeliveryFailed (the retry asks)."""
        kwargs: dict[str, Any] = {"files": [{"id": file_id, "title": title}], "channel_id": channel}
        if comment:
            kwargs["initial_comment"] = comment
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        try:
            self.clients.single_shot(client).files_completeUploadExternal(**kwargs)
        except Exception as exc:  # noqa: BLE001
            return self._failed("files.completeUploadExternal", exc, channel=channel) or "refused"
        return ""

    def _earlier_upload(self, client: Any, attempt: Attempt, step: str, channel: str, thread_ts: str | None,
                        title: str, comment: str | None) -> bool | None:
        """What an earlier attempt of this delivery uploaded (None: nothing usable, upload afresh).
        Shared into `channel` already: True, nothing is sent again. Uploaded but not shared: the
        upload is completed now, unless the earlier completion is so recent that Slack may still
        be sharing it (then DeliveryFailed: asked again in a while)."""
        noted = self.shell.recall_step(attempt.key, step, attempt.since)
        if noted is None:
            return None
        value, at = noted
        file_id = str(value.get("file") or "")
        if not file_id or value.get("channel") != channel:
            return None
        shared = self._shared(client, file_id, channel, thread_ts, attempt)
        if shared is None:
            log.info("slack: %s: %s uploaded by an earlier attempt is gone: uploaded again", attempt.key, file_id)
            return None
        if shared:
            log.info("slack: %s: %s was shared in %s by an earlier attempt: not again", attempt.key, file_id, channel)
            return True
        age = (self.services.clock.now() - at).total_seconds()
        if age < SHARE_SETTLE:
            raise DeliveryFailed(f"slack: {file_id} not seen in {channel} yet", retry_after=SHARE_SETTLE - age)
        log.info("slack: %s: %s was uploaded by an earlier attempt, never shown: completed now", attempt.key, file_id)
        code = self._complete(client, file_id, title, channel, thread_ts, comment)
        if code in GONE_FILE:
            return None
        return code == ""

    def _shared(self, client: Any, file_id: str, channel: str, thread_ts: str | None, attempt: Attempt) -> bool | None:
        """Whether Slack shows `file_id` in `channel` (None: the file is gone). files.info says it
        (`shares`, `channels`/`groups`/`ims`) when the app has files:read, which Causette does
        not ask for; without it, the channel's recent messages (or the thread's) are searched
        for the message that carries the file."""
        try:
            resp = client.files_info(file=file_id)
        except Exception as exc:  # noqa: BLE001
            retry, wait = transient(exc)
            if retry:
                log_api_error("files.info", exc, file=file_id)
                raise DeliveryFailed(f"slack files.info: {error_code(exc) or type(exc).__name__}", retry_after=wait) from exc
            code = error_code(exc)
            if code in GONE_FILE:
                return None
            log.debug("slack: files.info %s refused (%s): looking in %s's messages", file_id, code, channel)
            return self._find_message(client, channel, thread_ts, attempt,
                                      lambda m: any(f.get("id") == file_id for f in m.get("files") or [])) is not None
        file = resp.get("file") or {}
        shares = file.get("shares") or {}
        if any(channel in (shares.get(kind) or {}) for kind in ("public", "private")):
            return True
        return any(channel in (file.get(kind) or []) for kind in ("channels", "groups", "ims"))

    def _payload(self, message: SlackMessage) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": message.text}
        if message.blocks:
            payload["blocks"] = message.blocks
        return payload

    def respond(self, origin: Origin, message: SlackMessage, response_type: str) -> bool:
        """Answer through the interaction's response_url (works where the bot is not a member)."""
        assert origin.response_url
        origin.response_uses += 1
        try:
            resp = make_webhook(origin.response_url).send_dict({**self._payload(message), "response_type": response_type})
        except Exception as exc:  # noqa: BLE001
            log.error("slack response_url failed: %r", exc)
            return False
        if resp.status_code != 200:
            log.error("slack response_url answered %s: %s", resp.status_code, resp.body[:200])
            return False
        return True

    def _ephemeral(self, client: Any, to: ConversationRef, user: UserRef, message: SlackMessage,
                   thread_ts: str | None, origin: Origin | None) -> None:
        if origin is not None and thread_ts is None and origin.can_respond(to.id) and self.respond(origin, message, "ephemeral"):
            return
        kwargs: dict[str, Any] = {"channel": to.id, "user": user.id, **self._payload(message)}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        try:
            client.chat_postEphemeral(**kwargs)
        except Exception as exc:  # noqa: BLE001
            code = self._failed("chat.postEphemeral", exc, channel=to.id, user=user.id)
            if code in HINTS:  # the bot cannot write there: tell the person in a DM instead
                self._post(client, to.tenant, user.id, message, None, None, None)
                self._hint(client, to.tenant, code, user.id, None)

    def _post(self, client: Any, tenant: str, channel: str, message: SlackMessage, thread_ts: str | None,
              anchor: str | None, origin: Origin | None) -> str | None:
        """chat.postMessage, or chat.update when `anchor` was posted before (or, on a retry, when
        an earlier attempt's labelled post is found). Returns the channel id."""
        if anchor:
            previous = self._anchor_ref(tenant, anchor, channel)
            if previous is not None:
                where, ts = previous
                try:
                    client.chat_update(channel=where, ts=ts, **self._payload(message))
                    return where
                except Exception as exc:  # noqa: BLE001
                    if error_code(exc) not in ("message_not_found", "cant_update_message", "edit_window_closed"):
                        self._failed("chat.update", exc, channel=where)
                        return None
        attempt = current_attempt()
        if attempt is not None and attempt.retry:
            found = self._find_message(client, channel, thread_ts, attempt, lambda m: _labelled(m, attempt.key))
            if found is not None:
                where, ts = found
                log.info("slack: %s was posted by an earlier attempt (%s %s): updated in place", attempt.key, where, ts)
                try:
                    client.chat_update(channel=where, ts=ts, **self._payload(message))
                except Exception as exc:  # noqa: BLE001
                    self._failed("chat.update", exc, channel=where)
                if anchor:
                    self._remember(tenant, anchor, channel, where, ts)
                return where
        kwargs: dict[str, Any] = {"channel": channel, **self._payload(message), "link_names": False,
                                  "unfurl_links": False, "unfurl_media": False}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        if attempt is not None:
            kwargs["metadata"] = {"event_type": META_EVENT, "event_payload": {"id": attempt.key}}
        self.pacer.wait(channel)
        try:
            resp = client.chat_postMessage(**kwargs) if attempt is None else self._post_labelled(client, kwargs, thread_ts, attempt)
        except DeliveryFailed:
            raise
        except Exception as exc:  # noqa: BLE001
            code = self._failed("chat.postMessage", exc, channel=channel)
            if code in HINTS and origin is not None:
                if origin.can_respond(channel) and self.respond(origin, message, "in_channel"):
                    self._hint(client, tenant, code, origin.user, origin)
                    return None
                self._hint(client, tenant, code, origin.user, origin)
            return None
        posted_channel = str(resp.get("channel") or channel)
        if anchor and resp.get("ts"):
            self._remember(tenant, anchor, channel, posted_channel, str(resp["ts"]))
        return posted_channel

    def _post_labelled(self, client: Any, kwargs: dict[str, Any], thread_ts: str | None, attempt: Attempt) -> Any:
        """chat.postMessage of a post labelled with `attempt.key`, tried up to POST_TRIES times
        like slack_sdk's own 5xx retries, but never blindly: after a 5xx or a dropped connection
        (Slack may have posted it) the labelled post is looked for first. The response of the
        post, or of the earlier try found posted (its channel and ts: the same message)."""
        once = self.clients.single_shot(client)
        for tries in range(1, POST_TRIES + 1):
            try:
                return once.chat_postMessage(**kwargs)
            except Exception as exc:  # noqa: BLE001
                retry, _ = transient(exc)
                if not retry or tries == POST_TRIES or error_code(exc) == "ratelimited":
                    raise
                log_api_error("chat.postMessage", exc, channel=kwargs["channel"])
                found = self._find_message(client, str(kwargs["channel"]), thread_ts, attempt,
                                           lambda m: _labelled(m, attempt.key))
                if found is not None:
                    log.info("slack: %s was posted although its answer failed: not posted again", attempt.key)
                    return {"channel": found[0], "ts": found[1]}
        raise AssertionError("unreachable")

    def _failed(self, method: str, exc: BaseException, **where: object) -> str:
        """Log a failed call; raise DeliveryFailed when it is worth retrying later, else return
        the Slack error code (a permanent refusal: the caller hints it or lets it go)."""
        code = log_api_error(method, exc, **where)
        retry, wait = transient(exc)
        if retry:
            raise DeliveryFailed(f"slack {method}: {code or type(exc).__name__}", retry_after=wait) from exc
        return code

    def _find_message(self, client: Any, channel: str, thread_ts: str | None, attempt: Attempt,
                      match: Callable[[dict[str, Any]], bool]) -> tuple[str, str] | None:
        """(channel, ts) of the newest message of the channel's (or thread's) recent history since
        the effect was recorded that `match`es: an earlier attempt's post or upload.
        A DM's history is read from its D… channel (conversations.open)."""
        where: str | None = channel
        if channel[:1] in ("U", "W"):
            where = self._open_dm(client, channel)
        if not where:
            return None
        kwargs: dict[str, Any] = {"channel": where, "limit": LOOKBACK, "include_all_metadata": True}
        if attempt.since is not None:
            kwargs["oldest"] = f"{attempt.since.timestamp() - 60:.6f}"
        try:
            if thread_ts:
                resp = client.conversations_replies(ts=thread_ts, **kwargs)
            else:
                resp = client.conversations_history(**kwargs)
        except Exception as exc:  # noqa: BLE001 - permanent: cannot look, post (at least once)
            self._failed("conversations.replies" if thread_ts else "conversations.history", exc, channel=where)
            return None
        for message in resp.get("messages") or []:
            if message.get("ts") and match(message):
                return where, str(message["ts"])
        return None

    def _hint(self, client: Any, tenant: str, code: str, user: str, origin: Origin | None) -> None:
        """Tell the person what to do about not_in_channel, channel_not_found, missing_scope…
        (privately: in their language, whatever the channel's)."""
        if not user:
            return
        t = self.translator(tenant, user)
        hint = SlackMessage(text=mrkdwn(t(HINTS[code], command=self.services.settings.command_name)))
        if origin is not None and origin.response_url and origin.response_uses < RESPONSE_URL_USES and self.respond(origin, hint, "ephemeral"):
            return
        try:
            client.chat_postMessage(channel=user, text=hint.text, link_names=False)
        except Exception as exc:  # noqa: BLE001
            log_api_error("chat.postMessage", exc, channel=user)

    def _open_dm(self, client: Any, user: str) -> str | None:
        try:
            resp = client.conversations_open(users=user)
            return str((resp.get("channel") or {}).get("id") or "") or None
        except Exception as exc:  # noqa: BLE001
            self._failed("conversations.open", exc, user=user)
            return None

    def _upload(self, client: Any, channel: str, attachment: tuple[str, bytes], thread_ts: str | None) -> None:
        """A file (an export) through the same exactly-once external-upload flow as pictures
        (`_upload_file`): a transient failure is retried by the outbox, a refusal is logged."""
        name, content = attachment
        self._upload_file(client, channel, name, content, name, None, thread_ts, None, ATTACHMENT_STEP)

    def _open_form(self, client: Any, ob: Outbound, origin: Origin | None) -> bool:
        """A form opens as a modal while the interaction's trigger_id is fresh (one use), for the
        person of the interaction alone: in their language."""
        if origin is None or not origin.trigger_id or origin.trigger_used or ob.reply.form is None:
            return False
        origin.trigger_used = True
        to = ob.to
        meta: dict[str, Any] = {"ch": to.id, "k": to.kind if isinstance(to, ConversationRef) else "dm"}
        if is_ts(ob.thread_id):
            meta["th"] = ob.thread_id
        try:
            t = self.translator(to.tenant, origin.user)
            client.views_open(trigger_id=origin.trigger_id, view=render_modal(ob.reply.form, meta, t))
            return True
        except Exception as exc:  # noqa: BLE001
            log_api_error("views.open", exc, user=origin.user)
            return False

    # Anchors ------------------------------------------------------------------
    def _anchor_ref(self, tenant: str, anchor: str, target: str) -> tuple[str, str] | None:
        """(channel, ts) of the message `anchor` was posted as to `target`, if any."""
        channel, _, ts = (self.shell.anchor(tenant, anchor, target) or "").partition("|")
        return (channel, ts) if ts else None

    def _remember(self, tenant: str, anchor: str, target: str, channel: str, ts: str) -> None:
        self.shell.remember_anchor(tenant, anchor, target, f"{channel}|{ts}")

    # Channels the bot creates or invites to ---------------------------------------
    def change_space(self, change: SpaceChange) -> None:
        """conversations.create (with its purpose) and conversations.invite; then the core hears
        that the people joined, as Slack's member_joined_channel would say. A refusal (name_taken,
        restricted_action…) is written to `report_to`; a transient failure is retried."""
        tenant = change.channel.tenant
        client = self.client_for(tenant)
        channel = change.channel
        method = "conversations.create"
        try:
            if change.action == "create":
                resp = client.conversations_create(name=channel.name, is_private=channel.kind == "private")
                created = resp.get("channel") or {}
                channel = replace(channel, id=str(created.get("id", "")), name=str(created.get("name") or channel.name))
                if change.purpose:
                    method = "conversations.setPurpose"
                    client.conversations_setPurpose(channel=channel.id, purpose=change.purpose[:250])
            people = [p.id for p in change.people]
            if people:
                method = "conversations.invite"
                try:
                    client.conversations_invite(channel=channel.id, users=",".join(people))
                except Exception as exc:  # noqa: BLE001
                    if error_code(exc) != "already_in_channel":
                        raise
        except Exception as exc:  # noqa: BLE001
            code = self._failed(method, exc, channel=channel.id or channel.name)
            if change.report_to is not None and change.failed_key:
                t = self.translator(tenant, change.report_to.id)
                text = t(change.failed_key, error=code or type(exc).__name__, **change.params)
                self.send(Outbound(Reply(text=text, key=change.failed_key), to=change.report_to), None)
            return
        self.deliver(self.handle(MembersChanged(conversation=channel, joined=change.people)))

    # History backfill ---------------------------------------------------------
    def fetch_history(self, request: FetchHistory) -> None:
        """Page conversations.history (cursor, 429-aware) and feed each message to the bot.

        The requester gets one DM, updated in place: the progress, then how many messages were
        read and how many of them are new to the index (those already indexed are skipped), or
        that the import stopped, whatever stopped it."""
        conv = request.conversation
        tenant = conv.tenant
        client = self.client_for(tenant)
        reader = request.requested_by.id if request.requested_by else None
        t = self.translator(tenant, reader)
        progress: tuple[str, str] | None = None
        count, cursor = 0, None
        channel_link = link_marker(conv.id)
        try:
            before = self._indexed(conv)
            if request.requested_by is not None:
                resp = client.chat_postMessage(channel=request.requested_by.id, link_names=False,
                                               text=mrkdwn(t("slack.backfill_progress", channel=channel_link, count=0)))
                progress = (str(resp.get("channel")), str(resp.get("ts")))
            while True:
                kwargs: dict[str, Any] = {"channel": conv.id, "limit": 200, "oldest": f"{request.since.timestamp():.6f}"}
                if cursor:
                    kwargs["cursor"] = cursor
                resp = client.conversations_history(**kwargs)
                for raw in reversed(resp.get("messages") or []):
                    msg = inbound.message_event({**raw, "channel": conv.id}, tenant, None)
                    if msg is None:
                        continue
                    msg = replace(msg, conversation=conv, addressed=False, backfill=True, via="message")
                    try:
                        self.deliver(self.handle(msg))
                    except DeliveryFailed as exc:  # what old messages trigger is not worth stopping the import
                        log.warning("slack: backfill of %s: %s", conv.id, exc)
                    count += 1
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if progress:
                    client.chat_update(channel=progress[0], ts=progress[1],
                                       text=mrkdwn(t("slack.backfill_progress", channel=channel_link, count=count)))
                if not cursor:
                    break
            if progress:
                added = max(0, self._indexed(conv) - before)
                client.chat_update(channel=progress[0], ts=progress[1],
                                   text=mrkdwn(t("slack.backfill_done", channel=channel_link, count=count, added=added)))
        except Exception as exc:  # noqa: BLE001
            code = log_api_error("conversations.history", exc, channel=conv.id)
            if request.requested_by is not None:
                text = mrkdwn(t(HINTS.get(code or "", "slack.backfill_failed"), command=self.services.settings.command_name,
                                channel=channel_link, count=count))
                try:
                    if progress:
                        client.chat_update(channel=progress[0], ts=progress[1], text=text)
                    else:
                        client.chat_postMessage(channel=request.requested_by.id, link_names=False, text=text)
                except Exception:  # noqa: BLE001
                    log.exception("slack: could not tell %s the backfill of %s stopped", request.requested_by.id, conv.id)

    def _indexed(self, conv: ConversationRef) -> int:
        """How many messages of `conv` the index holds: what a backfill added is the difference."""
        with self.services.db.session(conv.tenant) as session:
            found = session.scalar(select(func.count(Message.id)).join(Conversation, Conversation.id == Message.conversation_id)
                                   .where(Conversation.tenant == conv.tenant, Conversation.external_id == conv.id))
        return int(found or 0)

