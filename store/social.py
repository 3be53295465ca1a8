"""The message index and the social graph: ingesting posts (live or backfilled, one or many
per transaction), edits, deletions, reactions, follows, and the read paths (feed, topic card,
subscribers) with the privacy contract of store/visibility.py applied in every query."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import Integer, Select, and_, bindparam, delete, func, or_, select, union_all, update
from sqlalchemy.orm import Session, aliased

from bot.text import shorten, topic_key
from store import analytics, cursor_sql, driver_sql, evidence_log, memo as memos
from store.db import ALL_TENANTS
from store.expertise import bump_version
from store.idempotency import claim, insert_ignore
from store.memo import memo
from store.people import insert_aside
from store.models.core import Conversation, Evidence, Person, ProcessedEvent, Role
from store.models.social import Follow, IndexOptOut, Message, MessageMention, MessageTopic, Topic
from store.visibility import readable_by, readable_by_column

INDEX_KINDS = ("hashtag", "mentioned", "thanked")
WEIGHTS = {"hashtag": 1.0, "mentioned": 1.0, "thanked": 2.0}
SNIPPET_CHARS = 280


def _insert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def source_ref(conversation_id: int, external_id: str) -> str:
    return f"msg:{conversation_id}:{external_id}"


@dataclass(frozen=True)
class Post:
    """One message to index, already resolved to row ids (parsing happens in the caller)."""

    conversation_id: int
    external_id: str
    author_id: int
    text: str
    sent_at: datetime
    permalink: str = ""
    thread_external_id: str | None = None
    hashtags: tuple[str, ...] = ()
    mention_ids: tuple[int, ...] = ()
    thanked: bool = False


@dataclass
class Indexed:
    post: Post
    message_id: int
    topic_ids: list[int] = field(default_factory=list)


# Ingestion -----------------------------------------------------------------
def topics_for(session: Session, tenant: str, tags: Iterable[str], now: datetime) -> dict[str, int]:
    """Topic ids by key, creating the topics used for the first time (race-safe)."""
    labels: dict[str, str] = {}
    for tag in tags:
        key = topic_key(tag)
        if key and key not in labels:
            labels[key] = tag.lstrip("#")[:200]
    if not labels:
        return {}
    cache = memo(session, _KNOWN_TOPICS)
    found = {k: cache[(tenant, k)] for k in labels if (tenant, k) in cache}
    unread = [k for k in labels if k not in found]
    if unread:
        read = dict(session.execute(select(Topic.key, Topic.id).where(Topic.key.in_(unread))).all())
        cache.update(((tenant, k), i) for k, i in read.items())
        found.update(read)
    # In key order: two messages bringing the same new topics in opposite orders would
    # otherwise each wait on PostgreSQL for the row the other inserted first (a deadlock).
    missing = sorted(k for k in labels if k not in found)
    if missing:
        rows = [{"tenant": tenant, "key": k, "label": labels[k], "created_at": now} for k in missing]
        if not insert_aside(session, _insert_topic_pg, rows, "a topic"):
            session.execute(_insert(session)(Topic.__table__).on_conflict_do_nothing(), rows)
        found.update(session.execute(select(Topic.key, Topic.id).where(Topic.key.in_(missing))).all())
    return found


@lru_cache(maxsize=1)
def _insert_topic_pg() -> Any:
    from sqlalchemy.dialects.postgresql import insert

    return insert(Topic.__table__).on_conflict_do_nothing()


def opted_out(session: Session, person_ids: Iterable[int]) -> set[int]:
    ids = list(set(person_ids))
    if not ids:
        return set()
    tenant = session.info.get("tenant")
    if tenant not in (None, ALL_TENANTS):  # every indexed message asks: at the driver level
        sql = f"SELECT person_id FROM index_opt_outs WHERE tenant = ? AND person_id IN ({driver_sql.placeholders(len(ids))})"
        return {row[0] for row in driver_sql.fetch(session, sql, [tenant, *ids])}
    return set(session.scalars(select(IndexOptOut.person_id).where(IndexOptOut.person_id.in_(ids))))


_KNOWN_TOPICS = "social_known_topics"  # {(tenant, key): topic id} read in this session (store/memo.py)
_KNOWN_EVIDENCE = "social_known_evidence"  # {(tenant, key): True} read to have evidence
_SUBSCRIBED = "social_subscribed"  # {(tenant, "any") | (tenant, "p"|"t", id): has subscribers} read


def ingest(session: Session, tenant: str, posts: Sequence[Post], now: datetime) -> list[Indexed]:
    """Index posts once each: a post already stored (double delivery, backfill overlap,
    a concurrent worker) is skipped. Returns what was newly indexed, in input order.

    Everything is done with a handful of multi-row statements, so a backfill of thousands
    of messages costs about as much as inserting their rows."""
    if not posts:
        return []
    if len(posts) == 1 and session.get_bind().dialect.name == "postgresql":
        return _ingest_one_pg(session, tenant, posts[0], now)
    table = Message.__table__
    rows = [
        {"tenant": tenant, "conversation_id": p.conversation_id, "external_id": p.external_id, "author_id": p.author_id,
         "thread_external_id": p.thread_external_id, "text": p.text, "permalink": p.permalink[:500], "sent_at": p.sent_at,
         "edited_at": None, "reply_count": 0, "reaction_count": 0, "deleted": False}
        for p in posts
    ]
    stmt = _insert(session)(table).on_conflict_do_nothing().returning(table.c.id, table.c.conversation_id, table.c.external_id)
    inserted = {(c, e): i for i, c, e in session.execute(stmt, rows)}
    done: list[Indexed] = []
    seen: set[tuple[int, str]] = set()
    for p in posts:
        k = (p.conversation_id, p.external_id)
        if k in inserted and k not in seen:
            seen.add(k)
            done.append(Indexed(p, inserted[k]))
    if not done:
        return []
    _attach(session, tenant, done, now)
    _count_replies(session, done)
    return done


_HELD_POSTS = "social_held_posts"  # session.info: [(tenant, Post, now)] held for one `ingest` (store/memo.py)
_TOUCHES = ("message", "evidence", "topic")  # the tables a held post writes (a statement naming one sees them)


def ingest_later(session: Session, tenant: str, post: Post, now: datetime) -> None:
    """`ingest` of a post whose outcome nobody waits for (nobody in the workspace subscribes to
    anything, so it pings no one): held back, then written with every post this transaction
    holds, in one multi-row `ingest` per workspace instead of one per post. Written before
    any statement that names the tables it writes (or could see them missing) runs in this
    transaction, before a savepoint, before the commit (store/memo.py `defer`); a rollback
    drops it with the transaction. The inbox worker's batch writes it before marking its rows
    done, so a post that fails there fails its batch's optimistic attempt, whose rows are then
    done again each alone (bot/inbox.py)."""
    session.info.setdefault(_HELD_POSTS, []).append((tenant, post, now))
    memos.defer(session, "social.ingest", _TOUCHES, lambda: _write_held(session))


def _write_held(session: Session) -> None:
    held = session.info.pop(_HELD_POSTS, None)
    if not held:
        return
    by_tenant: dict[str, tuple[list[Post], datetime]] = {}
    seen: set[tuple[str, int, str]] = set()
    for tenant, post, now in held:
        if (tenant, post.conversation_id, post.external_id) in seen:  # one delivery twice in a batch: once
            continue
        seen.add((tenant, post.conversation_id, post.external_id))
        posts = by_tenant.setdefault(tenant, ([], now))[0]
        posts.append(post)
        by_tenant[tenant] = (posts, now)
    outer = session.info.get("tenant")
    postgresql = session.get_bind().dialect.name == "postgresql"
    try:
        for tenant, (posts, now) in by_tenant.items():
            session.info["tenant"] = tenant  # the tenant guard reads (topics) in the posts' workspace
            if postgresql and len(posts) > 1:
                _ingest_many_pg(session, tenant, posts, now)
            else:
                ingest(session, tenant, posts, now)
    finally:
        session.info["tenant"] = outer


# `_INGEST_ONE_PG` for many live messages at once, each array one column of the posts (`n`:
# the post's place), the topic links, mentions and evidence naming their post by place. Back:
# per message stored now, its place and id, and for all of them the topics that exist and
# which of the `ekeys` topics had evidence before (the statement's snapshot is the one before).
_INGEST_MANY_PG = """
WITH p AS (
  SELECT * FROM unnest(%(conv)s::integer[], %(ext)s::varchar[], %(author)s::integer[], %(thread)s::varchar[],
                       %(text)s::text[], %(permalink)s::varchar[], %(sent_at)s::timestamptz[], %(ref)s::varchar[],
                       %(snippet)s::text[])
         WITH ORDINALITY AS p(conversation_id, external_id, author_id, thread, text, permalink, sent_at, ref, snippet, n)
), tp AS (
  SELECT id, key FROM topics WHERE tenant = %(tenant)s AND key = ANY(%(keys)s::varchar[])
), m AS (
  INSERT INTO messages (tenant, conversation_id, external_id, author_id, thread_external_id, text, permalink,
                        sent_at, edited_at, reply_count, reaction_count, deleted)
  SELECT %(tenant)s, conversation_id, external_id, author_id, thread, text, permalink, sent_at, NULL, 0, 0, false
  FROM p ORDER BY n
  ON CONFLICT DO NOTHING RETURNING id, conversation_id, external_id
), mp AS (
  SELECT m.id, p.n, p.sent_at, p.conversation_id, p.ref, p.snippet FROM m JOIN p USING (conversation_id, external_id)
), mt AS (
  INSERT INTO message_topics (tenant, message_id, topic_id, sent_at, conversation_id)
  SELECT %(tenant)s, mp.id, tp.id, mp.sent_at, mp.conversation_id
  FROM unnest(%(t_n)s::bigint[], %(t_key)s::varchar[]) AS t(n, key) JOIN mp USING (n) JOIN tp USING (key)
  ON CONFLICT DO NOTHING
), mm AS (
  INSERT INTO message_mentions (tenant, message_id, person_id)
  SELECT %(tenant)s, mp.id, x.person_id FROM unnest(%(m_n)s::bigint[], %(m_person)s::integer[]) AS x(n, person_id)
  JOIN mp USING (n)
  ON CONFLICT DO NOTHING
), ev AS (
  INSERT INTO evidence (tenant, batch, person_id, topic_key, topic_label, kind, weight, occurred_at, source_ref,
                        conversation_id, snippet)
  SELECT %(tenant)s, %(batch)s, g.person_id, g.topic_key, g.topic_label, g.kind, g.weight, mp.sent_at, mp.ref,
         mp.conversation_id, mp.snippet
  FROM unnest(%(e_n)s::bigint[], %(e_person)s::integer[], %(e_key)s::varchar[], %(e_label)s::varchar[],
              %(e_kind)s::varchar[], %(e_weight)s::float8[]) AS g(n, person_id, topic_key, topic_label, kind, weight)
  JOIN mp USING (n)
  ON CONFLICT DO NOTHING
)
SELECT mp.n, mp.id,
       (SELECT array_agg(key ORDER BY key) FROM tp), (SELECT array_agg(id ORDER BY key) FROM tp),
       ARRAY(SELECT DISTINCT topic_key FROM evidence WHERE tenant = %(tenant)s AND topic_key = ANY(%(ekeys)s::varchar[]))
FROM mp ORDER BY mp.n
"""


def _ingest_many_pg(session: Session, tenant: str, posts: Sequence[Post], now: datetime) -> list[Indexed]:
    """`ingest` of several live messages on PostgreSQL in one statement (`_INGEST_MANY_PG`),
    run at the driver level; its text never changes, so the server plans it once per
    connection. Topics used for the first time are then created and linked as
    `_ingest_one_pg` does."""
    columns: dict[str, list[Any]] = {name: [] for name in (
        "conv", "ext", "author", "thread", "text", "permalink", "sent_at", "ref", "snippet", "t_n", "t_key", "m_n",
        "m_person", "e_n", "e_person", "e_key", "e_label", "e_kind", "e_weight")}
    labels_of: list[dict[str, str]] = []
    keys: dict[str, None] = {}
    for n, p in enumerate(posts, 1):
        labels = _labels(p)
        labels_of.append(labels)
        keys.update(dict.fromkeys(labels))
        mentioned = list(dict.fromkeys(p.mention_ids))
        grants = _grants(p, labels, mentioned)
        for name, value in (("conv", p.conversation_id), ("ext", p.external_id), ("author", p.author_id),
                            ("thread", p.thread_external_id), ("text", p.text), ("permalink", p.permalink[:500]),
                            ("sent_at", p.sent_at), ("ref", source_ref(p.conversation_id, p.external_id)),
                            ("snippet", shorten(p.text, SNIPPET_CHARS) if grants else "")):
            columns[name].append(value)
        for key in labels:
            columns["t_n"].append(n)
            columns["t_key"].append(key)
        for pid in mentioned:
            columns["m_n"].append(n)
            columns["m_person"].append(pid)
        for pid, key, label, kind in grants:
            for name, value in (("e_n", n), ("e_person", pid), ("e_key", key), ("e_label", label), ("e_kind", kind),
                                ("e_weight", WEIGHTS[kind])):
                columns[name].append(value)
    evidenced = list(dict.fromkeys(columns["e_key"]))
    seen = memo(session, _KNOWN_EVIDENCE)
    unread = [key for key in evidenced if (tenant, key) not in seen]
    batch = evidence_log.token(session) if evidenced else None
    rows = cursor_sql.all_rows(session, _INGEST_MANY_PG, {
        **columns, "tenant": tenant, "keys": list(keys), "batch": batch, "ekeys": unread})
    if not rows:  # every one stored already
        return []
    topic_ids = dict(zip(rows[0][2] or (), rows[0][3] or ()))
    had_evidence = rows[0][4] or []
    done = [Indexed(posts[n - 1], message_id) for n, message_id, *_ in rows]
    missing = [key for key in keys if key not in topic_ids]
    if missing:  # first use of a topic: create it, then link the messages stored now that use it
        tags = [tag for item in done for tag in item.post.hashtags if topic_key(tag) in missing]
        topic_ids.update(topics_for(session, tenant, tags, now))
        links = [{"tenant": tenant, "message_id": item.message_id, "topic_id": topic_ids[key],
                  "sent_at": item.post.sent_at, "conversation_id": item.post.conversation_id}
                 for item in done for key in _labels(item.post) if key in missing and key in topic_ids]
        if links:
            session.execute(_insert(session)(MessageTopic.__table__).on_conflict_do_nothing(), links)
    for item in done:
        item.topic_ids = [topic_ids[key] for key in _labels(item.post) if key in topic_ids]
    stored = {n for n, *_ in rows}
    if any(n in stored for n in columns["e_n"]):  # evidence written
        evidence_log.touched(session, tenant)
        seen.update(((tenant, key), True) for key in had_evidence)
        if set(unread) - set(had_evidence):
            bump_version(session, tenant)
    _count_replies(session, done)
    return done


def any_subscriber(session: Session, tenant: str) -> bool:
    """Whether anyone in `tenant` subscribes to anyone or anything (read once per session)."""
    known = memo(session, _SUBSCRIBED)
    if (tenant, "any") not in known:
        sql = "SELECT 1 FROM follows WHERE tenant = ? AND level = 'subscribe' LIMIT 1"
        known[(tenant, "any")] = bool(driver_sql.fetch(session, sql, [tenant]))
    return bool(known[(tenant, "any")])


def _count_replies(session: Session, done: list[Indexed]) -> None:
    """The thread roots of freshly stored replies count them."""
    replies: dict[tuple[int, str], int] = defaultdict(int)
    for item in done:
        p = item.post
        if p.thread_external_id and p.thread_external_id != p.external_id:
            replies[(p.conversation_id, p.thread_external_id)] += 1
    for (conv_id, parent), n in replies.items():
        session.execute(
            update(Message)
            .where(Message.conversation_id == conv_id, Message.external_id == parent)
            .values(reply_count=Message.reply_count + n)
            .execution_options(synchronize_session=False)
        )


def _attach(session: Session, tenant: str, items: list[Indexed], now: datetime) -> None:
    """Topics, mentions and expertise evidence of freshly stored messages."""
    topic_ids = topics_for(session, tenant, (t for i in items for t in i.post.hashtags), now)
    topic_rows: list[dict[str, Any]] = []
    mention_rows: list[dict[str, Any]] = []
    evidence: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    batch = evidence_log.token(session)
    for item in items:
        p = item.post
        labels = _labels(p)
        item.topic_ids = [topic_ids[k] for k in labels if k in topic_ids]
        for tid in item.topic_ids:
            topic_rows.append({"tenant": tenant, "message_id": item.message_id, "topic_id": tid,
                               "sent_at": p.sent_at, "conversation_id": p.conversation_id})
        mentioned = list(dict.fromkeys(p.mention_ids))
        for pid in mentioned:
            mention_rows.append({"tenant": tenant, "message_id": item.message_id, "person_id": pid})
        ref = source_ref(p.conversation_id, p.external_id)
        snippet = shorten(p.text, SNIPPET_CHARS)
        for pid, key, label, kind in _grants(p, {k: v for k, v in labels.items() if k in topic_ids}, mentioned):
            evidence[(kind, ref, pid, key)] = {
                "tenant": tenant, "batch": batch, "person_id": pid, "topic_key": key, "topic_label": label,
                "kind": kind, "weight": WEIGHTS[kind], "occurred_at": p.sent_at, "source_ref": ref,
                "conversation_id": p.conversation_id, "snippet": snippet,
            }
    if topic_rows:
        session.execute(_insert(session)(MessageTopic.__table__).on_conflict_do_nothing(), topic_rows)
    if mention_rows:
        session.execute(_insert(session)(MessageMention.__table__).on_conflict_do_nothing(), mention_rows)
    if evidence:
        keys = {row["topic_key"] for row in evidence.values()}
        seen = memo(session, _KNOWN_EVIDENCE)
        known = {k for k in keys if (tenant, k) in seen}
        if keys - known:
            read = set(session.scalars(select(Evidence.topic_key).where(Evidence.topic_key.in_(list(keys - known))).distinct()))
            seen.update(((tenant, k), True) for k in read)
            known |= read
        session.execute(_insert(session)(Evidence.__table__).on_conflict_do_nothing(), list(evidence.values()))
        evidence_log.touched(session, tenant)
        if keys - known:
            bump_version(session, tenant)


def _labels(post: Post) -> dict[str, str]:
    """The post's topic keys, in the order of its hashtags, with the label each was last written as."""
    labels: dict[str, str] = {}
    for tag in post.hashtags:
        key = topic_key(tag)
        if key:
            labels[key] = tag.lstrip("#")[:200]
    return labels


def _grants(post: Post, labels: dict[str, str], mentioned: list[int]) -> list[tuple[int, str, str, str]]:
    """The evidence a post gives, per topic (key, label): (person id, key, label, kind), each once."""
    others = [pid for pid in mentioned if pid != post.author_id]
    kinds = [(post.author_id, "hashtag"), *((pid, "mentioned") for pid in others)]
    if post.thanked:
        kinds += [(pid, "thanked") for pid in others]
    grants = dict.fromkeys((pid, key, label, kind) for key, label in labels.items() for pid, kind in kinds)
    return list(grants)


# One statement per live message on PostgreSQL: the message, its topics (their ids read from the
# topics table by key), mentions and evidence, all inserted only when the message is new (`m` is
# empty for a message stored already), and back: its id, the ids of its topics that exist, and
# which of the `ekeys` topics had evidence before this statement (its snapshot is the one before).
_INGEST_ONE_PG = """
WITH tp AS (
  SELECT id, key FROM topics WHERE tenant = %(tenant)s AND key = ANY(%(keys)s::varchar[])
), m AS (
  INSERT INTO messages (tenant, conversation_id, external_id, author_id, thread_external_id, text, permalink,
                        sent_at, edited_at, reply_count, reaction_count, deleted)
  VALUES (%(tenant)s, %(conversation_id)s, %(external_id)s, %(author_id)s, %(thread)s, %(text)s, %(permalink)s,
          %(sent_at)s, NULL, 0, 0, false)
  ON CONFLICT DO NOTHING RETURNING id
), mt AS (
  INSERT INTO message_topics (tenant, message_id, topic_id, sent_at, conversation_id)
  SELECT %(tenant)s, m.id, tp.id, %(sent_at)s, %(conversation_id)s FROM m, tp
  ON CONFLICT DO NOTHING
), mm AS (
  INSERT INTO message_mentions (tenant, message_id, person_id)
  SELECT %(tenant)s, m.id, x.id FROM m, unnest(%(mentions)s::integer[]) AS x(id)
  ON CONFLICT DO NOTHING
), ev AS (
  INSERT INTO evidence (tenant, batch, person_id, topic_key, topic_label, kind, weight, occurred_at, source_ref,
                        conversation_id, snippet)
  SELECT %(tenant)s, %(batch)s, g.person_id, g.topic_key, g.topic_label, g.kind, g.weight, %(sent_at)s, %(ref)s,
         %(conversation_id)s, %(snippet)s
  FROM m, unnest(%(e_person)s::integer[], %(e_key)s::varchar[], %(e_label)s::varchar[], %(e_kind)s::varchar[],
                 %(e_weight)s::float8[]) AS g(person_id, topic_key, topic_label, kind, weight)
  ON CONFLICT DO NOTHING
)
SELECT m.id,
       (SELECT array_agg(key ORDER BY key) FROM tp), (SELECT array_agg(id ORDER BY key) FROM tp),
       ARRAY(SELECT DISTINCT topic_key FROM evidence WHERE tenant = %(tenant)s AND topic_key = ANY(%(ekeys)s::varchar[]))
FROM m
"""


def _ingest_one_pg(session: Session, tenant: str, p: Post, now: datetime) -> list[Indexed]:
    """`ingest` of one live message on PostgreSQL in one round trip instead of five (message,
    topic ids, topic links, evidence, whether the evidence's topics had any), run at the driver
    level: SQLAlchemy's work per statement cost more than the database's. The rare topic used
    for the first time is then created like `topics_for` does and linked in a second statement."""
    labels = _labels(p)
    mentioned = list(dict.fromkeys(p.mention_ids))
    grants = _grants(p, labels, mentioned)
    seen = memo(session, _KNOWN_EVIDENCE)
    unread = [key for key in labels if (tenant, key) not in seen] if grants else []
    batch = evidence_log.token(session) if grants else None
    params = {
        "tenant": tenant, "conversation_id": p.conversation_id, "external_id": p.external_id, "author_id": p.author_id,
        "thread": p.thread_external_id, "text": p.text, "permalink": p.permalink[:500], "sent_at": p.sent_at,
        "keys": list(labels), "mentions": mentioned, "batch": batch, "ref": source_ref(p.conversation_id, p.external_id),
        "snippet": shorten(p.text, SNIPPET_CHARS) if grants else "",
        "e_person": [g[0] for g in grants], "e_key": [g[1] for g in grants], "e_label": [g[2] for g in grants],
        "e_kind": [g[3] for g in grants], "e_weight": [WEIGHTS[g[3]] for g in grants], "ekeys": unread,
    }
    row = cursor_sql.first_row(session, _INGEST_ONE_PG, params)
    if row is None:  # stored already
        return []
    message_id, found_keys, found_ids, had_evidence = row
    topic_ids = dict(zip(found_keys or (), found_ids or ()))
    missing = [key for key in labels if key not in topic_ids]
    if missing:  # first use of a topic: create it, then link it
        created = topics_for(session, tenant, [tag for tag in p.hashtags if topic_key(tag) in missing], now)
        session.execute(_insert(session)(MessageTopic.__table__).on_conflict_do_nothing(), [
            {"tenant": tenant, "message_id": message_id, "topic_id": created[key], "sent_at": p.sent_at,
             "conversation_id": p.conversation_id} for key in missing if key in created])
        topic_ids.update(created)
    item = Indexed(p, message_id, [topic_ids[key] for key in labels if key in topic_ids])
    if grants:
        evidence_log.touched(session, tenant)
        seen.update(((tenant, key), True) for key in had_evidence)
        if set(unread) - set(had_evidence):
            bump_version(session, tenant)
    _count_replies(session, [item])
    return [item]


def _detach(session: Session, message: Message) -> None:
    session.execute(delete(MessageTopic).where(MessageTopic.message_id == message.id))
    session.execute(delete(MessageMention).where(MessageMention.message_id == message.id))
    evidence_log.delete_evidence(
        session, Evidence.kind.in_(INDEX_KINDS), Evidence.source_ref == source_ref(message.conversation_id, message.external_id)
    )


def find_message(session: Session, conversation_id: int, external_id: str) -> Message | None:
    return session.scalar(
        select(Message).where(Message.conversation_id == conversation_id, Message.external_id == external_id)
    )


def reindex(session: Session, tenant: str, post: Post, edited_at: datetime, now: datetime) -> Indexed | None:
    """An edit: replace text, topics, mentions and evidence. Unknown messages are indexed new."""
    message = find_message(session, post.conversation_id, post.external_id)
    if message is None:
        done = ingest(session, tenant, [post], now)
        return done[0] if done else None
    if message.deleted:
        return None
    _detach(session, message)
    message.text = post.text
    message.edited_at = edited_at
    session.flush()
    item = Indexed(post, message.id)
    _attach(session, tenant, [item], now)  # new topics bump the index version; evidence is logged
    return item


def remove(session: Session, tenant: str, conversation_id: int, external_id: str, now: datetime) -> bool:
    """A deletion: the text and everything derived go; a tombstone stays so a late duplicate
    delivery of the original does not index it again."""
    message = find_message(session, conversation_id, external_id)
    if message is None:
        session.execute(
            _insert(session)(Message.__table__).on_conflict_do_nothing(),
            [{"tenant": tenant, "conversation_id": conversation_id, "external_id": external_id, "author_id": None,
              "thread_external_id": None, "text": "", "permalink": "", "sent_at": now, "edited_at": None,
              "reply_count": 0, "reaction_count": 0, "deleted": True}],
        )
        return False
    if message.deleted:
        return False
    _detach(session, message)
    message.deleted = True
    message.text = ""
    message.permalink = ""
    if message.thread_external_id and message.thread_external_id != message.external_id:
        session.execute(
            update(Message)
            .where(Message.conversation_id == conversation_id, Message.external_id == message.thread_external_id,
                   Message.reply_count > 0)
            .values(reply_count=Message.reply_count - 1)
            .execution_options(synchronize_session=False)
        )
    session.flush()  # the evidence removed is logged for every process's index (store/evidence_log.py)
    return True


def react(session: Session, tenant: str, conversation_id: int, external_id: str, user_id: int, reaction: str,
          removed: bool, now: datetime | None = None) -> None:
    """Count reactions once per (message, person, emoji), whatever the platform redelivers, and
    record who reacted on which UTC day (store.analytics: reactors-only)."""
    key = f"react:{conversation_id}:{external_id}:{user_id}:{reaction}"[:300]
    if removed:
        gone = session.execute(delete(ProcessedEvent).where(ProcessedEvent.key == key)).rowcount
        delta = -1 if gone else 0
    else:
        delta = 1 if claim(session, tenant, key) else 0
        if delta:
            at = now or datetime.now(timezone.utc)
            analytics.record_reaction(session, tenant, conversation_id, external_id, user_id, at.astimezone(timezone.utc).date(), at)
    if delta:
        session.execute(
            update(Message)
            .where(Message.conversation_id == conversation_id, Message.external_id == external_id,
                   Message.reaction_count + delta >= 0)
            .values(reaction_count=Message.reaction_count + delta)
            .execution_options(synchronize_session=False)
        )


# Follows -------------------------------------------------------------------
def target_key(person: Person | None = None, topic: Topic | None = None) -> str:
    return f"p:{person.id}" if person is not None else f"t:{topic.id}"  # type: ignore[union-attr]


def follow(session: Session, follower: Person, *, person: Person | None = None, topic: Topic | None = None,
           level: str, now: datetime) -> str:
    """Follow or subscribe; returns "new", "changed" or "same".

    INSERT … ON CONFLICT DO NOTHING, then read: the same follow submitted twice at once
    (a double click, a platform retry in another process) is one row, never a failure."""
    key = target_key(person, topic)
    memo(session, _SUBSCRIBED).clear()  # written here: who has subscribers is read again
    if insert_ignore(session, Follow, {
        "tenant": follower.tenant, "follower_id": follower.id, "target_key": key,
        "person_id": person.id if person else None, "topic_id": topic.id if topic else None,
        "level": level, "created_at": now,
    }):
        return "new"
    row = session.scalar(select(Follow).where(Follow.follower_id == follower.id, Follow.target_key == key))
    assert row is not None
    if row.level == level:
        return "same"
    row.level = level
    session.flush()  # the subscribers check reads at the driver level, without autoflush
    return "changed"


def unfollow(session: Session, follower: Person, *, person: Person | None = None, topic: Topic | None = None,
             level: str | None = None) -> bool:
    """Stop following (level None) or step a subscription down to a plain follow ("follow")."""
    key = target_key(person, topic)
    row = session.scalar(select(Follow).where(Follow.follower_id == follower.id, Follow.target_key == key))
    if row is None:
        return False
    if level == "follow":
        if row.level != "subscribe":
            return False
        row.level = "follow"
        return True
    session.delete(row)
    session.flush()
    return True


def topic_by_tag(session: Session, tag: str) -> Topic | None:
    key = topic_key(tag)
    return session.scalar(select(Topic).where(Topic.key == key)) if key else None


def following(session: Session, person: Person) -> list[tuple[Follow, Person | None, Topic | None]]:
    rows = session.execute(
        select(Follow, Person, Topic)
        .outerjoin(Person, Person.id == Follow.person_id)
        .outerjoin(Topic, Topic.id == Follow.topic_id)
        .where(Follow.follower_id == person.id)
        .order_by(Follow.created_at, Follow.id)
    )
    return [(f, p, t) for f, p, t in rows]


def followers(session: Session, person: Person) -> list[tuple[Person, str]]:
    rows = session.execute(
        select(Person, Follow.level).join(Follow, Follow.follower_id == Person.id)
        .where(Follow.person_id == person.id).order_by(Person.display_name)
    )
    return [(p, level) for p, level in rows]


def follower_count(session: Session, *, person: Person | None = None, topic: Topic | None = None) -> int:
    column = Follow.person_id if person is not None else Follow.topic_id
    target = person.id if person is not None else topic.id  # type: ignore[union-attr]
    return session.scalar(select(func.count(Follow.id)).where(column == target)) or 0


def subscribers(session: Session, conversation_id: int, author_id: int, topic_ids: Sequence[int]) -> list[Person]:
    """People subscribed to the author or one of the topics who may read the conversation."""
    if not _any_subscriber(session, author_id, topic_ids):
        return []  # the common case, answered by one small indexed query (or a memo), before building any
    target = Follow.person_id == author_id
    if topic_ids:
        target = or_(target, Follow.topic_id.in_(list(topic_ids)))
    query = (
        select(Person)
        .join(Follow, Follow.follower_id == Person.id)
        .join(Conversation, Conversation.id == conversation_id)
        .where(Follow.level == "subscribe", target, Person.id != author_id, Person.active,
               readable_by_column(Person.id))
        .distinct()
        .order_by(Person.id)
    )
    return list(session.scalars(query))


def _any_subscriber(session: Session, author_id: int, topic_ids: Sequence[int]) -> bool:
    tenant = session.info.get("tenant")
    if tenant in (None, ALL_TENANTS):
        target = Follow.person_id == author_id
        if topic_ids:
            target = or_(target, Follow.topic_id.in_(list(topic_ids)))
        return session.scalar(select(Follow.id).where(Follow.level == "subscribe", target).limit(1)) is not None
    # Every indexed message asks: at the driver level, and each answer once per session (an
    # inbox batch: store/memo.py; `follow` forgets them). A stale True only costs the full query.
    if not any_subscriber(session, tenant):
        return False
    known = memo(session, _SUBSCRIBED)
    keys = [(tenant, "p", author_id), *((tenant, "t", t) for t in topic_ids)]
    if any(known.get(k) for k in keys):
        return True
    people = [k[2] for k in keys if k not in known and k[1] == "p"]
    topics = [k[2] for k in keys if k not in known and k[1] == "t"]
    if not people and not topics:
        return False
    targets = [f"person_id IN ({driver_sql.placeholders(len(people))})"] if people else []
    targets += [f"topic_id IN ({driver_sql.placeholders(len(topics))})"] if topics else []
    sql = f"SELECT DISTINCT person_id, topic_id FROM follows WHERE tenant = ? AND level = 'subscribe' AND ({' OR '.join(targets)})"
    found = driver_sql.fetch(session, sql, [tenant, *people, *topics])
    known.update(((tenant, "p", p), False) for p in people)
    known.update(((tenant, "t", t), False) for t in topics)
    for person_id, topic_id in found:
        known[(tenant, "p", person_id) if person_id is not None else (tenant, "t", topic_id)] = True
    return any(known.get(k) for k in keys)


# Feed ----------------------------------------------------------------------
MAX_SOURCES = 300


@lru_cache(maxsize=512)
def _feed_statement(n_people: int, n_topics: int) -> Any:
    """The feed's id query for a shape of follows, built once: one short newest-first index
    scan per followed person or topic (LIMIT :want each), merged and paged. Only the number
    of sources shapes it; ids go in as bound parameters."""
    viewer = bindparam("viewer")
    tenant = bindparam("tenant")
    want = bindparam("want", type_=Integer)
    parts: list[Select[Any]] = []
    for i in range(n_people):
        q = (
            select(Message.id.label("mid"), Message.sent_at.label("at"))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.tenant == tenant, Message.author_id == bindparam(f"p{i}"), Message.deleted.is_(False),
                   readable_by(viewer))
            .order_by(Message.sent_at.desc())
            .limit(want)
        )
        parts.append(select(q.subquery()))
    for i in range(n_topics):
        q = (
            select(MessageTopic.message_id.label("mid"), MessageTopic.sent_at.label("at"))
            .join(Conversation, Conversation.id == MessageTopic.conversation_id)
            .join(Message, Message.id == MessageTopic.message_id)
            .where(MessageTopic.tenant == tenant, MessageTopic.topic_id == bindparam(f"t{i}"),
                   Message.author_id != viewer, readable_by(viewer))
            .order_by(MessageTopic.sent_at.desc())
            .limit(want)
        )
        parts.append(select(q.subquery()))
    merged = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    return (
        select(merged.c.mid, func.max(merged.c.at).label("at"))
        .group_by(merged.c.mid)
        .order_by(func.max(merged.c.at).desc(), merged.c.mid.desc())
        .offset(bindparam("skip", type_=Integer))
        .limit(bindparam("take", type_=Integer))
    )


@lru_cache(maxsize=512)
def _feed_sql(dialect: str, n_people: int, n_topics: int) -> tuple[str, dict[str, Any]]:
    """`_feed_statement` compiled once to SQL text with named parameters: executing it skips
    SQLAlchemy's per-call cache-key walk over a statement of dozens of subqueries."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import psycopg

        compiled_dialect: Any = psycopg.dialect()
    else:
        from sqlalchemy.dialects import sqlite

        compiled_dialect = sqlite.dialect(paramstyle="named")
    compiled = _feed_statement(n_people, n_topics).compile(dialect=compiled_dialect)
    constants = {k: v for k, v in compiled.params.items() if v is not None}  # literals like 'public'
    return str(compiled), constants


@dataclass(frozen=True)
class FeedItem:
    message_id: int
    author: str               # display name (or handle, or platform id); "" when unknown
    channel: str
    sent_at: datetime
    text: str
    permalink: str
    topics: tuple[str, ...]


_FEED_SOURCES = select(Follow.person_id, Follow.topic_id).where(
    Follow.tenant == bindparam("tenant"), Follow.follower_id == bindparam("viewer"))
_FEED_ITEMS = (
    select(Message.id, Message.text, Message.permalink, Message.sent_at, Conversation.name,
           Person.display_name, Person.handle, Person.external_id)
    .join(Conversation, Conversation.id == Message.conversation_id)
    .outerjoin(Person, Person.id == Message.author_id)
    .where(Message.tenant == bindparam("tenant"), Message.id.in_(bindparam("ids", expanding=True)),
           Message.deleted.is_(False), Message.author_id != bindparam("viewer"), readable_by(bindparam("viewer")))
)
_FEED_TAGS = (
    select(MessageTopic.message_id, Topic.label).join(Topic, Topic.id == MessageTopic.topic_id)
    .where(MessageTopic.tenant == bindparam("tenant"), MessageTopic.message_id.in_(bindparam("ids", expanding=True)))
)


def feed(session: Session, viewer: Person, *, page: int = 1, size: int = 5) -> tuple[list[FeedItem], bool]:
    """The viewer's page of posts by followed people or on followed topics, newest first,
    from conversations they may read (`readable_by` in every statement). Returns
    (items, has_more).

    One short index range scan per followed source (newest first, limited), merged: the cost
    depends on how many sources someone follows, not on the size of the index. Statements
    are built once and run as Core on the session's connection with the tenant explicit:
    the ORM's per-statement work cost more than the queries themselves."""
    conn = session.connection()
    base = {"tenant": viewer.tenant, "viewer": viewer.id}
    sources = conn.execute(_FEED_SOURCES, base).all()
    if not sources:
        return [], False
    people = [p for p, _ in sources if p is not None][:MAX_SOURCES]
    topics = [t for p, t in sources if p is None and t is not None][:MAX_SOURCES]
    params: dict[str, Any] = {**base, "want": page * size + 1, "skip": (page - 1) * size, "take": size + 1}
    params.update({f"p{i}": v for i, v in enumerate(people)})
    params.update({f"t{i}": v for i, v in enumerate(topics)})
    sql, constants = _feed_sql(conn.dialect.name, len(people), len(topics))
    ids = [row[0] for row in conn.exec_driver_sql(sql, {**constants, **params})]
    has_more = len(ids) > size
    ids = ids[:size]
    if not ids:
        return [], False
    tags: dict[int, list[str]] = defaultdict(list)
    for mid, label in conn.execute(_FEED_TAGS, {**base, "ids": ids}):
        tags[mid].append(label)
    by_id = {
        mid: FeedItem(mid, name or handle or ext or "", channel, sent_at, text, permalink, tuple(tags[mid]))
        for mid, text, permalink, sent_at, channel, name, handle, ext in conn.execute(_FEED_ITEMS, {**base, "ids": ids})
    }
    return [by_id[i] for i in ids if i in by_id], has_more


# Topic card ------------------------------------------------------------------
@dataclass(frozen=True)
class TopicCard:
    topic: Topic
    contributors: list[tuple[Person, float]]
    followers: int
    recent: list[tuple[Message, Person | None, Conversation]]
    related: list[tuple[str, int]]
    channels: list[tuple[Conversation, int]]
    animators: list[tuple[Person, Conversation]]


def topic_card(session: Session, viewer: Person, topic: Topic, *, limit: int = 5) -> TopicCard | None:
    """What `viewer` may see about a topic; None when nothing readable mentions it."""
    channels = list(
        session.execute(
            select(Conversation, func.count(MessageTopic.id))
            .join(MessageTopic, MessageTopic.conversation_id == Conversation.id)
            .where(MessageTopic.topic_id == topic.id, readable_by(viewer.id))
            .group_by(Conversation.id)
            .order_by(func.count(MessageTopic.id).desc(), Conversation.name)
        )
    )
    contributors = list(
        session.execute(
            select(Person, func.sum(Evidence.weight))
            .join(Evidence, Evidence.person_id == Person.id)
            .outerjoin(Conversation, Conversation.id == Evidence.conversation_id)
            .where(Evidence.topic_key == topic.key, Person.active,
                   or_(Evidence.conversation_id.is_(None), readable_by(viewer.id)))
            .group_by(Person.id)
            .order_by(func.sum(Evidence.weight).desc(), Person.display_name)
            .limit(limit)
        )
    )
    if not channels and not contributors:
        return None
    recent = list(
        session.execute(
            select(Message, Person, Conversation)
            .join(MessageTopic, MessageTopic.message_id == Message.id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .outerjoin(Person, Person.id == Message.author_id)
            .where(MessageTopic.topic_id == topic.id, readable_by(viewer.id))
            .order_by(MessageTopic.sent_at.desc())
            .limit(limit)
        )
    )
    mine, other = aliased(MessageTopic), aliased(MessageTopic)
    related = list(
        session.execute(
            select(Topic.label, func.count(other.id))
            .select_from(mine)
            .join(other, and_(other.message_id == mine.message_id, other.topic_id != mine.topic_id))
            .join(Topic, Topic.id == other.topic_id)
            .join(Conversation, Conversation.id == mine.conversation_id)
            .where(mine.topic_id == topic.id, readable_by(viewer.id))
            .group_by(Topic.id, Topic.label)
            .order_by(func.count(other.id).desc(), Topic.label)
            .limit(limit)
        )
    )
    conv_ids = [c.id for c, _ in channels]
    animators = list(
        session.execute(
            select(Person, Conversation)
            .join(Role, Role.person_id == Person.id)
            .join(Conversation, Conversation.id == Role.conversation_id)
            .where(Role.role == "animator", Role.conversation_id.in_(conv_ids), Person.active)
            .order_by(Conversation.name, Person.display_name)
        )
    ) if conv_ids else []
    return TopicCard(topic, contributors, follower_count(session, topic=topic), recent, related, channels, animators)


def visible_evidence(session: Session, viewer_id: int, person_id: int, topic: str | None = None,
                     limit: int = 5) -> list[Evidence]:
    """Evidence "why" snippets about `person_id` that `viewer_id` may read (newest first).
    Evidence without a conversation (declared skills, kudos given by command) is public."""
    query = (
        select(Evidence)
        .outerjoin(Conversation, Conversation.id == Evidence.conversation_id)
        .where(Evidence.person_id == person_id, or_(Evidence.conversation_id.is_(None), readable_by(viewer_id)))
        .order_by(Evidence.occurred_at.desc(), Evidence.id.desc())
        .limit(limit)
    )
    if topic:
        query = query.where(Evidence.topic_key == topic_key(topic))
    return list(session.scalars(query))
