"""Evidence held in memory, so "who knows X?" ranks people without a database read.

One `EvidenceBook` per workspace index. Per topic it keeps every piece of evidence as
parallel arrays (id, person, conversation, time, weight × kind weight, kind) and, on
demand, aggregates per person: the decayed weighted sum, the latest time and counts
per kind, exactly as handlers/expertise/scoring.py defines them.

Privacy (store/visibility.py) is applied per reader. Evidence outside any conversation
or in an indexed public conversation is readable by everyone: its aggregate is computed
once and cached. Evidence in an indexed private conversation (private channel, group
chat, DM) counts only for that conversation's members: it is aggregated per
conversation and merged with the public aggregate for a reader who belongs to it (one
indexed read of their memberships, made only when matched topics have such evidence;
the merge is cached per set of conversations, so a channel's members share it).
Evidence in a conversation that is not indexed never counts.

A cached aggregate stays exact until a row of its topic changes or `now` reaches the
next moment one of its rows moves to an older decay bucket (both tracked).

The book follows other processes' writes through the evidence log (store/evidence_log.py):
`sync` reads only what was sequenced after the book's own sequence number.
"""
from __future__ import annotations

import heapq
import time
from array import array
from bisect import insort
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from sqlalchemy.orm import Session

import store.expertise as xstore
from handlers.expertise.scoring import AGE_BUCKETS, DAY, KIND_WEIGHT, OLDEST_DECAY, OTHER_KIND_WEIGHT
from store import evidence_log

PUBLIC, MEMBERS, HIDDEN = 0, 1, 2
KINDS: tuple[str, ...] = tuple(KIND_WEIGHT)  # the kinds counted apart; any other counts as "other"
OTHER = len(KINDS)  # the code of every kind without its own weight and count
NO_CONVERSATION = 0
MERGED_KEPT = 4   # merged audiences kept per topic (members of one channel share one)
EAGER_ROWS = 16   # topics with at least this much evidence are aggregated at the build (see EvidenceBook.load)
BUCKETS = tuple((upper * DAY, factor) for upper, factor in AGE_BUCKETS)
INFINITY = float("inf")


def conversation_class(kind: str | None, indexing: bool | None) -> int:
    """Who may read evidence from a conversation (the rules of store/visibility.py)."""
    if not indexing:
        return HIDDEN
    return PUBLIC if kind == "public" else MEMBERS


def audience_of(conv: int, classes: dict[int, int]) -> int:
    return PUBLIC if conv == NO_CONVERSATION else classes.get(conv, HIDDEN)


def decay_until(occurred: float, now: float) -> tuple[float, float]:
    """The decay of evidence that occurred at `occurred`, seen at `now`, and until when it holds
    (the age buckets of handlers/expertise/scoring.py: the bucket applies while `age < upper`)."""
    age = now - occurred
    for bound, factor in BUCKETS:
        if age < bound:
            return factor, occurred + bound
    return OLDEST_DECAY, INFINITY


class PersonStats:
    """One person's readable evidence on one topic: decayed weight, latest time, counts per kind."""

    __slots__ = ("weighted", "latest", "counts")

    def __init__(self) -> None:
        self.weighted = 0.0
        self.latest = 0.0
        self.counts = [0] * (OTHER + 1)

    def count_by_kind(self) -> dict[str, int]:
        return {KINDS[i] if i < OTHER else "other": n for i, n in enumerate(self.counts) if n}

    def add(self, other: "PersonStats") -> None:
        self.weighted += other.weighted
        self.latest = max(self.latest, other.latest)
        for i, n in enumerate(other.counts):
            self.counts[i] += n


class Aggregate:
    """Per-person stats of one reading audience (everyone, or one private conversation's
    members), ranked by decayed weight."""

    __slots__ = ("stats", "ranked")

    def __init__(self) -> None:
        self.stats: dict[int, PersonStats] = {}
        self.ranked: list[int] = []

    def get(self, person: int) -> PersonStats | None:
        return self.stats.get(person)

    def ordered(self) -> Iterator[int]:
        return iter(self.ranked)

    def rank(self) -> None:
        stats = self.stats
        if len(stats) == 1:
            self.ranked = list(stats)
        else:
            self.ranked = sorted(stats, key=lambda p: (-stats[p].weighted, p))

    def bump(self, person: int, weighted: float, occurred: float, kind: int) -> None:
        """Add one piece of evidence, keeping the ranking sorted."""
        stats = self.stats
        found = stats.get(person)
        if found is None:
            found = stats[person] = PersonStats()
        else:
            self.ranked.remove(person)
        found.weighted += weighted
        found.latest = max(found.latest, occurred)
        found.counts[kind] += 1
        insort(self.ranked, person, key=lambda p: (-stats[p].weighted, p))



class ReaderView:
    """The public aggregate plus some private ones, as one reader sees them, without copying
    the public one: only the people with private evidence get a combined weight (their
    combined stats are built when asked for), everyone else is read from the public
    aggregate, and the ranking merges the two orders lazily."""

    __slots__ = ("public", "private", "weights", "ranked")

    def __init__(self, public: Aggregate, private: list[Aggregate]) -> None:
        self.public = public
        self.private = private
        shown = public.stats
        weights: dict[int, float] = {}
        for aggregate in private:
            for person, part in aggregate.stats.items():
                before = weights.get(person)
                if before is None:
                    base = shown.get(person)
                    before = base.weighted if base is not None else 0.0
                weights[person] = before + part.weighted
        self.weights = weights
        self.ranked = sorted(weights, key=lambda p: (-weights[p], p))

    def get(self, person: int) -> PersonStats | None:
        public = self.public.stats.get(person)
        if person not in self.weights:
            return public
        total = _copy(public) if public is not None else PersonStats()
        for aggregate in self.private:
            part = aggregate.stats.get(person)
            if part is not None:
                total.add(part)
        return total

    def ordered(self) -> Iterator[int]:
        public, weights = self.public.stats, self.weights
        rest = (p for p in self.public.ranked if p not in weights)
        return heapq.merge(self.ranked, rest, key=lambda p: (-(weights[p] if p in weights else public[p].weighted), p))


@dataclass(slots=True)
class Aggregates:
    public: Aggregate
    private: dict[int, Aggregate]   # conversation id -> its members' aggregate
    computed_at: float
    valid_until: float
    # What a reader of some of the private conversations sees (public and theirs, merged),
    # by those conversations: members of a channel share it. A few patterns per topic.
    merged: dict[frozenset[int], "ReaderView"] = field(default_factory=dict)

    def for_reader(self, readable: set[int]) -> "Aggregate | ReaderView":
        """Everything a reader of the private conversations `readable` may count, ranked."""
        theirs = frozenset(c for c in self.private if c in readable)
        if not theirs:
            return self.public
        found = self.merged.get(theirs)
        if found is None:
            found = ReaderView(self.public, [self.private[c] for c in sorted(theirs)])
            if len(self.merged) >= MERGED_KEPT:
                self.merged.pop(next(iter(self.merged)))
            self.merged[theirs] = found
        return found


class TopicEvidence:
    __slots__ = ("ids", "people", "convs", "times", "weights", "kinds", "max_id", "cached")

    def __init__(self) -> None:
        self.ids = array("q")
        self.people = array("q")
        self.convs = array("q")
        self.times = array("d")
        self.weights = array("d")
        self.kinds = array("b")
        self.max_id = 0
        self.cached: Aggregates | None = None

    def add(self, row_id: int, person: int, conv: int, occurred: float, weight: float, kind: int, audience: int) -> None:
        if row_id <= self.max_id and row_id in self.ids:
            return  # loaded in bulk when the book was built, sequenced later
        self.ids.append(row_id)
        self.people.append(person)
        self.convs.append(conv)
        self.times.append(occurred)
        self.weights.append(weight)
        self.kinds.append(kind)
        self.max_id = max(self.max_id, row_id)
        cached = self.cached
        if cached is not None and audience != HIDDEN:
            # Keep the aggregates (a popular topic gains evidence all day long): the new row's
            # decay bucket, seen from when they were computed, holds as long as they do.
            decay, until = decay_until(occurred, cached.computed_at)
            cached.valid_until = min(cached.valid_until, until)
            target = cached.public if audience == PUBLIC else cached.private.setdefault(conv, Aggregate())
            target.bump(person, weight * decay, occurred, kind)
            cached.merged.clear()

    def remove(self, row_id: int) -> None:
        try:
            at = self.ids.index(row_id)
        except ValueError:
            return  # added and removed between two catch-ups
        for column in (self.ids, self.people, self.convs, self.times, self.weights, self.kinds):
            del column[at]
        self.cached = None

    def aggregates(self, now: float, classes: dict[int, int]) -> Aggregates:
        cached = self.cached
        if cached is not None and cached.computed_at <= now < cached.valid_until:
            return cached
        public = Aggregate()
        private: dict[int, Aggregate] = {}
        valid_until = INFINITY
        for person, conv, occurred, weight, kind in zip(self.people, self.convs, self.times, self.weights, self.kinds):
            if conv == NO_CONVERSATION:
                stats_of = public.stats
            else:
                audience = classes.get(conv, HIDDEN)
                if audience == PUBLIC:
                    stats_of = public.stats
                elif audience == MEMBERS:
                    target = private.get(conv)
                    if target is None:
                        target = private[conv] = Aggregate()
                    stats_of = target.stats
                else:
                    continue
            decay, until = decay_until(occurred, now)
            if until < valid_until:
                valid_until = until
            stats = stats_of.get(person)
            if stats is None:
                stats = stats_of[person] = PersonStats()
            stats.weighted += weight * decay
            if occurred > stats.latest:
                stats.latest = occurred
            stats.counts[kind] += 1
        public.rank()
        for aggregate in private.values():
            aggregate.rank()
        self.cached = Aggregates(public, private, now, valid_until)
        return self.cached


class EvidenceBook:
    """All evidence of one workspace, by topic key."""

    def __init__(self) -> None:
        self.topics: dict[str, TopicEvidence] = {}
        self.classes: dict[int, int] = {}   # conversation id -> PUBLIC | MEMBERS | HIDDEN
        self.seq = 0
        self.synced_at = time.monotonic()

    @classmethod
    def load(cls, session: Session, tenant: str, now: float | None = None) -> "EvidenceBook":
        """Every piece of evidence of the workspace. With `now`, every topic of at least
        EAGER_ROWS rows is aggregated at once, so no first lookup pays for a popular topic; the
        many small ones (most of a workspace's topics and of its rows) are aggregated when a
        lookup first needs them, for a few microseconds each, instead of adding half a second
        to every build of a large workspace."""
        book = cls()
        book.seq = evidence_log.current(session, tenant)
        book._load_rows(xstore.evidence_rows(session, tenant, book.seq))
        if now is not None:
            for topic in book.topics.values():
                if len(topic.ids) >= EAGER_ROWS:
                    topic.aggregates(now, book.classes)
        return book

    def _load_rows(self, rows: Iterable[xstore.EvidenceRow]) -> None:
        """The build's bulk load: `_apply_rows` without its per-row checks (each id comes once)."""
        classes, topics = self.classes, self.topics
        codes = {k: i for i, k in enumerate(KINDS)}
        for row_id, person, key, conv, kind, weight, occurred, conv_kind, indexing in rows:
            topic = topics.get(key)
            if topic is None:
                topic = topics[key] = TopicEvidence()
            if conv is None:
                conv = NO_CONVERSATION
            elif conv not in classes:
                classes[conv] = conversation_class(conv_kind, indexing)
            topic.ids.append(row_id)
            topic.people.append(person)
            topic.convs.append(conv)
            topic.times.append(float(occurred))
            topic.weights.append(float(weight or 0.0) * KIND_WEIGHT.get(kind, OTHER_KIND_WEIGHT))
            topic.kinds.append(codes.get(kind, OTHER))
        for topic in topics.values():
            topic.max_id = max(topic.ids, default=0)

    def stale(self) -> bool:
        """Not caught up for too long: removals it missed may have been purged."""
        return time.monotonic() - self.synced_at > evidence_log.INDEX_MAX_AGE.total_seconds()

    def sync(self, session: Session, tenant: str, upto: int) -> None:
        """Catch up with what other processes (and this one) committed up to sequence `upto`."""
        self.synced_at = time.monotonic()  # caught up, whether or not anything was new
        if upto <= self.seq:
            return
        self._apply_rows(xstore.evidence_rows(session, tenant, upto, after=self.seq))
        for row_id, key in evidence_log.removed_between(session, tenant, self.seq, upto):
            topic = self.topics.get(key)
            if topic is not None:
                topic.remove(row_id)
        self.seq = upto

    def _apply_rows(self, rows: Iterable[xstore.EvidenceRow]) -> None:
        classes, topics = self.classes, self.topics
        codes = {k: i for i, k in enumerate(KINDS)}
        for row_id, person, key, conv, kind, weight, occurred, conv_kind, indexing in rows:
            if conv is None:
                conv = NO_CONVERSATION
            else:
                classes[conv] = conversation_class(conv_kind, indexing)
            topic = topics.get(key)
            if topic is None:
                topic = topics[key] = TopicEvidence()
            code = codes.get(kind, OTHER)
            factor = KIND_WEIGHT.get(kind, OTHER_KIND_WEIGHT)
            conv = int(conv)
            topic.add(int(row_id), int(person), conv, float(occurred), float(weight or 0.0) * factor, code,
                      audience_of(conv, classes))

    # Reading -------------------------------------------------------------------
    def private_conversations(self, keys: Iterable[str], now: float) -> set[int]:
        """Private conversations holding evidence on `keys` (to ask which the reader is in)."""
        found: set[int] = set()
        for key in keys:
            topic = self.topics.get(key)
            if topic is not None:
                found.update(topic.aggregates(now, self.classes).private)
        return found

    def stats(
        self, keys: Iterable[str], now: float, readable: set[int], *, top: int, people: Iterable[int] = (),
        excluded: set[int] | frozenset[int] = frozenset(),
    ) -> list[tuple[int, str, PersonStats]]:
        """Per matched topic: the `top` people with the most readable evidence (never an
        excluded person), and the evidence of `people`: (person, topic key, their stats)."""
        out: list[tuple[int, str, PersonStats]] = []
        wanted = list(dict.fromkeys(people))
        for key in keys:
            topic = self.topics.get(key)
            if topic is None:
                continue
            seen = topic.aggregates(now, self.classes).for_reader(readable)
            chosen = _best(seen, top, excluded)
            for person in wanted:
                if person not in chosen:
                    found = seen.get(person)
                    if found is not None:
                        chosen[person] = found
            out += [(person, key, total) for person, total in chosen.items()]
        return out


def _copy(stats: PersonStats) -> PersonStats:
    copy = PersonStats()
    copy.weighted, copy.latest, copy.counts = stats.weighted, stats.latest, list(stats.counts)
    return copy


def _best(aggregate: "Aggregate | ReaderView", top: int, excluded: set[int] | frozenset[int]) -> dict[int, PersonStats]:
    """The `top` people with the most readable evidence, never an excluded one."""
    chosen: dict[int, PersonStats] = {}
    if top <= 0:
        return chosen
    for person in aggregate.ordered():
        if person not in excluded:
            chosen[person] = aggregate.get(person)  # type: ignore[assignment]
            if len(chosen) >= top:
                break
    return chosen
