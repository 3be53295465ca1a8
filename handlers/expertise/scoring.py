"""How "who knows X?" ranks people — the one place the scoring is defined.

A person's score for one matched topic is

    topic_score = DECLARED * freshness(confirmed_at)          (if they declared the skill)
                + log1p(sum over evidence e of KIND_WEIGHT[e.kind] * e.weight * recency(e.occurred_at))

and their total is the sum over the matched topics of `match * topic_score`, where
`match` is 1.0 for an exact or alias match and the fuzzy similarity (0.75..1.0) for a
close one. Exact/alias and close matches are ranked and shown separately; exact first.

- freshness: 1.0 while the skill was confirmed less than `skill_stale_days` ago
  (settings, default 180), then halving every further `skill_stale_days`, never below
  STALE_FLOOR — a stale declaration still counts, but less than fresh activity.
- recency: exponential decay with a half-life of EVIDENCE_HALF_LIFE_DAYS (90 days),
  applied per age bucket (AGE_BUCKETS: the decay at each bucket's middle), so an
  aggregate of many pieces stays exact until one of them changes bucket
  (handlers/expertise/evidence.py caches aggregates until then).
- evidence is summed under log1p so that a chatty person does not bury a declared
  expert: four fresh hashtags (1.2) add about 0.8, a declared fresh skill adds 1.0.
- only evidence from conversations the asker may read counts (the rules of
  store/visibility.py, applied in memory by handlers/expertise/evidence.py), so a ranking
  never reveals what was said in a private channel or a DM.
- deactivated people and bots never appear (filtered when the index is built and
  again when rows are loaded).
"""
from __future__ import annotations

import math
from datetime import datetime

DECLARED = 1.0
STALE_FLOOR = 0.2
EVIDENCE_HALF_LIFE_DAYS = 90.0
KIND_WEIGHT: dict[str, float] = {
    "help": 1.0,     # answered a help request on the topic
    "kudos": 1.0,    # received kudos tagged with the topic
    "thanked": 0.8,  # was thanked in a message about the topic
    "hashtag": 0.3,  # used the hashtag
    "mentioned": 0.3,  # was mentioned in a message about the topic
}
OTHER_KIND_WEIGHT = 0.3
CLOSE_CUTOFF = 75.0   # minimum fuzzy similarity (0-100) of a close match
MIN_FUZZY_CHARS = 4   # shorter queries only match exactly or through an alias
DAY = 86400.0
# (upper age bound in days, decay applied to evidence younger than that bound)
AGE_BUCKETS: tuple[tuple[float, float], ...] = tuple(
    (upper, 0.5 ** (((lower + upper) / 2) / EVIDENCE_HALF_LIFE_DAYS))
    for lower, upper in ((0, 30), (30, 90), (90, 180), (180, 365), (365, 730))
)
OLDEST_DECAY = 0.5 ** (1000 / EVIDENCE_HALF_LIFE_DAYS)


def freshness(confirmed_ts: float, now_ts: float, stale_days: int) -> float:
    """Weight of a declared skill last confirmed at `confirmed_ts` (epoch seconds)."""
    stale = max(1, stale_days) * DAY
    age = now_ts - confirmed_ts
    if age <= stale:
        return 1.0
    return max(STALE_FLOOR, 0.5 ** ((age - stale) / stale))


def recency(occurred: datetime, now: datetime) -> float:
    """Exact exponential decay of one piece of evidence (used for documentation and tests)."""
    age_days = max(0.0, (now - occurred).total_seconds() / DAY)
    return 0.5 ** (age_days / EVIDENCE_HALF_LIFE_DAYS)


def evidence_score(weighted_sum: float) -> float:
    return math.log1p(max(0.0, weighted_sum))


def kind_weight(kind: str) -> float:
    return KIND_WEIGHT.get(kind, OTHER_KIND_WEIGHT)


def is_stale(confirmed_ts: float, now_ts: float, stale_days: int) -> bool:
    return now_ts - confirmed_ts > max(1, stale_days) * DAY
