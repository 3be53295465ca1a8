"""A synthetic organisation with 26 weeks of activity, for the adoption-analytics benchmark.

`build(db, tenant, n_people, seed)` bulk-loads, with SQLAlchemy Core executemany in chunks
(nothing held whole), into the real tables: people (departments, sites, time zones,
languages), channels (10 people a channel; a few big ones, many small ones, one in 25
private, one in four gone quiet at some point), memberships (a member's join date spread over
the year), messages (10 a person: 60 % thread starters, 40 % replies in the threads of the
same channel, `reply_count` kept), reactions (`message_reactions`, `reaction_count` kept),
ideas and their votes, help requests (answered within hours, some after days, some never)
and kudos, with animator roles on the channels.

Who takes part is skewed as in real deployments: about 22 % of people are contributors
(their share of the posts on a steep curve), another 20 % only react, the rest read.
A few posts a day come from someone outside the contributors (first-time contributors).
Activity follows the week (weekends at 15 %), office hours, and grows slowly over the
half-year. Deterministic for a given seed.
"""
from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

from sqlalchemy import func, insert, select

from bench.org import DEPARTMENTS, FIRST, LAST, SITES
from store.db import Database
from store.models.contribution import HelpRequest, Idea, IdeaVote, Kudos
from store.models.core import Conversation, ConversationMember, Person, Role, Workspace
from store.models.social import Message

END = datetime(2026, 11, 24, 0, 0, tzinfo=timezone.utc)  # Tuesday: the history ends with Monday 23
WEEKS = 26
START = END - timedelta(weeks=WEEKS)
DAYS = WEEKS * 7
CHUNK = 20000
CONTRIBUTORS = 0.22
REACTORS = 0.20
LANGS = ("fr", "en", "fr", "en", "de", "es")


@dataclass
class Org:
    tenant: str
    n_people: int
    n_channels: int
    n_messages: int
    people: list[int] = field(default_factory=list)
    channels: list[int] = field(default_factory=list)        # conversation ids, by index
    sizes: list[int] = field(default_factory=list)           # members per channel index
    kinds: list[str] = field(default_factory=list)
    animators: dict[int, int] = field(default_factory=dict)  # conversation id -> person id
    admin: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def _insert(conn: Any, table: Any, rows: Iterable[dict[str, Any]]) -> int:
    """Insert `rows` in chunks through the driver's executemany (one compiled statement per
    table; values converted here as the column types would, without the per-value work)."""
    n = 0
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            n += _execute(conn, table, chunk)
            chunk = []
    if chunk:
        n += _execute(conn, table, chunk)
    return n


def _execute(conn: Any, table: Any, chunk: list[dict[str, Any]]) -> int:
    sqlite = conn.dialect.name == "sqlite"
    missing = {c.name: (c.default.arg if c.default.is_scalar else c.default.arg(None))
               for c in table.columns if c.name not in chunk[0] and c.default is not None}
    if missing:  # columns the rows do not name (another feature's): their Python-side defaults
        chunk = [{**missing, **row} for row in chunk]
    names = list(chunk[0])
    mark = "?" if sqlite else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(mark for _ in names)})"
    if sqlite:
        def value(v: Any) -> Any:
            if isinstance(v, datetime):
                return v.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")
            if isinstance(v, date):
                return v.isoformat()
            if isinstance(v, bool):
                return int(v)
            return v
        params = [tuple(value(row[k]) for k in names) for row in chunk]
    else:
        params = [tuple(row[k] for k in names) for row in chunk]
    conn.exec_driver_sql(sql, params)
    return len(chunk)


class Clock:
    """Random instants over the 26 weeks: weekdays, office hours, slow growth."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        weights = []
        for d in range(DAYS):
            day = START + timedelta(days=d)
            w = (1.0 if day.weekday() < 5 else 0.15) * (0.8 + 0.4 * d / DAYS)
            weights.append(w)
        total = sum(weights)
        acc = 0.0
        self.cumulative = []
        for w in weights:
            acc += w / total
            self.cumulative.append(acc)

    def day(self, until: int = DAYS) -> int:
        x = self.rng.random() * (self.cumulative[until - 1] if until < DAYS else 1.0)
        return min(bisect.bisect_left(self.cumulative, x), until - 1)

    def at(self, until: int = DAYS) -> datetime:
        d = self.day(until)
        hour = 7 + self.rng.random() * 11 if self.rng.random() < 0.9 else self.rng.random() * 24
        return START + timedelta(days=d, hours=hour)


def build(db: Database, tenant: str, n_people: int, seed: int = 15) -> Org:
    """Load the organisation into `tenant` (empty); returns what the benchmark needs to know."""
    rng = random.Random(seed)
    n_channels = max(20, n_people // 10)
    n_messages = n_people * 10
    org = Org(tenant, n_people, n_channels, n_messages)
    clock = Clock(rng)
    P = Person.__table__
    with db.engine.begin() as conn:
        if conn.execute(select(Workspace.id).where(Workspace.id == tenant)).first() is None:
            conn.execute(insert(Workspace.__table__), [{"id": tenant, "platform": "bench", "name": f"analytics {n_people}",
                                                        "default_locale": "fr", "expertise_version": 0, "created_at": START}])

        def people_rows() -> Iterator[dict[str, Any]]:
            for i in range(n_people):
                site, tz = SITES[i % len(SITES)]
                yield {"tenant": tenant, "external_id": f"u{i}", "handle": f"user{i}",
                       "display_name": f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]} {i}",
                       "email": f"user{i}@bench.example", "title": "", "department": DEPARTMENTS[(i * 7) % len(DEPARTMENTS)],
                       "site": site, "tz": tz, "languages": "", "locale": LANGS[i % len(LANGS)] if i % 3 else None,
                       "avatar_url": "", "is_bot": False, "active": i % 200 != 7, "accepts_mentions": True,
                       "profile_synced_at": None, "created_at": START - timedelta(days=200), "updated_at": START}

        _insert(conn, P, people_rows())
        org.people = [pid for (pid,) in conn.execute(select(P.c.id).where(P.c.tenant == tenant).order_by(P.c.id))]
        people = org.people
        org.admin = people[0]
        # Who takes part: a contributor set and a reacting set, disjoint, in random order.
        shuffled = people[1:]
        rng.shuffle(shuffled)
        n_contrib = int(n_people * CONTRIBUTORS)
        contributors = set(shuffled[:n_contrib])
        reactors = set(shuffled[n_contrib:n_contrib + int(n_people * REACTORS)])

        # Channels: one all-company channel, then a steep curve (a few thousand-member
        # channels, most under 30 members).
        sizes = [n_people] + [min(n_people, 4 + int(min(n_people / 5, 2500) * rng.random() ** 9)) for _ in range(n_channels - 1)]
        kinds = ["public" if i == 0 or i % 25 else "private" for i in range(n_channels)]
        quiet_from = [DAYS if i == 0 or rng.random() > 0.25 else rng.randrange(DAYS // 3, DAYS - 30) for i in range(n_channels)]
        names = ["general"] + [f"{DEPARTMENTS[i % len(DEPARTMENTS)].lower()}-team-{i}" if i % 3 else f"projet-{i}-équipe"
                               for i in range(1, n_channels)]
        C = Conversation.__table__
        first = (conn.execute(select(func.max(C.c.id))).scalar() or 0) + 1
        _insert(conn, C, ({"tenant": tenant, "external_id": f"c{i}", "name": names[i], "kind": kinds[i],
                           "language": ("fr", "en", None)[i % 3], "tz": "Europe/Paris", "bot_member": True, "indexing": True,
                           "member_count": sizes[i], "created_at": START - timedelta(days=400)} for i in range(n_channels)))
        org.channels = [cid for (cid,) in conn.execute(select(C.c.id).where(C.c.tenant == tenant, C.c.id >= first).order_by(C.c.id))]
        org.sizes, org.kinds = sizes, kinds

        posters: list[list[int]] = []
        reacting: list[list[int]] = []
        members_of: list[list[int]] = []

        def member_rows() -> Iterator[dict[str, Any]]:
            for index, cid in enumerate(org.channels):
                chosen = people if sizes[index] >= n_people else rng.sample(people, sizes[index])
                post = [p for p in chosen if p in contributors] or chosen[:1]
                rng.shuffle(post)
                posters.append(post)
                reacting.append([p for p in chosen if p in reactors] + post)
                members_of.append(chosen if len(chosen) <= 200 else rng.sample(chosen, 200))  # outsiders' pool
                for pid in chosen:
                    joined = START - timedelta(days=rng.random() * 300) if rng.random() < 0.8 else clock.at()
                    yield {"tenant": tenant, "conversation_id": cid, "person_id": pid, "joined_at": joined}

        org.counts["memberships"] = _insert(conn, ConversationMember.__table__, member_rows())
        org.animators = {cid: posters[i][0] for i, cid in enumerate(org.channels)}
        _insert(conn, Role.__table__, ({"tenant": tenant, "person_id": pid, "role": "animator", "conversation_id": cid,
                                        "granted_by": None, "created_at": START} for cid, pid in org.animators.items()))

        # Messages: each channel's share by its size, written channel by channel so replies
        # land in the threads of their own channel, after their root.
        weights = [0.0 if i == 0 else s ** 0.9 for i, s in enumerate(sizes)]
        weights[0] = sum(weights) * 0.03  # the all-company channel: announcements, little chatter
        total_w = sum(weights)
        per_channel = [int(n_messages * w / total_w) for w in weights]
        for _ in range(n_messages - sum(per_channel)):
            per_channel[rng.randrange(n_channels)] += 1
        M = Message.__table__
        reactions: list[tuple[int, str, int, date]] = []
        reaction_table = _reaction_table()
        counters = {"messages": 0, "replies": 0, "reactions": 0}

        def flush_reactions() -> None:
            if reaction_table is not None and reactions:
                conn.execute(insert(reaction_table), [
                    {"tenant": tenant, "conversation_id": c, "message_external_id": e, "person_id": p, "day": d, "created_at": END}
                    for c, e, p, d in reactions])
            counters["reactions"] += len(reactions)
            reactions.clear()

        def author(index: int) -> int:
            if rng.random() < 0.004:  # someone who had never written there
                return rng.choice(members_of[index])
            post = posters[index]
            return post[int(len(post) * rng.random() ** 2.5)]

        def message_rows() -> Iterator[dict[str, Any]]:
            serial = 0
            for index, cid in enumerate(org.channels):
                count = per_channel[index]
                if not count:
                    continue
                until = quiet_from[index]
                n_roots = max(1, int(count * 0.6))
                roots: list[tuple[str, datetime]] = []
                replies_of: dict[str, int] = {}
                rows: list[dict[str, Any]] = []
                for _ in range(n_roots):
                    serial += 1
                    ext, at = f"m{serial}", clock.at(until)
                    roots.append((ext, at))
                    rows.append({"tenant": tenant, "conversation_id": cid, "external_id": ext, "author_id": author(index),
                                 "thread_external_id": None, "text": f"Post {serial} sur le devis Airbus et #kubernetes",
                                 "permalink": "", "sent_at": at, "edited_at": None, "reply_count": 0, "reaction_count": 0,
                                 "deleted": serial % 400 == 0})
                for _ in range(count - n_roots):
                    serial += 1
                    root, at = roots[int(len(roots) * rng.random() ** 3)]
                    replies_of[root] = replies_of.get(root, 0) + 1
                    rows.append({"tenant": tenant, "conversation_id": cid, "external_id": f"m{serial}", "author_id": author(index),
                                 "thread_external_id": root, "text": f"Réponse {serial}", "permalink": "",
                                 "sent_at": min(END - timedelta(seconds=1), at + timedelta(hours=rng.expovariate(1 / 5))),
                                 "edited_at": None, "reply_count": 0, "reaction_count": 0, "deleted": False})
                pool = reacting[index]
                for row in rows:
                    row["reply_count"] = replies_of.get(row["external_id"], 0)
                    n = min(len(pool), int(rng.random() ** 3 * 8))
                    if n:
                        day = row["sent_at"].date()
                        who = {pool[int(len(pool) * rng.random() ** 2)] for _ in range(n)}
                        for pid in who:
                            reactions.append((cid, row["external_id"], pid, day))
                        row["reaction_count"] = len(who)
                    yield row
                counters["replies"] += count - n_roots
                if len(reactions) >= CHUNK:
                    flush_reactions()

        counters["messages"] = _insert(conn, M, message_rows())
        flush_reactions()
        org.counts.update(counters)

        cumul = _cumulative(weights)

        def channel_and_person() -> tuple[int | None, int]:
            index = min(bisect.bisect_left(cumul, rng.random()), n_channels - 1)
            return org.channels[index], author(index)

        n_ideas = max(10, n_messages // 50)
        I = Idea.__table__
        first_idea = (conn.execute(select(func.max(I.c.id))).scalar() or 0) + 1

        def idea_rows() -> Iterator[dict[str, Any]]:
            for i in range(n_ideas):
                cid, pid = channel_and_person()
                at = clock.at()
                yield {"tenant": tenant, "number": i + 1, "title": f"Idée {i}", "details": "", "tags": "", "author_id": pid,
                       "anonymous": i % 7 == 0, "status": ("new", "new", "under_review", "accepted", "in_progress", "done", "declined")[i % 7],
                       "decline_reason": "", "campaign_id": None, "conversation_id": cid if i % 4 else None,
                       "source_permalink": "", "vote_count": 3, "created_at": at, "updated_at": at + timedelta(days=rng.random() * 20)}

        org.counts["ideas"] = _insert(conn, I, idea_rows())
        voters = list(reactors | contributors)
        org.counts["votes"] = _insert(conn, IdeaVote.__table__, ({
            "tenant": tenant, "idea_id": first_idea + i, "person_id": v,
            "created_at": clock.at()} for i in range(n_ideas) for v in {rng.choice(voters) for _ in range(3)}))

        def help_rows() -> Iterator[dict[str, Any]]:
            for i in range(n_ideas):
                cid, pid = channel_and_person()
                at = clock.at()
                x = rng.random()
                answered = None if x < 0.15 else at + timedelta(hours=rng.expovariate(1 / 6) if x < 0.85 else 48 + rng.random() * 100)
                if answered is not None and answered >= END:
                    answered = None
                helper = rng.choice(voters) if answered else None
                status = "open" if answered is None else ("resolved" if rng.random() < 0.6 else "claimed")
                yield {"tenant": tenant, "source_key": f"h{i}", "number": i + 1, "asker_id": pid, "question": f"Qui connaît le dossier Safran ? ({i})",
                       "topics": "", "conversation_id": cid, "conversation_external_id": "", "thread_id": "", "permalink": "",
                       "status": status, "claimer_id": helper, "claimed_at": answered, "answered_at": answered,
                       "resolved_at": answered if status == "resolved" else None, "resolved_by": helper if status == "resolved" else None,
                       "helper_id": helper, "answer": "", "escalate_at": None, "escalated_at": None, "shared_at": None,
                       "shared_by": None, "created_at": at}

        org.counts["help_requests"] = _insert(conn, HelpRequest.__table__, help_rows())
        seen_kudos: set[tuple[int, int, date]] = set()

        def kudos_rows() -> Iterator[dict[str, Any]]:
            for _ in range(n_ideas * 2):
                cid, giver = channel_and_person()
                recipient = rng.choice(voters)
                at = clock.at()
                key = (giver, recipient, at.date())
                if recipient == giver or key in seen_kudos:
                    continue
                seen_kudos.add(key)
                yield {"tenant": tenant, "giver_id": giver, "recipient_id": recipient, "reason": "pour le devis", "skills": "",
                       "conversation_id": cid, "help_request_id": None, "weight": 1.0, "created_at": at, "day": at.date()}

        org.counts["kudos"] = _insert(conn, Kudos.__table__, kudos_rows())
    db.analyze()
    return org


def _cumulative(weights: list[float]) -> list[float]:
    total = sum(weights)
    acc, out = 0.0, []
    for w in weights:
        acc += w / total
        out.append(acc)
    return out


def _reaction_table() -> Any:
    """The analytics feature's reactions table (store/models/analytics.py), when it exists."""
    try:
        from store.models.analytics import MessageReaction
    except ImportError:
        return None
    return MessageReaction.__table__
