"""Expertise lookup: "who knows X?" and "which known topics does this text name?".

Public API (other features call these):

- `find_experts(ctx, query, limit=5, exclude=(), offset=0) -> ExpertResult`
- `topics_in(ctx, text) -> list[str]` (labels of known topics named in free text)
- `nearest_topics(ctx, query, limit=3) -> list[(label, similarity, tier)]`: the topics closest
  to a query by meaning (tier "meaning"), else by spelling ("spelling"), for "nobody matches"
  answers; only topics the asker may see.
- `track_changes(ctx)`: call after writing through `store.expertise` so this process
  updates its own index when the transaction commits instead of rebuilding it.

The per-process index cache lives in `ctx.services.extras["expertise"]`, one index per
workspace, rebuilt when `Workspace.expertise_version` moved. Ranking: handlers/expertise/scoring.py.

Tiers (handlers/expertise/index.py): exact and alias matches first; then the close tiers
ranked together, similarity first and the person's score (freshness, evidence) second, a topic
merely named inside a longer query last. The meaning tier (handlers/expertise/meaning.py) is
restrained: a cosine of at least MEANING_FLOOR, tuned on the ESCO development set so that
queries about skills nobody has rarely name anyone. Topic vectors come from the store (or are
computed once and stored: the process that declares a skill stores its vector with the
declaration); a query in a third language, or a process without the model, answers by spelling.
"""
from __future__ import annotations

import heapq
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Collection

from rapidfuzz import fuzz, process
from sqlalchemy import event, select
from sqlalchemy.orm import Session

import store.expertise as xstore
from store import evidence_log
from bot.context import Ctx, JobCtx
from bot.types import Effect
from store.models.core import Workspace
from bot.text import topic_key
from handlers.expertise.evidence import PersonStats
from handlers.expertise import meaning
from handlers.expertise.index import DEFAULT_ALIASES, ExpertiseIndex, StaleIndex, TopicMatches, load_alias_groups, sorted_form
from handlers.expertise.scoring import DAY, DECLARED, evidence_score, freshness, is_stale
from handlers.expertise.when import ago

if TYPE_CHECKING:
    from store.db import Database

__all__ = ["Candidate", "PersonCard", "ExpertResult", "find_experts", "nearest_topics", "topics_in", "track_changes",
           "index_for", "ExpertiseCache"]
log = logging.getLogger(__name__)
MAX_QUERY_CHARS = 200
# Least score (cosine less half its crowd's, see meaning.TopicVectors.search) of a meaning
# match, for a label in the query's language and in the other one (tuned: bench/bench_quality.py)
MEANING_FLOOR = 0.49
CROSS_FLOOR = 0.46
# When the model is there, a fuzzy match under STRONG_SPELLING, or a topic named inside the
# query only through an alias of it, must also mean something alike (cosine at least this)
SPELLING_CONFIRM = 0.6
UNLIKE_CONFIRM = 0.675  # ... for a spelling match whose words are others (index.words_align): see _close
STRONG_SPELLING = 0.85  # see _close (0.95, then 0.9 until the bench of 2026-12-01; 0.85: a quarter of 0.9's embeddings, typo recall 0.98 -> 1.00)
MEANING_LIMIT = 6      # topic vectors a query may match
NEAREST_FLOOR = 0.2    # least score of a topic suggested when nobody matches
ENCODE_BATCH = 256
LAZY_MAX = 500         # missing topic vectors a lookup computes itself; more wait for the job
RECHECK_SECONDS = 60.0
FILL_PER_RUN = 5000
VECTORS_EVERY = timedelta(minutes=10)
MAX_REASONS = 4
MARGIN = 5  # extra candidates considered, for people filtered out late (deactivated meanwhile)
EVIDENCE_KINDS = ("help", "kudos", "thanked", "hashtag", "mentioned", "other")


def _kind_order(kind: str) -> int:
    return EVIDENCE_KINDS.index(kind) if kind in EVIDENCE_KINDS else len(EVIDENCE_KINDS)


@dataclass(frozen=True)
class PersonCard:
    """What a result shows of a person (`ctx.name` and `ctx.mention` take it like a Person).
    Load the Person row (store.people.people_by_ids) to change or notify them."""

    id: int
    external_id: str
    display_name: str
    handle: str
    title: str
    department: str
    site: str
    accepts_mentions: bool
    active: bool
    is_bot: bool


@dataclass(frozen=True)
class Candidate:
    person: PersonCard
    score: float
    matched: tuple[str, ...]
    why: tuple[str, ...]
    exact: bool
    tier: str = "exact"   # the tier of the best matched topic: exact, alias, meaning, abbrev, spelling, word, inside


@dataclass(frozen=True)
class ExpertResult:
    """`suggestions` (topics spelled like the query, when nobody matches) is computed when first
    read, in the lookup's transaction: a loose spelling search over every topic costs more than
    the whole lookup, and the "nobody" answer needs it only when the meaning tier offers nothing."""

    query: str
    exact: tuple[Candidate, ...]
    close: tuple[Candidate, ...]
    suggest: "Callable[[], tuple[str, ...]] | tuple[str, ...]" = field(default=(), repr=False, compare=False)

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return self.exact + self.close

    @property
    def suggestions(self) -> tuple[str, ...]:
        found = self.suggest
        if callable(found):
            found = found()
            object.__setattr__(self, "suggest", found)
        return found


@dataclass
class ExpertiseCache:
    """One index per workspace for this process; alias files are read once."""

    alias_groups: list[list[str]]
    indexes: dict[str, ExpertiseIndex] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    use_meaning: bool = True
    background_model: bool = False  # servers: never wait for the model, answer by spelling until it is loaded

    def model(self) -> "meaning.Encoder | None":
        """The embedding model (loaded once per process), None without it: spelling only.
        With `background_model` the model loads in a thread and lookups meanwhile use the
        spelling tiers; otherwise (console, tests, benches) the first lookup waits for it."""
        if not self.use_meaning:
            return None
        if not self.background_model:
            return meaning.encoder()
        found = meaning.loaded()
        if found is None:
            meaning.load_in_background()
        return found

    @classmethod
    def for_files(cls, extra: str = "") -> "ExpertiseCache":
        groups = load_alias_groups(DEFAULT_ALIASES)
        if extra:
            groups += load_alias_groups(Path(extra))
        return cls(groups)


def _cache(ctx: Ctx) -> ExpertiseCache:
    extras = ctx.services.extras
    cache = extras.get("expertise")
    if cache is None:
        cache = extras.setdefault("expertise", ExpertiseCache.for_files(ctx.settings.aliases_file))
    return cache


def index_for(ctx: Ctx) -> ExpertiseIndex:
    """This workspace's index, rebuilt when another process (or a rollback) moved its version."""
    cache = _cache(ctx)
    version = ctx.workspace.expertise_version  # loaded with the event's context: no extra query
    with cache.lock:
        index = cache.indexes.get(ctx.tenant)
        if index is None or index.version != version or index.evidence.stale():
            index = ExpertiseIndex.build(ctx.session, ctx.tenant, cache.alias_groups, ctx.now().timestamp())
            cache.indexes[ctx.tenant] = index
            _attach_vectors(ctx, cache, index)
            meaning.release_memory()
        else:
            index.evidence.sync(ctx.session, ctx.tenant, evidence_log.current(ctx.session, ctx.tenant))
            if index.vectors is None and cache.use_meaning and cache.background_model:
                _attach_vectors(ctx, cache, index)  # the model has finished loading since the build
        return index


def _attach_vectors(ctx: Ctx, cache: ExpertiseCache, index: ExpertiseIndex) -> None:
    """Give the index its topic vectors once the model is there (nothing while it loads)."""
    model = cache.model()
    if model is None:
        return
    index.vectors = meaning.TopicVectors(model.name)
    index.vectors.add_bytes(xstore.topic_vectors(ctx.session, ctx.tenant, model.name))
    index.unvectored = {k: t for k, t in index.unvectored.items() if k not in index.vectors}
    resolve_vectors(ctx, index, model)


def resolve_vectors(ctx: Ctx, index: ExpertiseIndex, model: "meaning.Encoder") -> None:
    """Vectors for the index's topics that have none yet: read from the store (another process
    computed them), else computed here, a few at a time (LAZY_MAX: a workspace whose vectors
    were never computed, or a new model, is filled by the `expertise.vectors` job meanwhile,
    re-read at most once a minute). A lookup never writes: what it computed is stored by this
    process's next expertise write (`track_changes`) or by the job."""
    pending = index.unvectored
    if not pending or index.vectors is None:
        return
    keys = list(pending)
    if len(keys) > LAZY_MAX:
        now = time.monotonic()
        if now - index.vectors_read_at < RECHECK_SECONDS:
            return
        index.vectors_read_at = now
    index.vectors.add_bytes(xstore.topic_vectors(ctx.session, ctx.tenant, model.name, keys))
    keys = [k for k in keys if k not in index.vectors]
    if len(keys) > LAZY_MAX:
        index.unvectored = {k: pending[k] for k in keys}
        return
    for start in range(0, len(keys), ENCODE_BATCH):
        part = keys[start : start + ENCODE_BATCH]
        vectors = model.encode([pending[k] for k in part])
        index.vectors.add(part, vectors, [pending[k] for k in part])
        index.unsaved.update((k, (pending[k], meaning.to_bytes(v))) for k, v in zip(part, vectors))
    index.unvectored = {}


def fill_vectors(db: "Database", tenant: str, model: "meaning.Encoder", limit: int | None = None) -> int:
    """Compute and store the vector of every topic of the workspace (declared skills and
    evidence topics) that has none for this model, at most `limit`; returns how many. Read in
    a read-only snapshot, computed outside any transaction, written in short ones (a write
    turn is never held while the model works). A cold start (a new model, or vectors never
    computed) is this; the `expertise.vectors` job runs it, benchmarks time it."""
    with db.session(tenant, readonly=True) as session:
        wanted: dict[str, str] = {}
        for key, name in xstore.all_skills(session).values():
            wanted.setdefault(topic_key(key), name)
        for key, label in xstore.evidence_topics(session):
            wanted.setdefault(key, label)
        known = {row[0] for row in xstore.topic_vectors(session, tenant, model.name)}
    missing = [k for k in wanted if k not in known][:limit]
    step = ENCODE_BATCH * 8
    for start in range(0, len(missing), step):
        rows: list[tuple[str, str, bytes]] = []
        for at in range(start, min(start + step, len(missing)), ENCODE_BATCH):
            part = missing[at : min(at + ENCODE_BATCH, start + step)]
            vectors = model.encode([wanted[k] for k in part])
            rows += [(k, wanted[k], meaning.to_bytes(v)) for k, v in zip(part, vectors)]
        with db.session(tenant) as session:
            xstore.save_topic_vectors(session, tenant, model.name, rows)
    return len(missing)


def vectors_job(jctx: JobCtx) -> list[Effect]:
    """`expertise.vectors`: stores the vectors of topics that have none (hashtags seen in
    messages, skills written before the meaning tier, every topic after a model change), at
    most FILL_PER_RUN per workspace a run, so lookups find them in the store."""
    extras = jctx.services.extras
    cache = extras.get("expertise") or extras.setdefault("expertise", ExpertiseCache.for_files(jctx.services.settings.aliases_file))
    model = cache.model()
    if model is None:
        return []
    for tenant in list(jctx.session.scalars(select(Workspace.id).order_by(Workspace.id))):
        fill_vectors(jctx.services.db, tenant, model, limit=FILL_PER_RUN)
    return []


def _save_vectors(session: Session, tenant: str, model: str, rows: list[tuple[str, str, bytes]]) -> None:
    try:
        with session.begin_nested():
            xstore.save_topic_vectors(session, tenant, model, rows)
    except Exception as error:  # noqa: BLE001 - a read-only or busy session: computed again later
        log.debug("expertise: topic vectors not stored (%s)", error)


def _vectors_of_changes(session: Session, tenant: str, cache: "ExpertiseCache", batches: list) -> None:  # type: ignore[type-arg]
    """The declaring transaction stores the vectors of the topics it created, so another process
    reads them with the topic instead of computing them (and those this process's lookups
    computed meanwhile)."""
    index = cache.indexes.get(tenant)
    model = meaning.loaded() if cache.use_meaning else None
    if model is None:
        return  # not loaded yet: not inside a write transaction (lookups and the job will do it)
    if index is not None and index.unsaved and index.vectors is not None and index.vectors.model == model.name:
        with cache.lock:
            rows = [(k, text, vector) for k, (text, vector) in index.unsaved.items()]
            index.unsaved = {}
        _save_vectors(session, tenant, model.name, rows)
    texts: dict[str, str] = {}
    for batch in batches:
        for change in batch:
            if isinstance(change, xstore.SkillLinked):
                texts.setdefault(topic_key(change.key), change.name)
            elif isinstance(change, xstore.TopicSeen):
                texts.setdefault(change.key, change.label)
    if not texts:
        return
    known = {row[0] for row in xstore.topic_vectors(session, tenant, model.name, list(texts))}
    missing = [k for k in texts if k not in known]
    if missing:
        vectors = model.encode([texts[k] for k in missing])
        _save_vectors(session, tenant, model.name, [(k, texts[k], meaning.to_bytes(v)) for k, v in zip(missing, vectors)])


def track_changes(ctx: Ctx) -> None:
    """Apply this transaction's expertise changes to this process's index once committed.

    The index takes them only if its version plus the number of batches equals the
    version at commit; otherwise (a concurrent writer, a rolled-back savepoint) it is
    dropped and rebuilt on next use.
    """
    session = ctx.session
    if session.info.get("expertise_tracked"):
        return
    session.info["expertise_tracked"] = True
    cache, tenant = _cache(ctx), ctx.tenant

    def before_commit(s: Session) -> None:
        try:
            _vectors_of_changes(s, tenant, cache, s.info.get(xstore.CHANGES, []))
        except Exception:  # noqa: BLE001 - vectors are an optimisation: never fail a declaration
            log.warning("expertise: could not store new topic vectors", exc_info=True)
        s.info["expertise_version_after"] = xstore.current_version(s, tenant)

    def after_commit(s: Session) -> None:
        batches = s.info.pop(xstore.CHANGES, [])
        after = s.info.pop("expertise_version_after", None)
        with cache.lock:
            index = cache.indexes.get(tenant)
            if index is None or not batches or after is None:
                return
            if index.version != after - len(batches):
                cache.indexes.pop(tenant, None)
                return
            try:
                for batch in batches:
                    for change in batch:
                        index.apply(change)
            except StaleIndex:
                cache.indexes.pop(tenant, None)
                return
            index.version = after

    event.listen(session, "before_commit", before_commit)
    event.listen(session, "after_commit", after_commit)


def topics_in(ctx: Ctx, text: str) -> list[str]:
    """Labels of the known skills and topics named in `text` (exactly or by an alias)."""
    index = index_for(ctx)
    with index_lock(ctx):
        return [index.topics[k].label for k in index.topics_in(text[:5000])]


def index_lock(ctx: Ctx) -> threading.RLock:
    return _cache(ctx).lock


def find_experts(
    ctx: Ctx, query: str, *, limit: int = 5, exclude: Collection[int] = (), offset: int = 0
) -> ExpertResult:
    """The best `limit` active people for `query`: exact and alias matches first, then close ones."""
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    index = index_for(ctx)
    now = ctx.now()
    now_ts = now.timestamp()
    stale_days = ctx.settings.skill_stale_days
    want = offset + limit + len(exclude) + MARGIN
    with index_lock(ctx):
        excluded = set(exclude) | index.excluded
        declared: dict[tuple[int, str], float] = {}
        per_key: dict[int, dict[str, float]] = {}
        exact_keys = index.exact_matches(query)
        _declared_candidates(index, exact_keys, excluded, want, now_ts, stale_days, declared, per_key)
        if len(per_key) >= want:
            # Close matches always rank after exact ones: with enough exact people they cannot
            # show (nor change their order), so the fuzzy and meaning searches are not even run.
            matches = TopicMatches(exact_keys, {})
        else:
            matches = _close(ctx, index, query, exact_keys, want - len(per_key))
            _declared_candidates(index, matches.close, excluded, want, now_ts, stale_days, declared, per_key)
        factors = {**matches.close, **matches.exact}
        if not factors:
            return ExpertResult(query, (), (), _suggest(ctx, index, query, matches))
        labels = {k: index.topics[k].label for k in factors}
        evidence_keys = [k for k in factors if index.topics[k].has_evidence]
    stats: dict[tuple[int, str], PersonStats] = {}
    if evidence_keys:
        # The strongest readable evidence (people the declarations missed) plus the evidence
        # of the best declared candidates (so their "why" is complete), from memory.
        declared_best = [p for p, _, _ in _rank(per_key, matches.exact, matches.close, want, matches.tiers)]
        with index_lock(ctx):
            private = index.evidence.private_conversations(evidence_keys, now_ts)
        readable = xstore.member_of(ctx.session, ctx.actor.id, sorted(private)) if private else set()
        with index_lock(ctx):
            found = index.evidence.stats(evidence_keys, now_ts, readable, top=want, people=declared_best, excluded=excluded)
            for person_id, key, row in found:
                if person_id in excluded or key not in factors:
                    continue
                stats[(person_id, key)] = row
                scores = per_key.setdefault(person_id, {})
                if (person_id, key) not in declared:
                    confirmed = index.topics[key].declared_at(person_id) if key in index.topics else None
                    if confirmed is not None:
                        declared[(person_id, key)] = confirmed
                        scores[key] = DECLARED * freshness(confirmed, now_ts, stale_days)
                scores[key] = scores.get(key, 0.0) + evidence_score(row.weighted)
    ranked = _rank(per_key, matches.exact, matches.close, tiers=matches.tiers)
    chosen = _people_for(ctx, ranked[offset:], limit)
    exact: list[Candidate] = []
    close: list[Candidate] = []
    for person, score, is_exact in chosen:
        keys = sorted(per_key[person.id], key=lambda k: (_tier_rank(matches.tiers, k), -factors[k], -per_key[person.id][k], labels[k]))
        tier, via = _tier_of(index, query, keys[0], matches)
        why = _reasons(ctx, person.id, keys, labels, declared, stats, now, stale_days)
        if tier != "exact":
            why = (ctx.t(f"expert.via.{tier}", query=query, topic=via,
                         similarity=round(100 * factors[keys[0]])), *why[: MAX_REASONS - 1])
        candidate = Candidate(person, round(score, 4), tuple(dict.fromkeys(labels[k] for k in keys)), why, is_exact, tier)
        (exact if is_exact else close).append(candidate)
    return ExpertResult(query, tuple(exact), tuple(close), () if chosen else _suggest(ctx, index, query, matches))


def _close(ctx: Ctx, index: ExpertiseIndex, query: str, exact: dict[str, float], missing: int = 0) -> TopicMatches:
    """The close tiers: spelling, word, abbreviation, inside (index.close_matches) and meaning.
    A spelling match of at least STRONG_SPELLING is trusted: it is never asked to mean alike
    (SPELLING_CONFIRM applies under it), and when such matches already hold the `missing`
    people the exact ones left to find, meaning is not run (nor the query embedded, most of a
    lookup's cost): it could only change who shows through a topic spelled otherwise yet
    closer in cosine, which the ESCO development set never showed (0.95, 0.9 and 0.85 give the
    same recall across languages and synonyms and the same false positives; under 0.85, more
    false positives).

    A spelling match whose words are others than the query's ("understand spoken Georgian" for
    "understand spoken Azerbaijani", but also "create rigging plots" for "design rigging
    plots") is never trusted, however close: it must mean alike with a cosine of at least
    UNLIKE_CONFIRM. On the ESCO development set, against the plain SPELLING_CONFIRM: false
    positives 0.142 -> 0.125, synonyms 0.714 -> 0.715, all 0.859 -> 0.860 (0.6, 0.65, 0.7, 0.75
    and 0.8 give false positives 0.142, 0.136, 0.122, 0.106, 0.103 and synonyms 0.714, 0.718,
    0.700, 0.693, 0.689; dropping such matches outright, 0.103 and 0.682)."""
    tiers: dict[str, tuple[str, str]] = {}
    weak: set[str] = set()
    unlike: set[str] = set()
    dropped: list[str] = []
    close = index.close_matches(query, exact, tiers=tiers, weak=weak, unlike=unlike)
    if missing > 0:
        strong = sum(len(index.topics[k].people) for k, (tier, _) in tiers.items()
                     if tier == "spelling" and close[k] >= STRONG_SPELLING and k not in unlike)
        if strong >= missing:
            return TopicMatches(exact, close, tiers)
    found: dict[str, tuple[str, str]] = {}
    means = _meaning(ctx, index, query, exact, found)
    vector = _query_vector(ctx, query)
    if vector is not None and index.vectors is not None:
        # A spelling match that means something else ("manage wineries" for "manage fisheries"),
        # an alias named inside a longer query ("sécurité sociale" is no "cybersécurité")
        # Not for one word: the model reads a mistyped word ("pythrn") as noise, spelling is the judge.
        several = len(sorted_form(query).split()) > 1
        for k in [k for k, (tier, _) in tiers.items()
                  if (several and tier == "spelling" and (close[k] < STRONG_SPELLING or k in unlike)) or k in weak]:
            similarity = index.vectors.similarity(vector, k)
            floor = UNLIKE_CONFIRM if k in unlike and tiers[k][0] == "spelling" else SPELLING_CONFIRM
            if similarity is not None and similarity < floor:
                del close[k], tiers[k]
                dropped.append(k)
    for k, similarity in means.items():
        if similarity > close.get(k, 0.0) or tiers[k][0] == "inside":
            close[k] = similarity
            tiers[k] = found[k]
    return TopicMatches(exact, close, tiers, spelled=dropped)


def _query_vector(ctx: Ctx, query: str) -> "object | None":
    """The query's vector (cached), or None: no model, nothing to mean, or a third language."""
    if len(topic_key(query)) < 2 or meaning.third_language(query):
        return None
    model = _cache(ctx).model()
    return None if model is None else model.query(query)


def _meaning(ctx: Ctx, index: ExpertiseIndex, query: str, exact: dict[str, float],
             tiers: dict[str, tuple[str, str]], limit: int = MEANING_LIMIT, floor: float = MEANING_FLOOR) -> dict[str, float]:
    key = topic_key(query)
    if len(key) < 2 or meaning.third_language(query):
        return {}  # nothing to mean, or a language the lookup does not guess in: spelling only
    model = _cache(ctx).model()
    if model is None or index.vectors is None:
        return {}
    resolve_vectors(ctx, index, model)
    cross = CROSS_FLOOR - (MEANING_FLOOR - floor)
    return index.meaning_matches(model.query(query), exact, limit, floor, tiers, cross_floor=cross,
                                 french=meaning.is_french(query))


def _tier_rank(tiers: dict[str, tuple[str, str]], key: str) -> int:
    return 1 if tiers.get(key, ("",))[0] == "inside" else 0


def _tier_of(index: ExpertiseIndex, query: str, key: str, matches: TopicMatches) -> tuple[str, str]:
    """Which tier matched `key` and through which label, for the answer's first "why"."""
    if key in matches.exact:
        topic = index.topics[key]
        if key == topic_key(query) or topic.form == sorted_form(query):
            return "exact", topic.label
        return "alias", topic.label
    return matches.tiers.get(key, ("spelling", index.topics[key].label))


def nearest_topics(ctx: Ctx, query: str, limit: int = 3) -> list[tuple[str, float, str]]:
    """The topics closest to `query` as (label, similarity 0..1, tier), best first: by meaning
    (tier "meaning", a cosine of at least NEAREST_FLOOR) when the model is there and the query
    is in English or French, completed by spelling (tier "spelling", rapidfuzz WRatio of at
    least 50). For "nobody matches" answers (handlers/expertise/__init__.py): only topics
    someone declared, or known from evidence the asker may read, so a private channel's
    hashtags are never revealed. The query's own topic is included when it exists."""
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    if not topic_key(query):
        return []
    index = index_for(ctx)
    found: dict[str, tuple[float, str]] = {}
    with index_lock(ctx):
        tiers: dict[str, tuple[str, str]] = {}
        for k, similarity in _meaning(ctx, index, query, {}, tiers, limit=limit * 4, floor=NEAREST_FLOOR).items():
            found[k] = (similarity, "meaning")
        choices, owners = index._fuzzy_choices()
        form = sorted_form(query)
        if form and len(found) < limit * 2:
            for _, score, i in process.extract(form, choices, scorer=fuzz.WRatio, limit=limit * 2, score_cutoff=50):
                for k in owners[i]:
                    if k in index.topics and k not in found:
                        found[k] = (score / 100.0, "spelling")
        ordered = sorted(found, key=lambda k: (found[k][1] != "meaning", -found[k][0], k))
        evidence_only = [k for k in ordered if not len(index.topics[k].people)]
    allowed = xstore.readable_topic_keys(ctx.session, ctx.actor.id, evidence_only) if evidence_only else set()
    out: list[tuple[str, float, str]] = []
    labels: set[str] = set()
    with index_lock(ctx):
        for k in ordered:
            topic = index.topics.get(k)
            if topic is None or not (len(topic.people) or k in allowed) or topic.label in labels:
                continue
            labels.add(topic.label)
            out.append((topic.label, round(found[k][0], 4), found[k][1]))
            if len(out) >= limit:
                break
    return out


def _suggest(ctx: Ctx, index: ExpertiseIndex, query: str, matches: TopicMatches) -> "Callable[[], tuple[str, ...]]":
    """`_suggestions`, when (if ever) the result's `suggestions` are read."""

    def suggest() -> tuple[str, ...]:
        with index_lock(ctx):
            return _suggestions(ctx, index, query, matches)

    return suggest


def _suggestions(ctx: Ctx, index: ExpertiseIndex, query: str, matches: TopicMatches) -> tuple[str, ...]:
    """Topics offered when nobody matches: those spelled alike but meaning otherwise (declared
    skills, public profile data), which spares the slower loose search of index.suggestions."""
    spelled = [index.topics[k].label for k in matches.spelled if len(index.topics[k].people)]
    return tuple(dict.fromkeys(spelled))[:5] or tuple(index.suggestions(query, readable=_readable_for(ctx)))


def _readable_for(ctx: Ctx) -> "Callable[[list[str]], set[str]]":
    return lambda keys: xstore.readable_topic_keys(ctx.session, ctx.actor.id, keys)


def _declared_candidates(
    index: ExpertiseIndex, keys: dict[str, float], excluded: set[int], want: int, now_ts: float, stale_days: int,
    declared: dict[tuple[int, str], float], per_key: dict[int, dict[str, float]],
) -> None:
    """The `want` most recently confirmed declarations of each topic (freshness is monotonic
    in the confirmation time, so they are the best declared candidates)."""
    fresh_since = now_ts - max(1, stale_days) * DAY
    for key in keys:
        topic = index.topics[key]
        people, confirmed = topic.people, topic.confirmed
        taken = 0
        for i in range(len(people) - 1, -1, -1):
            person_id = people[i]
            if person_id in excluded:
                continue
            when = confirmed[i]
            declared[(person_id, key)] = when
            weight = DECLARED if when >= fresh_since else DECLARED * freshness(when, now_ts, stale_days)
            scores = per_key.get(person_id)
            if scores is None:
                per_key[person_id] = {key: weight}
            else:
                scores[key] = weight
            taken += 1
            if taken >= want:
                break


def _people_for(ctx: Ctx, ranked: list[tuple[int, float, bool]], limit: int) -> list[tuple[PersonCard, float, bool]]:
    """Cards of the best `limit` ranked people, skipping anyone deactivated (or made a bot)
    since the index last heard of it: such rows are read again further down the list."""
    chosen: list[tuple[PersonCard, float, bool]] = []
    start = 0
    while len(chosen) < limit and start < len(ranked):
        window = ranked[start : start + limit - len(chosen)]
        start += len(window)
        rows = xstore.person_cards(ctx.session, ctx.tenant, [p for p, _, _ in window])
        cards = {row[0]: PersonCard(*row[:7], *(bool(flag) for flag in row[7:])) for row in rows}
        chosen += [(cards[p], s, ex) for p, s, ex in window if p in cards and cards[p].active and not cards[p].is_bot]
    return chosen


def _rank(
    per_key: dict[int, dict[str, float]], exact: dict[str, float], close: dict[str, float], top: int = 0,
    tiers: dict[str, tuple[str, str]] | None = None,
) -> list[tuple[int, float, bool]]:
    """People by score: exact matches first (close ones add a tenth), then close-only ones,
    similarity first (their best matched topic's, to the hundredth) and score second, so a
    stale 0.98 match is not buried under fresh 0.83 ones; people matched only through a topic
    named inside a longer query come last. The best `top` of them when `top` is given."""
    tiers = tiers or {}
    # sorts as wanted: exact first, real matches before "inside" ones, best similarity, best score, lowest id
    order: list[tuple[bool, int, float, float, int]] = []
    for person_id, scores in per_key.items():
        exact_score = close_score = 0.0
        best = (1, 0.0)
        for key, value in scores.items():
            if key in exact:
                exact_score += value
            else:
                close_score += value * close[key]
                here = (_tier_rank(tiers, key), -round(close[key], 2))
                best = min(best, here)
        if exact_score > 0:
            order.append((False, 0, 0.0, -(exact_score + 0.1 * close_score), person_id))
        elif close_score > 0:
            order.append((True, best[0], best[1], -close_score, person_id))
    chosen = heapq.nsmallest(top, order) if top else sorted(order)
    return [(person_id, -negative, not is_close) for is_close, _, _, negative, person_id in chosen]


def _reasons(
    ctx: Ctx,
    person_id: int,
    keys: list[str],
    labels: dict[str, str],
    declared: dict[tuple[int, str], float],
    stats: dict[tuple[int, str], PersonStats],
    now: datetime,
    stale_days: int,
) -> tuple[str, ...]:
    why: list[str] = []
    for key in keys:
        if len(why) >= MAX_REASONS:
            break
        confirmed = declared.get((person_id, key))
        if confirmed is not None:
            when = ago(ctx, datetime.fromtimestamp(confirmed, timezone.utc), now)
            reason = "expert.why.stale" if is_stale(confirmed, now.timestamp(), stale_days) else "expert.why.declared"
            why.append(ctx.t(reason, skill=labels[key], when=when))
        found = stats.get((person_id, key))
        if found is not None:
            when = ago(ctx, datetime.fromtimestamp(found.latest, timezone.utc), now)
            for kind, n in sorted(found.count_by_kind().items(), key=lambda kv: _kind_order(kv[0])):
                why.append(ctx.t(f"expert.why.{kind}", topic=labels[key], count=n, when=when))
    return tuple(why[:MAX_REASONS])
