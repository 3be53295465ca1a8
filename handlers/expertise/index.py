"""The in-memory expertise index of one workspace: the topic vocabulary (declared skills,
evidence topics, alias groups) for exact and fuzzy matching, and per topic the people
who declared it, ordered by when they last confirmed it.

Evidence is held beside it, in an `EvidenceBook` (handlers/expertise/evidence.py) that
follows the evidence log, and filtered per reader at lookup time. Keys:

- `key`: compact form, `topic_key` (accents, case, spaces and punctuation removed), so
  the skill "Machine learning" and the hashtag #MachineLearning are one topic;
- `sorted form`: the spaced `norm_key` with its words sorted, for word-order-insensitive
  matching; the fuzzy pass runs `fuzz.ratio` on sorted forms (token-sort at ratio speed).

Tiers (`TopicMatches.tiers` says which one found each close topic, and through which label):
exact (same key or words, or an alias: `exact`), then the close tiers ranked together by
similarity: `meaning` (handlers/expertise/meaning.py: topic vectors, kept here in
`vectors`, the ones still to compute in `unvectored`), `abbrev` (an acronym and the
multi-word topics whose initials fit, either way round; AMBIGUOUS short words never),
`spelling` (fuzzy), `word` (a multi-word topic containing the query word), and last
`inside` (a topic named inside a longer query).
"""
from __future__ import annotations

import time
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import yaml
from rapidfuzz import fuzz, process
from sqlalchemy.orm import Session

import store.expertise as xstore
from handlers.expertise.evidence import EvidenceBook
from handlers.expertise.meaning import TopicVectors
from handlers.expertise.scoring import CLOSE_CUTOFF, MIN_FUZZY_CHARS
from bot.text import norm_key, topic_key

DEFAULT_ALIASES = Path(__file__).resolve().parent / "aliases.yaml"
MAX_NGRAM = 4
WORD_HITS = 5      # multi-word topics containing the query as a word ("kubernetes operators")
WORD_MATCH = 0.8    # their match factor
WIDEN_STEP = 0.08   # closest_forms widens its length window by this share of the query's length
WORD_TYPO = 70.0    # a word of a spelling match and its counterpart: at least this fuzz.ratio (see words_align)
MERGED_WORDS = 85.0  # ... unless the two, spaces left out, are at least this alike (a word split or merged)
INSIDE_MATCH = 0.9  # a topic named inside a longer query (ranked after every real match)
ABBREV_MATCH = 0.9  # an acronym and a topic whose initials fit
MAX_EXPANSIONS = 5  # topics an acronym may stand for; more make a two-letter acronym ambiguous
# Words left out of initials ("human resource management" -> HRM, "gestion des ressources
# humaines" -> GRH), and short words that are words before being acronyms: exact matches only.
INITIALS_SKIP = frozenset("and of the for in on to with a an at by de des du la le les l d et en pour au aux "
                          "par sur un une".split())
AMBIGUOUS = frozenset("it us or as on is am an at be by do go he if in me my no of ok so to up we "
                      "un le la de et ou en il ne se ce sa ta ma au".split())
VOWELS = frozenset("aeiouy")


def initials(label: str, words: list[str] | None = None) -> set[str]:
    """The acronyms a multi-word label may be written as (every word, or its content words);
    `words`: the label's norm_key words, when known."""
    words = norm_key(label).split() if words is None else words
    if len(words) < 2:
        return set()
    found = {"".join(w[0] for w in words), "".join(w[0] for w in words if w not in INITIALS_SKIP)}
    return {a for a in found if 2 <= len(a) <= 6}


def acronym_of(query: str) -> str | None:
    """The acronym a query is, lower case: one token of 2-6 letters, typed in capitals or
    without a vowel, that is not a short word (AMBIGUOUS)."""
    token = query.strip()
    if not (2 <= len(token) <= 6) or not token.isalpha() or not token.isascii():
        return None
    lowered = token.lower()
    if lowered in AMBIGUOUS:
        return None
    if token.isupper() or not (set(lowered) & VOWELS):
        return lowered
    return None


def looks_like_acronym(label: str) -> bool:
    token = label.strip()
    return 2 <= len(token) <= 6 and token.isalpha() and token.isascii() and token.isupper() \
        and token.lower() not in AMBIGUOUS


def words_align(mine: list[str], form: str) -> bool:
    """Whether a spelling match is a mistyped version of the query's words rather than other
    words in the same mould ("understand spoken Georgian" is no typo of "understand spoken
    Azerbaijani", nor "assemble metal parts" of "assemble jewellery parts"): every word of
    MIN_FUZZY_CHARS letters or more on each side (`mine`: the query's) has a counterpart on the
    other at least WORD_TYPO alike. Short words (de, des, of, and) are left out."""
    theirs = [w for w in form.split() if len(w) >= MIN_FUZZY_CHARS]
    if not mine or not theirs:
        return True
    return (all(max(fuzz.ratio(w, t) for t in theirs) >= WORD_TYPO for w in mine)
            and all(max(fuzz.ratio(t, w) for w in mine) >= WORD_TYPO for t in theirs))


def sorted_form(text: str) -> str:
    return " ".join(sorted(norm_key(text).split()))


def load_alias_groups(path: Path) -> list[list[str]]:
    """Synonym groups from a YAML file `groups: [[term, term, ...], ...]` (missing file: none)."""
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    groups = data.get("groups", []) if isinstance(data, dict) else []
    return [[str(t) for t in g] for g in groups if isinstance(g, list)]


@dataclass
class Topic:
    """One topic and who declared it, twice: in confirmation order (the freshest are the
    best declared candidates) and in id order (is this person a declared expert?)."""

    key: str
    label: str
    form: str
    people: array = field(default_factory=lambda: array("q"))      # ascending confirmed time
    confirmed: array = field(default_factory=lambda: array("d"))   # epoch seconds
    ids: array = field(default_factory=lambda: array("q"))         # ascending person id
    ids_confirmed: array = field(default_factory=lambda: array("d"))
    has_evidence: bool = False

    def load(self, people: array, confirmed: array) -> None:
        self.people, self.confirmed = people, confirmed
        order = sorted(range(len(people)), key=people.__getitem__)
        self.ids = array("q", [people[i] for i in order])
        self.ids_confirmed = array("d", [confirmed[i] for i in order])

    def declared_at(self, person_id: int) -> float | None:
        at = bisect_left(self.ids, person_id)
        if at < len(self.ids) and self.ids[at] == person_id:
            return self.ids_confirmed[at]
        return None

    def link(self, person_id: int, confirmed_ts: float) -> None:
        self.unlink(person_id)
        at = bisect_right(self.confirmed, confirmed_ts)
        self.people.insert(at, person_id)
        self.confirmed.insert(at, confirmed_ts)
        at = bisect_left(self.ids, person_id)
        self.ids.insert(at, person_id)
        self.ids_confirmed.insert(at, confirmed_ts)

    def unlink(self, person_id: int) -> None:
        at = bisect_left(self.ids, person_id)
        if at >= len(self.ids) or self.ids[at] != person_id:
            return
        del self.ids[at]
        del self.ids_confirmed[at]
        at = self.people.index(person_id)
        del self.people[at]
        del self.confirmed[at]


@dataclass(frozen=True)
class TopicMatches:
    exact: dict[str, float]   # topic key -> match factor (1.0)
    close: dict[str, float]   # topic key -> similarity in 0..1
    # topic key -> (tier, the label or term that matched): see the module's docstring
    tiers: dict[str, tuple[str, str]] = field(default_factory=dict)
    spelled: list[str] = field(default_factory=list)  # spelled alike, meaning otherwise: suggestions


class ExpertiseIndex:
    def __init__(self, version: int, alias_groups: Iterable[Iterable[str]]) -> None:
        self.version = version
        self.topics: dict[str, Topic] = {}
        self.by_form: dict[str, set[str]] = {}
        self.by_word: dict[str, set[str]] = {}
        self.group_of: dict[str, int] = {}
        self.groups: list[set[str]] = []
        # Imported taxonomy concepts (store.expertise.taxonomy_groups): unlike alias groups they
        # are never merged, so a label two concepts share does not join them.
        self.concepts: list[frozenset[str]] = []
        self.concepts_of: dict[str, list[int]] = {}
        self.excluded: set[int] = set()
        self.build_seconds = 0.0
        self.evidence = EvidenceBook()
        self._choices: list[str] | None = None
        self._choice_keys: list[set[str]] = []
        self._lengths: list[int] = []
        self.vectors: TopicVectors | None = None
        self.unvectored: dict[str, str] = {}   # keys (topics, alias terms) without a vector yet -> text
        self.unsaved: dict[str, tuple[str, bytes]] = {}  # vectors computed here, not stored yet
        self.vectors_read_at = float("-inf")  # monotonic time the store was last read for missing vectors
        self.term_text: dict[str, str] = {}    # alias term key -> the term as written
        self.by_initials: dict[str, set[str]] = {}
        self.acronyms: set[str] = set()        # keys of topics written as an acronym (PLC)
        for group in alias_groups:
            self._add_group(group)

    # Building ----------------------------------------------------------------------
    @classmethod
    def build(cls, session: Session, tenant: str, alias_groups: Iterable[Iterable[str]],
              now: float | None = None) -> "ExpertiseIndex":
        started = time.perf_counter()
        index = cls(xstore.current_version(session, tenant), alias_groups)
        for alias_key, target in xstore.aliases(session):
            index.set_alias(alias_key, target)
        for concept in xstore.taxonomy_groups(session):
            index.add_concept(concept)
        index.excluded = xstore.excluded_people(session)
        skills = xstore.all_skills(session)
        links = xstore.skill_links(session, tenant)
        if index.excluded and len(links):
            links = links[~np.isin(links[:, 1], np.fromiter(index.excluded, dtype=np.float64, count=len(index.excluded)))]
        # Postings of every skill at once: by skill, then by confirmation time (stable: ties keep
        # the database's order), and the same rows by skill then person id.
        skill_ids, people, times = links[:, 0].astype(np.int64), links[:, 1].astype(np.int64), links[:, 2]
        by_time = np.lexsort((times, skill_ids))
        by_id = np.lexsort((people, skill_ids))
        sorted_skills = skill_ids[by_time]
        starts = np.flatnonzero(np.r_[True, sorted_skills[1:] != sorted_skills[:-1]]) if len(links) else np.zeros(0, np.int64)
        ends = np.r_[starts[1:], len(links)].astype(np.int64)
        people_by_time, times_by_time = people[by_time], times[by_time]
        people_by_id, times_by_id = people[by_id], times[by_id]
        for start, end in zip(starts.tolist(), ends.tolist()):
            index._load_postings(skills[int(sorted_skills[start])],
                                 _q(people_by_time[start:end]), _d(times_by_time[start:end]),
                                 _q(people_by_id[start:end]), _d(times_by_id[start:end]))
        index.evidence = EvidenceBook.load(session, tenant, now)
        unlabelled: list[str] = []
        for key in index.evidence.topics:
            topic = index.topics.get(key)
            if topic is None:
                unlabelled.append(key)
            else:
                topic.has_evidence = True
        for key, label in xstore.evidence_labels(session, unlabelled):
            index.topic(key, label).has_evidence = True
        index.build_seconds = time.perf_counter() - started
        return index

    def _load_postings(self, skill: tuple[str, str], people: array, times: array, ids: array, ids_times: array) -> None:
        """Postings of one skill from the build query: in confirmation order, and in id order."""
        skill_key, name = skill
        if not len(people):
            return
        words = skill_key.split()
        # the label is the declared name cut to MAX_SKILL_CHARS, the key the name's norm_key:
        # the key's words are the label's unless the name was cut
        topic = self.topic(skill_key.replace(" ", ""), name, " ".join(sorted(words)),
                           words if len(name) < xstore.MAX_SKILL_CHARS else None)
        if len(topic.people):  # two skills with one compact key ("e-mail", "email")
            for person_id, confirmed in zip(people, times):
                topic.link(person_id, confirmed)
        else:
            topic.people, topic.confirmed, topic.ids, topic.ids_confirmed = people, times, ids, ids_times

    def topic(self, key: str, label: str, form: str | None = None, words: list[str] | None = None) -> Topic:
        """The topic with this compact key, created (and made matchable) if new (`words`: the
        label's norm_key words, when the caller has them)."""
        found = self.topics.get(key)
        if found is None:
            found = self.topics[key] = Topic(key, label, form or sorted_form(label) or key)
            self.by_form.setdefault(found.form, set()).add(key)
            if self.vectors is None or key not in self.vectors:
                self.unvectored[key] = label
            for acronym in initials(label, words):
                self.by_initials.setdefault(acronym, set()).add(key)
            if looks_like_acronym(label):
                self.acronyms.add(key)
            words = found.form.split()
            if len(words) > 1:
                for word in words:
                    if len(word) >= MIN_FUZZY_CHARS:
                        self.by_word.setdefault(word, set()).add(key)
            self._choices = None
        return found

    def _add_group(self, terms: Iterable[str]) -> None:
        terms = list(terms)
        for term in terms:
            k = topic_key(term)
            if k and k not in self.term_text:
                self.term_text[k] = term
                if self.vectors is None or k not in self.vectors:
                    self.unvectored.setdefault(k, term)
        keys = {topic_key(t) for t in terms} - {""}
        joined = {self.group_of[k] for k in keys if k in self.group_of}
        if joined:
            target = min(joined)
            for other in sorted(joined - {target}):
                self.groups[target] |= self.groups[other]
                for k in self.groups[other]:
                    self.group_of[k] = target
                self.groups[other] = set()
        else:
            target = len(self.groups)
            self.groups.append(set())
        self.groups[target] |= keys
        for k in keys:
            self.group_of[k] = target
        self._choices = None

    def set_alias(self, alias: str, target: str) -> None:
        self._add_group((alias, target))

    def add_concept(self, keys: Iterable[str]) -> None:
        concept = frozenset(keys) - {""}
        for k in concept:
            self.concepts_of.setdefault(k, []).append(len(self.concepts))
        self.concepts.append(concept)
        self._choices = None

    # Matching ----------------------------------------------------------------------
    def _fuzzy_choices(self) -> tuple[list[str], list[set[str]]]:
        if self._choices is None:
            forms: dict[str, set[str]] = {}
            for form, keys in self.by_form.items():
                forms.setdefault(form, set()).update(keys)
            for group in [*self.groups, *self.concepts]:
                known = {k for k in group if k in self.topics}
                if not known:
                    continue
                for term in group:
                    if term not in self.topics and len(term) >= MIN_FUZZY_CHARS:
                        forms.setdefault(term, set()).update(known)
            # Fresh string objects, created in the order they are scanned: the allocator lays
            # them out one after the other, so a scan reads memory in sequence instead of
            # chasing strings made at various times of the build all over the heap (in a
            # lookup, after other work has emptied the CPU caches: 1.8 -> 1.1 ms on average).
            self._choices = [form.encode().decode() for form in sorted(forms, key=len)]
            self._choice_keys = [forms[c] for c in self._choices]
            self._lengths = [len(c) for c in self._choices]
        return self._choices, self._choice_keys

    def closest_forms(self, form: str, limit: int, cutoff: float = CLOSE_CUTOFF) -> list[tuple[float, int]]:
        """The `limit` choices most similar to `form` by `fuzz.ratio` (at least `cutoff`), as
        (score, choice index), best first, ties by index: exactly what one `process.extract`
        over every choice returns, for about two thirds of its work.

        `fuzz.ratio` of strings of lengths L and L' is at most 200·min(L, L')/(L + L'). Choices
        are sorted by length, so the search widens from the query's length outwards, a few
        lengths at a time, and stops when no longer (or shorter) choice can reach the best
        `limit` found so far (or the cut-off)."""
        choices, _ = self._fuzzy_choices()
        lengths, size = self._lengths, len(form)
        step = max(1, int(size * WIDEN_STEP))
        found: list[tuple[float, int]] = []
        low = high = bisect_left(lengths, size)   # choices[low:high] are done
        distance = 0
        while low > 0 or high < len(choices):
            floor = max(cutoff, found[-1][0]) if len(found) >= limit else cutoff
            if 200.0 * size / (2 * size + distance) < floor:
                break  # the best any remaining length can score (the longer side bounds both)
            distance += step
            new_low, new_high = bisect_left(lengths, size - distance + 1), bisect_right(lengths, size + distance - 1)
            for start, end in ((new_low, low), (high, new_high)):
                if end > start:
                    # A hair under the floor: rapidfuzz may drop a score exactly equal to its cut-off,
                    # and a tie with a lower index must win (scores differ by far more than that).
                    found += [(score, start + i) for _, score, i in process.extract(
                        form, choices[start:end], scorer=fuzz.ratio, limit=limit, score_cutoff=floor - 1e-6)]
            found.sort(key=lambda hit: (-hit[0], hit[1]))
            del found[limit:]
            low, high = new_low, new_high
        return found

    def synonyms(self, key: str) -> set[str]:
        group = self.group_of.get(key)
        found = set(self.groups[group]) if group is not None else {key}
        for concept in self.concepts_of.get(key, ()):
            found |= self.concepts[concept]  # the labels of the concepts `key` names, not of their other concepts
        return found

    def match(self, query: str, *, fuzzy_limit: int = 5) -> TopicMatches:
        exact = self.exact_matches(query)
        tiers: dict[str, tuple[str, str]] = {}
        return TopicMatches(exact, self.close_matches(query, exact, fuzzy_limit=fuzzy_limit, tiers=tiers), tiers)

    def exact_matches(self, query: str) -> dict[str, float]:
        """Topics the query names exactly: same compact key, same words in any order, or an alias."""
        key = topic_key(query)
        if not key:
            return {}
        seeds = {key} | set(self.by_form.get(sorted_form(query), ()))
        for seed in list(seeds):
            seeds |= self.synonyms(seed)
        return {k: 1.0 for k in seeds if k in self.topics}

    def close_matches(self, query: str, exact: dict[str, float], *, fuzzy_limit: int = 5,
                      tiers: dict[str, tuple[str, str]] | None = None, weak: set[str] | None = None,
                      unlike: set[str] | None = None) -> dict[str, float]:
        """Topics close to the query (typos, a word of a longer topic, topics named inside it),
        with their similarity; never one of `exact`. `tiers` receives which tier found each,
        `weak` the topics named inside the query only through an alias, `unlike` the spelling
        matches whose words are others (`words_align`): a synonym or another thing in the same
        mould, which only meaning can tell apart."""
        key = topic_key(query)
        form = sorted_form(query)
        close: dict[str, float] = {}
        tiers = {} if tiers is None else tiers
        unlike = set() if unlike is None else unlike
        if not key:
            return close

        def found(k: str, similarity: float, tier: str, via: str) -> None:
            if similarity > close.get(k, 0.0):
                close[k] = similarity
                tiers[k] = (tier, via)

        if len(key) >= MIN_FUZZY_CHARS:
            choices, owners = self._fuzzy_choices()
            several = len(form.split()) > 1
            mine = [w for w in form.split() if len(w) >= MIN_FUZZY_CHARS]
            for score, i in self.closest_forms(form, fuzzy_limit):
                # (an alias term is kept as one compact key: no words to compare)
                other_words = several and " " in choices[i] and not words_align(mine, choices[i])
                for k in owners[i]:
                    via = self.topics[k].label if k in self.topics else self.term_text.get(k, choices[i])
                    other = other_words and fuzz.ratio(key, k) < MERGED_WORDS
                    for syn in self.synonyms(k) | {k}:
                        if syn in self.topics and syn not in exact:
                            found(syn, score / 100.0, "spelling", via)
                            if other:
                                unlike.add(syn)
        containing = [k for k in self.by_word.get(form, ()) if k not in exact]
        containing.sort(key=lambda k: (-len(self.topics[k].people), k))
        for k in containing[:WORD_HITS]:
            found(k, WORD_MATCH, "word", self.topics[k].label)
        for k in self.abbreviation_matches(query):
            if k not in exact:
                found(k, ABBREV_MATCH, "abbrev", self.topics[k].label)
        if not exact and len(form.split()) > 1:
            words = norm_key(query.replace("#", " ")).split()
            named = {"".join(words[i : i + n]) for n in range(1, MAX_NGRAM + 1) for i in range(len(words) - n + 1)}
            for k in self.topics_in(query):
                if k not in exact and k not in close:
                    found(k, INSIDE_MATCH, "inside", self.topics[k].label)
                    if k not in named and weak is not None:
                        weak.add(k)  # named through an alias of it ("sécurité" for "cybersécurité")
        return close

    def abbreviation_matches(self, query: str) -> list[str]:
        """Topics an acronym query stands for (PLC -> programmable logic controller), or the
        acronym topics a multi-word query spells (human resource management -> HRM). A
        two-letter acronym that fits more than MAX_EXPANSIONS topics is ambiguous: none."""
        acronym = acronym_of(query)
        if acronym is not None:
            fits = [k for k in self.by_initials.get(acronym, ()) if len(self.topics[k].people) or self.topics[k].has_evidence]
            if len(acronym) == 2 and len(fits) > MAX_EXPANSIONS:
                return []
            fits.sort(key=lambda k: (-len(self.topics[k].people), k))
            return fits[:MAX_EXPANSIONS]
        return sorted(a for a in initials(query) if a in self.acronyms)

    def meaning_matches(self, query_vector: "object", exact: dict[str, float], limit: int, floor: float,
                        tiers: dict[str, tuple[str, str]], *, cross_floor: float | None = None,
                        french: bool = False) -> dict[str, float]:
        """Topics whose label (or an alias term of theirs) means what the query means: cosine
        at least `floor` (`cross_floor` for a label in the other language), the `limit` best;
        never one of `exact`."""
        close: dict[str, float] = {}
        if self.vectors is None:
            return close
        for k, similarity in self.vectors.search(query_vector, limit, floor, cross_floor, french):  # type: ignore[arg-type]
            via = self.topics[k].label if k in self.topics else self.term_text.get(k, k)
            for syn in self.synonyms(k) | {k}:
                if syn in self.topics and syn not in exact and similarity > close.get(syn, 0.0):
                    close[syn] = similarity
                    tiers[syn] = ("meaning", via)
        return close

    def suggestions(self, query: str, limit: int = 5,
                    readable: Callable[[list[str]], set[str]] | None = None) -> list[str]:
        """The closest known topics (loosely), or the most declared ones.

        Declared skills are profile data anyone may see; a topic known only from evidence
        (a hashtag) is offered only when `readable` confirms the asker may read some of it,
        so a private channel's hashtags are never revealed.
        """
        form = sorted_form(query)
        choices, owners = self._fuzzy_choices()
        keys: list[str] = []
        if form:
            for _, _, i in process.extract(form, choices, scorer=fuzz.WRatio, limit=limit * 2, score_cutoff=50):
                keys += [k for k in sorted(owners[i]) if k not in keys]
        if not keys:
            popular = sorted(self.topics.values(), key=lambda t: -len(t.people))
            keys = [t.key for t in popular if len(t.people)][: limit * 2]
        evidence_only = [k for k in keys if not len(self.topics[k].people)]
        allowed = readable(evidence_only) if readable is not None and evidence_only else set()
        labels: list[str] = []
        for k in keys:
            label = self.topics[k].label
            if (len(self.topics[k].people) or k in allowed) and label not in labels:
                labels.append(label)
        return labels[:limit]

    def topics_in(self, text: str) -> list[str]:
        """Keys of known topics named in free text (n-grams of up to 4 words, aliases too)."""
        words = norm_key(text.replace("#", " ")).split()
        found: list[str] = []
        for size in range(min(MAX_NGRAM, len(words)), 0, -1):
            for start in range(len(words) - size + 1):
                gram = "".join(words[start : start + size])
                if len(gram) < 2:
                    continue
                hits = {gram} if gram in self.topics else set()
                if gram in self.group_of or gram in self.concepts_of:
                    hits |= {k for k in self.synonyms(gram) if k in self.topics}
                for k in sorted(hits):
                    if k not in found:
                        found.append(k)
        return found

    # Incremental changes -------------------------------------------------------------
    def apply(self, change: "xstore.Change") -> None:
        if isinstance(change, xstore.SkillLinked):
            if change.person_id not in self.excluded:
                self.topic(topic_key(change.key), change.name).link(change.person_id, change.confirmed_at.timestamp())
        elif isinstance(change, xstore.SkillUnlinked):
            found = self.topics.get(topic_key(change.key))
            if found is not None:
                found.unlink(change.person_id)
        elif isinstance(change, xstore.TopicSeen):
            self.topic(change.key, change.label).has_evidence = True
        elif isinstance(change, xstore.AliasSet):
            self.set_alias(change.alias_key, change.target)
        elif isinstance(change, xstore.VisibilityChanged):
            raise StaleIndex  # who may read which evidence changed: reload it
        elif isinstance(change, xstore.PersonActive):
            if change.active:
                raise StaleIndex  # their declared skills must be reloaded
            self.excluded.add(change.person_id)
            for topic in self.topics.values():
                topic.unlink(change.person_id)


def _q(values: np.ndarray) -> array:
    found = array("q")
    found.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())
    return found


def _d(values: np.ndarray) -> array:
    found = array("d")
    found.frombytes(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return found


class StaleIndex(Exception):
    """An incremental change the index cannot apply: rebuild it instead."""
