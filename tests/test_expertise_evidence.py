"""The in-memory evidence book: decay buckets and when an aggregate expires, incremental
updates equal to recomputing, the per-reader privacy rules, and the threshold search
that finds the best people across public and private evidence."""
from __future__ import annotations

import random

import pytest

from handlers.expertise.evidence import (
    HIDDEN,
    MEMBERS,
    NO_CONVERSATION,
    PUBLIC,
    Aggregate,
    EvidenceBook,
    PersonStats,
    TopicEvidence,
    ReaderView,
    _best,
    decay_until,
)
from handlers.expertise.scoring import AGE_BUCKETS, DAY, OLDEST_DECAY

NOW = 1_800_000_000.0
CLASSES = {1: PUBLIC, 2: MEMBERS, 3: MEMBERS, 4: HIDDEN}


def test_decay_buckets_and_their_end() -> None:
    first_upper, first_decay = AGE_BUCKETS[0]
    occurred = NOW - (first_upper * DAY - 10)
    assert decay_until(occurred, NOW) == (first_decay, occurred + first_upper * DAY)
    assert decay_until(occurred, NOW + 10)[0] == AGE_BUCKETS[1][1], "the bucket changes at its bound"
    assert decay_until(NOW - 5000 * DAY, NOW) == (OLDEST_DECAY, float("inf"))


def topic_with(rows: list[tuple[int, int, float, float, int]]) -> TopicEvidence:
    topic = TopicEvidence()
    for n, (person, conv, occurred, weight, kind) in enumerate(rows, 1):
        topic.add(n, person, conv, occurred, weight, kind, CLASSES.get(conv, PUBLIC) if conv else PUBLIC)
    return topic


def test_aggregates_apply_privacy_classes() -> None:
    topic = topic_with([(10, NO_CONVERSATION, NOW, 1.0, 0), (11, 1, NOW, 1.0, 0), (12, 2, NOW, 1.0, 0),
                        (13, 3, NOW, 1.0, 0), (14, 4, NOW, 1.0, 0)])
    aggregates = topic.aggregates(NOW, CLASSES)
    assert set(aggregates.public.stats) == {10, 11}
    assert {c: set(a.stats) for c, a in aggregates.private.items()} == {2: {12}, 3: {13}}
    assert all(14 not in a.stats for a in [aggregates.public, *aggregates.private.values()]), "never counted"


def test_cached_aggregates_expire_when_a_row_changes_bucket() -> None:
    upper = AGE_BUCKETS[0][0] * DAY
    topic = topic_with([(10, NO_CONVERSATION, NOW - upper + 60, 1.0, 0)])
    fresh = topic.aggregates(NOW, CLASSES)
    assert topic.aggregates(NOW + 59, CLASSES) is fresh
    later = topic.aggregates(NOW + 61, CLASSES)
    assert later is not fresh and later.public.stats[10].weighted < fresh.public.stats[10].weighted
    assert topic.aggregates(NOW - 1, CLASSES) is not later, "a clock going back recomputes"


def test_incremental_adds_equal_a_recomputation() -> None:
    rng = random.Random(3)
    rows = [(rng.randrange(20), rng.choice([NO_CONVERSATION, 1, 2, 3, 4]), NOW - rng.uniform(0, 900) * DAY,
             rng.choice([0.3, 0.8, 1.0]), rng.randrange(6)) for _ in range(300)]
    growing = topic_with(rows[:100])
    growing.aggregates(NOW, CLASSES)
    for n, (person, conv, occurred, weight, kind) in enumerate(rows[100:], 101):
        growing.add(n, person, conv, occurred, weight, kind, CLASSES.get(conv, PUBLIC) if conv else PUBLIC)
    kept = growing.aggregates(NOW, CLASSES)
    whole = topic_with(rows).aggregates(NOW, CLASSES)
    for mine, theirs in [(kept.public, whole.public)] + [(kept.private[c], whole.private[c]) for c in whole.private]:
        assert mine.ranked == theirs.ranked
        for person, stats in theirs.stats.items():
            assert mine.stats[person].weighted == pytest.approx(stats.weighted)
            assert mine.stats[person].counts == stats.counts
    assert kept.valid_until == whole.valid_until


def aggregate_of(weights: dict[int, float]) -> Aggregate:
    aggregate = Aggregate()
    for person, weight in weights.items():
        stats = aggregate.stats[person] = PersonStats()
        stats.weighted = weight
    aggregate.rank()
    return aggregate


@pytest.mark.parametrize("seed", range(40))
def test_a_readers_view_ranks_the_true_best(seed: int) -> None:
    rng = random.Random(seed)
    lists = [aggregate_of({p: rng.expovariate(1.0) for p in rng.sample(range(60), rng.randrange(1, 50))})
             for _ in range(rng.randrange(1, 4))]
    before = {id(a): {p: s.weighted for p, s in a.stats.items()} for a in lists}
    excluded = set(rng.sample(range(60), 5))
    top = rng.randrange(1, 12)
    totals: dict[int, float] = {}
    for aggregate in lists:
        for person, stats in aggregate.stats.items():
            if person not in excluded:
                totals[person] = totals.get(person, 0.0) + stats.weighted
    expected = sorted(totals, key=lambda p: (-totals[p], p))[:top]
    found = _best(ReaderView(lists[0], lists[1:]), top, excluded)
    assert list(found) == expected
    assert all(found[p].weighted == pytest.approx(totals[p]) for p in found)
    assert {id(a): {p: s.weighted for p, s in a.stats.items()} for a in lists} == before, "the parts are untouched"


def test_readers_see_only_their_private_conversations() -> None:
    book = EvidenceBook()
    book.classes.update(CLASSES)
    book._apply_rows([(1, 10, "k8s", None, "help", 1.0, NOW, None, None),
                      (2, 11, "k8s", 2, "help", 1.0, NOW, "private", True),
                      (3, 12, "k8s", 3, "hashtag", 1.0, NOW, "group", True)])
    assert book.private_conversations(["k8s"], NOW) == {2, 3}
    seen = {person for person, _, _ in book.stats(["k8s"], NOW, {2}, top=10)}
    assert seen == {10, 11}
    asked = {person: stats.count_by_kind() for person, _, stats in book.stats(["k8s"], NOW, set(), top=0, people=[12, 10])}
    assert asked == {10: {"help": 1}}, "a non-member asking about someone sees none of their private evidence"


def test_a_readers_merged_view_follows_new_evidence() -> None:
    book = EvidenceBook()
    book._apply_rows([(1, 10, "k8s", None, "help", 1.0, NOW, None, None),
                      (2, 11, "k8s", 2, "help", 1.0, NOW, "private", True)])
    book.topics["k8s"].aggregates(NOW, book.classes)
    first = {person: stats.weighted for person, _, stats in book.stats(["k8s"], NOW, {2}, top=10)}
    book._apply_rows([(3, 11, "k8s", 2, "kudos", 1.0, NOW, "private", True),
                      (4, 12, "k8s", None, "help", 1.0, NOW, None, None)])
    later = {person: stats.weighted for person, _, stats in book.stats(["k8s"], NOW, {2}, top=10)}
    assert set(later) == {10, 11, 12} and later[11] == pytest.approx(2 * first[11])


def test_a_book_that_checked_in_recently_is_not_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    import time as clock

    book = EvidenceBook()
    start = clock.monotonic()
    monkeypatch.setattr(clock, "monotonic", lambda: start + 2 * 86400)
    assert book.stale(), "two days without catching up"
    book.sync(None, "T1", 0)  # type: ignore[arg-type]  # nothing new: no read
    assert not book.stale(), "checking the sequence and finding nothing new is being caught up"
