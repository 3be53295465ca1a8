"""Declarations normalised: the skill someone declares is stored as the topic it stands for, so
one concept does not split into several topics.

- an alias is stored as its canonical topic: `skills add AO` stores "appel d'offres". For a
  built-in synonym group, the group's topic most people declared, else for a short form (`AO`,
  `k8s`) the group's first term; for an admin's `alias add`, the skill it names; for an imported
  taxonomy, the concept's topic most people declared, else its preferred label in the
  declarer's language, if it has one;
- a near-duplicate of a skill someone already declared (a typo, a plural: "project managment")
  is attached to that skill;
- `=name` keeps the name exactly as typed.

Declared skills are profile data everyone may see, so only they are offered; a topic known only
from evidence (a hashtag in a private channel) is never named here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from bot.context import Ctx
from bot.types import Reply
from bot.text import topic_key
from handlers.expertise.index import ExpertiseIndex, sorted_form
from handlers.expertise.lookup import _cache, index_for, index_lock
from store import expertise as xstore

KEEP = "="           # `skills add =project managment` keeps the spelling
NEAR_CUTOFF = 90.0   # fuzz.ratio of the sorted forms for a near-duplicate
NEAR_MIN_CHARS = 6   # shorter names are only ever taken as typed (or through an alias)
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Declared:
    typed: str
    stored: str
    why: str = ""    # "" (as typed), "alias", "concept" (imported taxonomy) or "near"


@lru_cache(maxsize=8)
def _group_of(groups: tuple[tuple[str, ...], ...]) -> dict[str, tuple[str, ...]]:
    """Built-in synonym groups: topic key of each term -> its group (the first term first)."""
    found: dict[str, tuple[str, ...]] = {}
    for group in groups:
        for term in group:
            found.setdefault(topic_key(term), group)
    return found


def _abbreviation(name: str, key: str) -> bool:
    """`AO`, `k8s`, `RFP`, `négo`: short forms, never a topic's name of their own."""
    return len(key) <= 4 or (name.isupper() and len(key) <= 6)


def _declared(index: ExpertiseIndex, key: str) -> str | None:
    topic = index.topics.get(key)
    return topic.label if topic is not None and len(topic.people) else None


def _alias(ctx: Ctx, index: ExpertiseIndex, name: str, key: str, target: str | None) -> Declared | None:
    groups = tuple(tuple(g) for g in _cache(ctx).alias_groups)
    if target is not None and topic_key(target) != key:
        # Stored as `norm_key`: shown as a declared skill, else as a built-in term, spelled.
        spelled = next((t for g in groups for t in g if topic_key(t) == topic_key(target)), target)
        return Declared(name, _declared(index, topic_key(target)) or spelled, "alias")
    group = _group_of(groups).get(key)
    if group is None:
        return None
    # The group's topic most people declared (one topic per concept, whatever its language),
    # else, for a short form, the group's first term; a full word nobody declared stays as typed.
    taken = sorted((len(index.topics[k].people), index.topics[k].label)
                   for k in {topic_key(t) for t in group} if _declared(index, k))
    best = taken[-1][1] if taken else group[0] if _abbreviation(name, key) else name
    return None if topic_key(best) == key else Declared(name, best, "alias")


def _concept(ctx: Ctx, index: ExpertiseIndex, name: str, key: str,
             concepts: dict[str, list[xstore.ConceptLabel]]) -> Declared | None:
    if len(concepts) != 1:
        return None  # not in the taxonomy, or a label several concepts share: taken as typed
    labels = next(iter(concepts.values()))
    taken = [(len(index.topics[k].people), index.topics[k].label) for k in {topic_key(c.label) for c in labels}
             if _declared(index, k)]
    if taken:
        best = max(taken)[1]
    elif any(c.preferred and topic_key(c.label) == key for c in labels):
        return None  # a preferred label nobody declared under another name yet: as typed
    else:
        mine = [c for c in labels if c.preferred and c.lang in (ctx.locale, "")]
        if not mine:
            return None  # no preferred label in the declarer's language: theirs is as good
        best = mine[0].label
    return None if topic_key(best) == key else Declared(name, best, "concept")


def _near(index: ExpertiseIndex, name: str, key: str) -> Declared | None:
    if len(key) < NEAR_MIN_CHARS:
        return None
    _, owners = index._fuzzy_choices()
    digits = _DIGITS.findall(name)
    for _score, i in index.closest_forms(sorted_form(name), 3, cutoff=NEAR_CUTOFF):
        found = sorted((len(index.topics[k].people), index.topics[k].label) for k in owners[i] if _declared(index, k))
        if found and _DIGITS.findall(found[-1][1]) == digits:
            return Declared(name, found[-1][1], "near")
    return None


def normalise(ctx: Ctx, names: list[str]) -> list[Declared]:
    """What each typed skill name is stored as, and why."""
    index = index_for(ctx)
    out: list[Declared] = []
    for name in names:
        if name.startswith(KEEP):
            out.append(Declared(name, name[len(KEEP):].strip()))
            continue
        key = topic_key(name)
        target = xstore.alias_target(ctx.session, name)  # read before taking the index's lock
        concepts = xstore.concepts_of(ctx.session, key)
        with index_lock(ctx):
            found = _alias(ctx, index, name, key, target) or _concept(ctx, index, name, key, concepts)
            if found is None and _declared(index, key) is None and not index.exact_matches(name):
                found = _near(index, name, key)
        out.append(found or Declared(name, name))
    return out


def normalised_note(ctx: Ctx, declared: list[Declared]) -> Reply | None:
    """Tells the declarer which names were stored as another topic, and how to keep theirs."""
    changed = [d for d in declared if d.why]
    if not changed:
        return None
    lines = [ctx.t(f"skills.normalised.{d.why}", typed=d.typed, stored=d.stored) for d in changed]
    return ctx.reply("skills.normalised", private=True, lines="\n".join(lines), keep=changed[0].typed,
                     count=len(changed))
