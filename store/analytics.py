"""Adoption analytics (issue 15): who takes part, where — computed from daily roll-ups, with
who may see which scope and small-group suppression decided here, in the store.

Public API (stable; handlers/stats, the monthly référent report, App Home and the benchmark
build on it). Every function takes a tenant-scoped session (its tenant is the workspace).

Data model (store/models/analytics.py)
- `MessageReaction` (conversation, message, person, UTC day): written by `store.social.react`.
- `ActivityDay` (UTC day, conversation, person → posts, replies, reactions, ideas, votes,
  help_asked, help_answered, kudos_given): one row per person, conversation and day, written by
  `rollup_day`. `conversation_id` 0 = outside any channel (a command typed to the bot in a DM
  that left no conversation). A report reads these rows, never the message table (busiest
  threads excepted: one channel's replies of the period).
- `FirstContribution` (person, conversation or 0 for the shared spaces → first day).
- `RollupDay` (UTC day): the day's rows are written; its insert is the claim.
- Roll-up rows hold ids without foreign keys: a forgotten person's counts stay and name nobody.
  (SQLite may give the highest id again after its row is deleted; PostgreSQL never does. A
  reused id would show the forgotten person's past activity in the newcomer's `stats me`.)

Scopes and who may read them (`may_read`, `readable_scopes`, `who_may_read`)
- `Scope("me")`: anyone, their own figures only (`my_activity`).
- `Scope("channel", conversation_id)`: admins, the channel's animators and référents, and
  workspace-wide animators/référents (a role without channel or scope). A private channel or
  group chat: its own animators/référents, and the others above only if they are members of
  it. DMs: nobody.
- `Scope("department" | "site", name)` / `Scope("language", "fr")`: admins, workspace-wide
  animators/référents, and référents/animators of that scope (`role add @x referent department
  Sales`: `Role.scope_kind` / `Role.scope_value`, compared case-insensitively). Members are
  the active, non-bot people whose profile says so (language: their own locale, else the
  workspace's).
- `Scope("all")`: admins only. So are `export_rows` and `dormant_channels`.

What counts (definitions also in `help stats`)
- Contributor: posted, replied, submitted an idea, asked or answered a help request, or
  thanked someone, in the scope during the period. Reactor-only: reacted or voted and did not
  contribute. Silent: a member who did neither (platforms do not show who reads).
- Organisation scopes (department, site, language, all) count public channels and what was
  typed to the bot in DMs only: private channels and group chats never count there, in totals
  or breakdowns, so no organisation figure can reveal them. A private channel's activity shows
  only in its own channel report, to the people above.
- Periods are whole UTC days ending with `end` (included). Days not rolled up yet (today,
  or after a missed job run) are computed live from the source tables, so "today so far" is in
  every report.

Suppression (`min_group`: default 5, admins set 3–10)
- A scope with fewer members than the minimum shows nothing at all (`Figures.too_small`: its
  posts or help requests would be one or two people's).
- A count of people from 1 to min-1 is `None` (shown as "fewer than N"). Within a partition
  whose total is shown (contributors + reactors-only + silent = members; a breakdown's rows),
  one hidden cell hides the next smallest too, until the hidden cells hold at least the
  minimum, so nobody can subtract; those complements are named in `withheld` (shown
  "hidden", not "fewer than N"). Activity counts (posts, ideas, help requests, kudos) of a
  scope at or above the minimum are shown as they are; rates follow their contributors.
- Contributors who are no longer members (left the channel, or forgotten) still count in a
  channel's and the organisation's contributors; never in the partition above.

Cost (see bench/bench_analytics.py): a report reads the scope's roll-up rows for the span of
its two periods, one grouped member count, the day's live part, help requests and ideas of the
span — a channel's grows with its activity and (the count) its size; an organisation report
with the activity of everyone over 56 days. That last read is one scan of the covering index
(day, conversation, person, part) grouped per person (`max(part)` per period: each row is read
once, not the eight counts of each); the chart's weeks read only the contributing rows, each put
in its week by one CASE on its day and counted once per (week, person).
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Sequence

from rapidfuzz import fuzz, process
from sqlalchemy import ColumnElement, and_, case, delete, func, literal, or_, select, text, update
from sqlalchemy.orm import Session

from store import readers
from store.idempotency import insert_ignore
from store.models.analytics import (CONTRIBUTING, PART_CONTRIBUTED, PART_REACTED, REACTING, ActivityDay, AnalyticsSetting,
                                    FirstContribution, MessageReaction, RollupDay, part_of)
from store.models.contribution import HelpRequest, Idea, IdeaVote, Kudos
from store.models.core import Conversation, ConversationMember, Person, Role, Workspace
from store.models.social import Message

SCOPE_KINDS = ("channel", "department", "site", "language", "all", "me")
PROFILE_KINDS = ("department", "site", "language")
ROLES = ("animator", "referent")
KINDS = ("posts", "replies", "reactions", "ideas", "votes", "help_asked", "help_answered", "kudos_given")
SHARED_KINDS = ("public", "dm")  # conversation kinds that count in organisation scopes
FORWARD_STATUSES = ("under_review", "accepted", "in_progress", "done")
DEFAULT_MIN_GROUP = 5
MIN_GROUP_RANGE = (3, 10)
MAX_DAYS = 366
REFERENCE_RATE = (0.20, 0.25)
DORMANT_STEPS = (30, 60, 90)
NO_CHANNEL = 0


# Types ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """What a report covers. `value`: the conversation id for "channel"; the name as people's
    profiles spell it for "department"/"site"; a language code for "language"; None otherwise."""

    kind: str
    value: str | int | None = None


@dataclass(frozen=True)
class Viewer:
    """Who asks. `admin` comes from the settings (bot.context.is_admin), not the store."""

    person_id: int
    admin: bool = False


class ScopeNotFound(LookupError):
    """`resolve_scope` found no such channel/department/site/language; `suggestion` is the
    closest known name (or None)."""

    def __init__(self, kind: str, given: str, suggestion: str | None) -> None:
        super().__init__(kind, given, suggestion)
        self.kind, self.given, self.suggestion = kind, given, suggestion


@dataclass(frozen=True)
class Period:
    start: date  # first day included
    end: date  # last day included

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def before(self) -> "Period":
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


@dataclass(frozen=True)
class Figures:
    """One period's numbers for a scope. People counts are `None` when suppressed; `rate` is
    contributors / members (0..1), None when either is hidden or there are no members."""

    period: Period
    members: int | None
    contributors: int | None
    reactors_only: int | None
    silent: int | None
    rate: float | None
    first_timers: int | None
    posts: int = 0
    replies: int = 0
    reactions: int = 0
    ideas: int = 0
    ideas_forward: int = 0
    votes: int = 0
    kudos: int = 0
    help_asked: int = 0
    help_answered: int = 0
    help_unanswered: int = 0
    # Members who read the channel in the period, where its messenger says (Matrix read
    # receipts): None when not measured there or under the minimum group.
    readers: int | None = None
    readers_measured: bool = False
    reply_median: timedelta | None = None
    reply_slowest: timedelta | None = None
    withheld: tuple[str, ...] = ()  # people counts hidden only so a small one cannot be worked out
    too_small: bool = False  # fewer members than the minimum: no figure at all (activity counts are 0)

    @property
    def active(self) -> bool:
        """Anything happened at all (posts, reactions, ideas, help, kudos)."""
        return any((self.posts, self.replies, self.reactions, self.ideas, self.votes, self.kudos, self.help_asked))


@dataclass(frozen=True)
class BreakdownRow:
    """One cell group of a breakdown: `label` is a department, site, language code or channel
    name ("" = not set in profiles). Counts suppressed like Figures'."""

    label: str
    members: int | None
    contributors: int | None
    rate: float | None
    withheld: tuple[str, ...] = ()  # "members"/"contributors" hidden as the complement of a small cell


@dataclass(frozen=True)
class Thread:
    conversation_id: int
    title: str  # the root message's first line, raw stored text (markers kept): render escaped
    replies: int
    permalink: str


@dataclass(frozen=True)
class ScopeReport:
    scope: Scope
    label: str  # channel name, department, site, language code; "" for all
    current: Figures
    previous: Figures
    min_group: int
    breakdown_by: str | None = None  # "department" | "site" | None
    breakdown: tuple[BreakdownRow, ...] = ()
    threads: tuple[Thread, ...] = ()
    conversation_kind: str | None = None  # for a channel: public | private | group

    @property
    def empty(self) -> bool:
        """Nothing happened in either period: say "no activity yet" rather than show zeros."""
        return not (self.current.active or self.previous.active)


@dataclass(frozen=True)
class WeekPoint:
    week_start: date  # a Monday; the last point's week may be partial (up to `end`)
    contributors: int | None
    members: int | None
    rate: float | None


@dataclass(frozen=True)
class MyActivity:
    """`stats me`: the reader's own counts (never anyone else's), this period and the last."""

    period: Period
    counts: dict[str, int]
    previous: dict[str, int]
    channels: int  # conversations contributed in this period
    first_day: date | None  # first contribution in the shared spaces


@dataclass(frozen=True)
class DormantChannel:
    conversation_id: int
    name: str
    last_post: date | None  # None: nothing posted since analytics began
    idle_days: int
    members: int


# Settings ------------------------------------------------------------------------------------
def min_group(session: Session) -> int:
    """The workspace's minimum group size (default 5)."""
    value = session.scalar(select(AnalyticsSetting.value).where(AnalyticsSetting.name == "min_group"))
    try:
        number = int(value) if value else DEFAULT_MIN_GROUP
    except ValueError:
        return DEFAULT_MIN_GROUP
    return min(max(number, MIN_GROUP_RANGE[0]), MIN_GROUP_RANGE[1])


def set_min_group(session: Session, tenant: str, value: int, by: int, now: datetime) -> None:
    """Set the minimum group size (the caller checks the range and that `by` is an admin)."""
    if not MIN_GROUP_RANGE[0] <= value <= MIN_GROUP_RANGE[1]:
        raise ValueError(value)
    if not insert_ignore(session, AnalyticsSetting, {"tenant": tenant, "name": "min_group", "value": str(value),
                                                     "updated_by": by, "updated_at": now}):
        session.execute(update(AnalyticsSetting).where(AnalyticsSetting.name == "min_group")
                        .values(value=str(value), updated_by=by, updated_at=now)
                        .execution_options(synchronize_session=False))


# Who may read which scope --------------------------------------------------------------------
def _fold(text: str | None) -> str:
    return (text or "").strip().casefold()


def _roles_of(session: Session, person_id: int) -> list[Role]:
    return list(session.scalars(select(Role).where(Role.person_id == person_id, Role.role.in_(ROLES))))


def _is_member(session: Session, person_id: int, conversation_id: int) -> bool:
    return session.scalar(select(ConversationMember.id).where(
        ConversationMember.conversation_id == conversation_id, ConversationMember.person_id == person_id)) is not None


def may_read(session: Session, viewer: Viewer, scope: Scope) -> bool:
    """True when `viewer` may see `scope`'s figures (rules in the module docstring)."""
    if scope.kind == "me":
        return True
    if scope.kind == "all":
        return viewer.admin
    roles = _roles_of(session, viewer.person_id)
    workspace_wide = any(r.conversation_id is None and r.scope_kind is None for r in roles)
    if scope.kind == "channel":
        conv = session.get(Conversation, int(scope.value)) if scope.value is not None else None
        if conv is None or conv.kind == "dm":
            return False
        own = any(r.conversation_id == conv.id for r in roles)
        if own:
            return True
        if not (viewer.admin or workspace_wide):
            return False
        return conv.kind == "public" or _is_member(session, viewer.person_id, conv.id)
    if scope.kind in PROFILE_KINDS:
        if viewer.admin or workspace_wide:
            return True
        return any(r.scope_kind == scope.kind and _fold(r.scope_value) == _fold(str(scope.value)) for r in roles)
    return False


def readable_scopes(session: Session, viewer: Viewer) -> list[Scope]:
    """The scopes the viewer's roles name, each readable: `me`, `all` for admins, the channels
    they animate or are référent of, the departments/sites/languages they are référent of.
    (Admins and workspace-wide role holders may also read any other channel or profile scope
    they ask for: `may_read` says so; they are not all listed here.)"""
    scopes: list[Scope] = [Scope("me")]
    if viewer.admin:
        scopes.append(Scope("all"))
    seen: set[Scope] = set(scopes)
    for role in sorted(_roles_of(session, viewer.person_id), key=lambda r: r.id):
        if role.conversation_id is not None:
            scope = Scope("channel", role.conversation_id)
        elif role.scope_kind in PROFILE_KINDS:
            scope = Scope(role.scope_kind, role.scope_value)
        else:
            continue
        key = Scope(scope.kind, _fold(str(scope.value)) if scope.kind in PROFILE_KINDS else scope.value)
        if key not in seen and may_read(session, viewer, scope):
            seen.add(key)
            scopes.append(scope)
    return scopes


def who_may_read(session: Session, scope: Scope) -> list[Person]:
    """The people whose role lets them read `scope` (admins come from the settings: the caller
    adds them), for a refusal that says who can. For a private channel, only its own role holders."""
    query = select(Person).join(Role, Role.person_id == Person.id).where(Role.role.in_(ROLES), Person.active)
    wide = and_(Role.conversation_id.is_(None), Role.scope_kind.is_(None))
    if scope.kind == "channel":
        conv = session.get(Conversation, int(scope.value)) if scope.value is not None else None
        if conv is None or conv.kind == "dm":
            return []
        query = query.where(Role.conversation_id == conv.id if conv.kind != "public"
                            else or_(Role.conversation_id == conv.id, wide))
    elif scope.kind in PROFILE_KINDS:
        query = query.where(or_(wide, and_(Role.scope_kind == scope.kind,
                                           func.lower(Role.scope_value) == _fold(str(scope.value)))))
    else:
        return []
    people = list(session.scalars(query.distinct()))
    return sorted(people, key=lambda p: (p.display_name or p.handle).casefold())


def resolve_scope(session: Session, kind: str, text: str) -> Scope:
    """A department/site/language scope from typed text, matched case- and accent-blind against
    people's profiles (department, site; a language code or its name). Raises ScopeNotFound
    with the closest known value as a suggestion."""
    given = text.strip().strip("\"'«»“”").strip()
    known = profile_values(session, kind)
    for value in known:
        if _fold(value) == _fold(given):
            return Scope(kind, value)
    if kind == "language":  # two-letter codes: any fuzzy match would be a guess
        raise ScopeNotFound(kind, given, None)
    best = process.extractOne(given, known, scorer=fuzz.WRatio, processor=lambda s: s.casefold(),
                              score_cutoff=60) if known and given else None
    raise ScopeNotFound(kind, given, best[0] if best else None)


def resolve_channel_name(session: Session, text: str) -> str | None:
    """The closest channel name to an unknown `#name` (public channels only: a suggestion
    never reveals a private one), or None."""
    names = list(session.scalars(select(Conversation.name).where(Conversation.kind == "public", Conversation.name != "")))
    best = process.extractOne(text.lstrip("#"), names, scorer=fuzz.WRatio, score_cutoff=60) if names else None
    return best[0] if best else None


def counts_as_member() -> ColumnElement[bool]:
    """The one rule of who counts as a person in the figures (a condition on `Person`): an
    active person who is not a bot. Members, contributors-who-are-members, reactors-only and
    silent members of every scope are such people; a bot's posts count nowhere (the roll-up
    skips them), a person who left or was forgotten counts only among a channel's or the
    organisation's contributors (no longer members). Other modules that count "people who
    could take part" (survey audiences, for one) can use it to agree with the reports."""
    return and_(Person.active, Person.is_bot.is_(False))


def profile_values(session: Session, kind: str) -> list[str]:
    """The distinct non-empty departments, sites or languages of active people."""
    if kind == "language":
        return sorted(set(_language_of_people(session).values()) - {""})
    column = Person.department if kind == "department" else Person.site
    values = session.scalars(select(column).where(counts_as_member(), column != "").distinct())
    by_fold: dict[str, str] = {}
    for v in values:
        by_fold.setdefault(_fold(v), v.strip())
    return sorted(by_fold.values(), key=str.casefold)


def _workspace_locale(session: Session) -> str:
    tenant = session.info.get("tenant")
    return session.scalar(select(Workspace.default_locale).where(Workspace.id == tenant)) or "en"


def _language_of_people(session: Session) -> dict[int, str]:
    default = _workspace_locale(session)
    return {pid: (loc or default) for pid, loc in session.execute(
        select(Person.id, Person.locale).where(counts_as_member()))}


# Roll-up -------------------------------------------------------------------------------------
def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00 UTC, end+1 00:00 UTC)."""
    return (datetime.combine(start, time(0), timezone.utc), datetime.combine(end + timedelta(days=1), time(0), timezone.utc))


def _day(value: datetime) -> date:
    return value.astimezone(timezone.utc).date()


Key = tuple[date, int, int]  # day, conversation (0 = none), person


def _compute(session: Session, start: date, end: date, conversation_id: int | None = None) -> dict[Key, dict[str, int]]:
    """The activity of the UTC days start..end (included) from the source tables, per (day,
    conversation, person), optionally for one conversation. What both the roll-up and a
    report's live part (days not rolled up yet) read."""
    lo, hi = _bounds(start, end)
    rows: dict[Key, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KINDS, 0))

    def one_conv(column: Any) -> list[ColumnElement[bool]]:
        return [column == conversation_id] if conversation_id is not None else []

    reply = and_(Message.thread_external_id.is_not(None), Message.thread_external_id != Message.external_id)
    for conv, author, is_reply, sent in session.execute(
            select(Message.conversation_id, Message.author_id, case((reply, 1), else_=0), Message.sent_at)
            .join(Person, Person.id == Message.author_id)
            .where(Message.sent_at >= lo, Message.sent_at < hi, Person.is_bot.is_(False),
                   *one_conv(Message.conversation_id))):
        rows[(_day(sent), conv, author)]["replies" if is_reply else "posts"] += 1
    for conv, person, day in session.execute(
            select(MessageReaction.conversation_id, MessageReaction.person_id, MessageReaction.day)
            .where(MessageReaction.day >= start, MessageReaction.day <= end, *one_conv(MessageReaction.conversation_id))):
        rows[(day, conv, person)]["reactions"] += 1
    for conv, person, at in session.execute(
            select(Idea.conversation_id, Idea.author_id, Idea.created_at)
            .where(Idea.created_at >= lo, Idea.created_at < hi, Idea.status != "draft", *one_conv(Idea.conversation_id))):
        rows[(_day(at), conv or NO_CHANNEL, person)]["ideas"] += 1
    for conv, person, at in session.execute(
            select(Idea.conversation_id, IdeaVote.person_id, IdeaVote.created_at).join(Idea, Idea.id == IdeaVote.idea_id)
            .where(IdeaVote.created_at >= lo, IdeaVote.created_at < hi, *one_conv(Idea.conversation_id))):
        rows[(_day(at), conv or NO_CHANNEL, person)]["votes"] += 1
    for conv, person, at in session.execute(
            select(HelpRequest.conversation_id, HelpRequest.asker_id, HelpRequest.created_at)
            .where(HelpRequest.created_at >= lo, HelpRequest.created_at < hi, *one_conv(HelpRequest.conversation_id))):
        rows[(_day(at), conv or NO_CHANNEL, person)]["help_asked"] += 1
    for conv, person, at in session.execute(
            select(HelpRequest.conversation_id, HelpRequest.helper_id, HelpRequest.resolved_at)
            .where(HelpRequest.resolved_at >= lo, HelpRequest.resolved_at < hi, HelpRequest.helper_id.is_not(None),
                   HelpRequest.helper_id != HelpRequest.asker_id, *one_conv(HelpRequest.conversation_id))):
        rows[(_day(at), conv or NO_CHANNEL, person)]["help_answered"] += 1
    for conv, person, at in session.execute(
            select(Kudos.conversation_id, Kudos.giver_id, Kudos.created_at)
            .where(Kudos.created_at >= lo, Kudos.created_at < hi, *one_conv(Kudos.conversation_id))):
        rows[(_day(at), conv or NO_CHANNEL, person)]["kudos_given"] += 1
    return rows


def _as_flags(part: int) -> tuple[int, int]:
    """A `part` (2, 1, 0) as (contributed, reacted) for `_Tally.count`."""
    return int(part == PART_CONTRIBUTED), int(part >= PART_REACTED)


def _contributed(counts: dict[str, int] | Any) -> bool:
    get = counts.get if isinstance(counts, dict) else lambda k: getattr(counts, k)
    return any(get(k) for k in CONTRIBUTING)


def _reacted(counts: dict[str, int] | Any) -> bool:
    get = counts.get if isinstance(counts, dict) else lambda k: getattr(counts, k)
    return any(get(k) for k in REACTING)


def _shared_conversations(session: Session) -> set[int]:
    """Conversations whose activity counts in organisation scopes (public channels, DMs), and 0."""
    return {NO_CHANNEL, *session.scalars(select(Conversation.id).where(Conversation.kind.in_(SHARED_KINDS)))}


def is_rolled(session: Session, day: date) -> bool:
    return session.scalar(select(RollupDay.id).where(RollupDay.day == day)) is not None


def rollup_day(session: Session, tenant: str, day: date, *, redo: bool = False) -> int:
    """Write the activity rows of one UTC day (and move first-contribution days earlier where
    it shows one). Claimed by inserting the day's `RollupDay` row in the same transaction: a
    day already rolled up (by this or another worker) returns 0 and writes nothing, so calling
    it twice, or from two processes, counts a day once. `redo=True` (an operator after a history
    backfill) rewrites the day from what the source tables hold now (a forgotten person's
    activity then drops out of that day). Returns the number of activity rows written."""
    if redo:
        session.execute(delete(ActivityDay).where(ActivityDay.day == day))
        session.execute(delete(RollupDay).where(RollupDay.day == day))
    if not insert_ignore(session, RollupDay, {"tenant": tenant, "day": day, "rows": 0,
                                              "rolled_at": datetime.now(timezone.utc)}):
        return 0
    rows = _compute(session, day, day)
    if rows:
        session.execute(ActivityDay.__table__.insert(), [
            {"tenant": tenant, "day": d, "conversation_id": conv, "person_id": person, **counts, "part": part_of(counts)}
            for (d, conv, person), counts in rows.items()])
    _record_firsts(session, tenant, day, [(conv, person) for (_, conv, person), counts in rows.items()
                                          if _contributed(counts)])
    session.execute(update(RollupDay).where(RollupDay.day == day).values(rows=len(rows))
                    .execution_options(synchronize_session=False))
    return len(rows)


def _record_firsts(session: Session, tenant: str, day: date, pairs: list[tuple[int, int]]) -> None:
    if not pairs:
        return
    shared = _shared_conversations(session)
    wanted: set[tuple[int, int]] = set()
    for conv, person in pairs:
        if conv != NO_CHANNEL:
            wanted.add((person, conv))
        if conv in shared:
            wanted.add((person, NO_CHANNEL))
    people = sorted({p for p, _ in wanted})
    known: dict[tuple[int, int], date] = {}
    for chunk in range(0, len(people), 500):
        for person, conv, first in session.execute(
                select(FirstContribution.person_id, FirstContribution.conversation_id, FirstContribution.day)
                .where(FirstContribution.person_id.in_(people[chunk:chunk + 500]))):
            known[(person, conv)] = first
    new = [{"tenant": tenant, "person_id": p, "conversation_id": c, "day": day} for p, c in wanted if (p, c) not in known]
    if new:
        session.execute(FirstContribution.__table__.insert(), new)
    for (person, conv), first in known.items():
        if (person, conv) in wanted and first > day:
            session.execute(update(FirstContribution).where(FirstContribution.person_id == person,
                                                            FirstContribution.conversation_id == conv)
                            .values(day=day).execution_options(synchronize_session=False))


def earliest_day(session: Session) -> date | None:
    """The first UTC day anything was recorded (messages, ideas, help requests, kudos)."""
    firsts = [session.scalar(select(func.min(column))) for column in
              (Message.sent_at, Idea.created_at, HelpRequest.created_at, Kudos.created_at)]
    days = [_day(f) if isinstance(f, datetime) else f for f in firsts if f is not None]
    reaction = session.scalar(select(func.min(MessageReaction.day)))
    if reaction is not None:
        days.append(reaction)
    return min(days) if days else None


def pending_days(session: Session, today: date, limit: int = 400) -> list[date]:
    """Days before `today` (UTC) that have activity to roll up and are not rolled up yet,
    oldest first, within `limit` days back."""
    first = earliest_day(session)
    if first is None:
        return []
    start = max(first, today - timedelta(days=limit))
    done = set(session.scalars(select(RollupDay.day).where(RollupDay.day >= start, RollupDay.day < today)))
    return [start + timedelta(days=i) for i in range((today - start).days) if start + timedelta(days=i) not in done]


# Reading -------------------------------------------------------------------------------------
@dataclass
class _Tally:
    """A scope's people counts and activity totals over one period."""

    active: dict[str, int] = field(default_factory=dict)  # contributors who are members, per breakdown label
    reactors: int = 0  # reacted or voted, did not contribute, members
    outsiders: int = 0  # contributed, not members (left, forgotten)
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    live_contributed: set[int] = field(default_factory=set)  # contributed on a day not rolled up yet

    @property
    def contributors(self) -> int:
        return sum(self.active.values())

    def count(self, flags: tuple[int, int], member: bool, label: str | None, sign: int) -> None:
        """Class one person (contributed, reacted) in or (sign -1) out of the counts."""
        contributed, reacted = flags
        key = (label or "").strip()
        if contributed and member:
            self.active[key] = self.active.get(key, 0) + sign
        elif contributed:
            self.outsiders += sign
        elif reacted and member:
            self.reactors += sign


class _Reader:
    """One report's reads over a span of days (both periods, or the chart's weeks). Who is a
    member is answered by the database: member counts per breakdown label (one grouped query for
    every date asked), and each active person's label and join date come with their activity
    rows, so a report costs what the scope's activity costs, not its size. A channel reads its
    own roll-up rows once for the span; an organisation scope lets the database sum per person
    and period."""

    def __init__(self, session: Session, scope: Scope, span: Period, today: date) -> None:
        self.session, self.scope, self.span, self.today = session, scope, span, today
        self.channel = int(scope.value) if scope.kind == "channel" else None  # type: ignore[arg-type]
        self._counts: dict[date, dict[str, int]] = {}
        self._rolled: set[date] | None = None
        self._live: dict[Key, dict[str, int]] | None = None
        self._live_who: dict[int, _Who] | None = None
        self._shared: set[int] | None = None
        self._help: list[tuple[int, datetime, datetime | None, datetime | None, int | None]] | None = None
        self._ideas: list[tuple[int, datetime]] | None = None
        self._firsts: dict[Period, int] = {}
        self._known: set[int] | None = None
        self._default = _workspace_locale(session) if scope.kind == "language" else ""

    # who belongs to the scope
    def _label(self) -> Any:
        return Person.site if self.scope.kind == "department" else Person.department

    def _since(self) -> Any:
        return ConversationMember.joined_at if self.channel is not None else Person.created_at

    def _in_scope(self) -> list[ColumnElement[bool]]:
        """Conditions on Person (and, for a channel, ConversationMember) for a member."""
        conds: list[ColumnElement[bool]] = [counts_as_member()]
        value = _fold(str(self.scope.value))
        if self.scope.kind == "department":
            conds.append(func.lower(func.trim(Person.department)) == value)
        elif self.scope.kind == "site":
            conds.append(func.lower(func.trim(Person.site)) == value)
        elif self.scope.kind == "language":
            conds.append(func.lower(func.coalesce(Person.locale, self._default)) == value)
        return conds

    def prepare_counts(self, dates: Iterable[date]) -> None:
        """Member counts per label on each of `dates`, in one grouped query."""
        wanted = sorted(set(dates) - set(self._counts))
        if not wanted:
            return
        since = self._since()
        columns = [func.sum(case((since < _bounds(d, d)[1], 1), else_=0)) for d in wanted]
        query = select(self._label(), *columns).where(*self._in_scope()).group_by(self._label())
        if self.channel is not None:
            query = query.join(ConversationMember, ConversationMember.person_id == Person.id).where(
                ConversationMember.conversation_id == self.channel)
        for d in wanted:
            self._counts[d] = {}
        for label, *sums in self.session.execute(query):
            key = (label or "").strip()
            for d, n in zip(wanted, sums):
                if n:
                    self._counts[d][key] = self._counts[d].get(key, 0) + int(n)

    def member_counts(self, as_of: date) -> dict[str, int]:
        self.prepare_counts([as_of])
        return self._counts[as_of]

    def _who_columns(self) -> list[Any]:
        member = and_(*self._in_scope(), ConversationMember.id.is_not(None)) if self.channel is not None \
            else and_(*self._in_scope())
        return [self._label(), self._since(), case((member, 1), else_=0)]

    # activity
    def rolled(self) -> set[date]:
        if self._rolled is None:
            self._rolled = set(self.session.scalars(select(RollupDay.day).where(
                RollupDay.day >= self.span.start, RollupDay.day <= self.span.end)))
        return self._rolled

    def shared(self) -> set[int]:
        if self._shared is None:
            self._shared = _shared_conversations(self.session)
        return self._shared

    def live(self) -> tuple[dict[Key, dict[str, int]], dict[int, "_Who"]]:
        """Activity of the span's days not rolled up yet (today, a missed run), from the
        sources, and who those people are."""
        if self._live is None:
            rolled = self.rolled()
            missing = [d for d in (self.span.start + timedelta(days=i) for i in range(self.span.days))
                       if d not in rolled and d <= self.today]
            self._live, self._live_who = {}, {}
            if missing:
                computed = _compute(self.session, min(missing), max(missing), self.channel)
                shared = None if self.channel is not None else self.shared()
                self._live = {key: counts for key, counts in computed.items()
                              if key[0] not in rolled and (shared is None or key[1] in shared)}
                people = sorted({person for _, _, person in self._live})
                for chunk in range(0, len(people), 500):
                    ids = people[chunk:chunk + 500]
                    query = self._who_query(ids)
                    for pid, label, since, member in self.session.execute(query):
                        self._live_who[pid] = _Who(label, since, bool(member))
                if self.scope.kind in PROFILE_KINDS:  # people outside the part of the organisation are out
                    self._live = {k: v for k, v in self._live.items() if k[2] in self._live_who}
        return self._live, self._live_who  # type: ignore[return-value]

    def _who_query(self, ids: list[int]) -> Any:
        query = select(Person.id, *self._who_columns()).where(Person.id.in_(ids))
        if self.channel is not None:
            query = query.outerjoin(ConversationMember, and_(ConversationMember.person_id == Person.id,
                                                             ConversationMember.conversation_id == self.channel))
        elif self.scope.kind in PROFILE_KINDS:
            query = query.where(*self._in_scope())
        return query

    def _scope_rows(self) -> list[ColumnElement[bool]]:
        """Which roll-up rows are the scope's: the channel's, or the shared spaces' (public
        channels, DMs, outside any channel) for an organisation scope."""
        if self.channel is not None:
            return [ActivityDay.conversation_id == self.channel]
        # "+ 0": not by the conversation index (one seek per channel, then each row from the
        # table): the span's days are read through the day index, which holds the conversation
        conv = ActivityDay.conversation_id + 0
        return [or_(conv == NO_CHANNEL, conv.in_(select(Conversation.id).where(Conversation.kind.in_(SHARED_KINDS))))]

    def _flags(self, periods: Sequence[Period], people: Sequence[int] | None = None) -> Any:
        """Per person of the scope's roll-up rows over the span: the strongest part they took in
        each period (f<i>: 2 contributed, 1 only reacted or voted, 0 nothing), the maximum of
        the rows' `part`, summed by the database in one grouped scan of the day index (which
        holds the conversation, the person and `part`: the rows themselves are not read)."""
        lo = min(p.start for p in periods)
        hi = max(p.end for p in periods)
        columns = []
        for i, p in enumerate(periods):
            inside = [c for c in (ActivityDay.day >= p.start if p.start > lo else None,
                                  ActivityDay.day <= p.end if p.end < hi else None) if c is not None]
            value = case((and_(*inside), ActivityDay.part), else_=0) if inside else ActivityDay.part
            columns.append(func.max(value).label(f"f{i}"))
        query = select(ActivityDay.person_id.label("pid"), *columns).where(
            ActivityDay.day >= lo, ActivityDay.day <= hi, *self._scope_rows())
        if people is not None:
            query = query.where(ActivityDay.person_id.in_(people))
        if self.scope.kind in PROFILE_KINDS:
            query = query.where(ActivityDay.person_id.in_(select(Person.id).where(*self._in_scope())))
        return query.group_by(ActivityDay.person_id)

    def _contributor_weeks(self, periods: Sequence[Period]) -> Any:
        """For consecutive disjoint periods (the chart's weeks): each (period index, person) who
        contributed in it, once — the contributing rows of the span read once from the day
        index, each put in its period by its day."""
        segment = case(*[(ActivityDay.day >= p.start, i) for i, p in reversed(list(enumerate(periods)))][:-1],
                       else_=0) if len(periods) > 1 else literal(0)
        query = select(ActivityDay.person_id.label("pid"), segment.label("seg")).where(
            ActivityDay.day >= periods[0].start, ActivityDay.day <= periods[-1].end,
            ActivityDay.part == PART_CONTRIBUTED, *self._scope_rows())
        if self.scope.kind in PROFILE_KINDS:
            query = query.where(ActivityDay.person_id.in_(select(Person.id).where(*self._in_scope())))
        return query.distinct()

    def _joined(self, query: Any, pid: Any) -> Any:
        """`query` (over a subquery of person ids `pid`) with each person's row and, for a
        channel, their membership (outer joins: a forgotten person or one who left is no member)."""
        query = query.outerjoin(Person, Person.id == pid)
        if self.channel is not None:
            query = query.outerjoin(ConversationMember, and_(ConversationMember.person_id == pid,
                                                             ConversationMember.conversation_id == self.channel))
        return query

    def _member_by(self, bound: Any) -> ColumnElement[bool]:
        conds = [*self._in_scope(), self._since() < bound]
        if self.channel is not None:
            conds.append(ConversationMember.id.is_not(None))
        return and_(*conds)

    def tallies(self, periods: Sequence[Period], *, contributors_only: bool = False) -> list["_Tally"]:
        """Each period's people counts (contributors and reactors-only who are members, per
        breakdown label; contributors who are not) and activity totals. The database groups the
        roll-up rows per person and then per label, so a report reads a few rows whatever the
        scope's size; people active on days not rolled up yet are corrected in Python.
        `contributors_only` (consecutive disjoint periods, the chart's weeks): only the
        contributors who are members are counted (reactors, outsiders and totals are left out)."""
        periods = list(periods)
        out = [_Tally() for _ in periods]
        consecutive = all(b.start == a.end + timedelta(days=1) for a, b in zip(periods, periods[1:]))
        if contributors_only and consecutive:
            weeks = self._contributor_weeks(periods).subquery()
            bound = case(*[(weeks.c.seg == i, _bounds(p.end, p.end)[1]) for i, p in enumerate(periods)])
            query = self._joined(select(weeks.c.seg, self._label(), func.sum(case((self._member_by(bound), 1), else_=0)))
                                 .select_from(weeks), weeks.c.pid)
            for seg, label, n in self.session.execute(query.group_by(weeks.c.seg, self._label())):
                if n:
                    key = (label or "").strip()
                    out[seg].active[key] = out[seg].active.get(key, 0) + int(n)
        else:
            flags = self._flags(periods).subquery()
            query = self._joined(select(self._label(), *[
                agg for i, p in enumerate(periods) for agg in self._member_sums(flags, i, p)]).select_from(flags),
                flags.c.pid)
            for label, *sums in self.session.execute(query.group_by(self._label())):
                key = (label or "").strip()
                for i, tally in enumerate(out):
                    cm, rm, c = (int(v or 0) for v in sums[3 * i:3 * i + 3])
                    if cm:
                        tally.active[key] = tally.active.get(key, 0) + cm
                    tally.reactors += rm
                    tally.outsiders += c - cm
        if not contributors_only:
            # activity totals per day (the scope's rows; an organisation part: its people's)
            totals = select(ActivityDay.day, *[func.sum(getattr(ActivityDay, k)) for k in KINDS]).where(
                ActivityDay.day >= min(p.start for p in periods), ActivityDay.day <= max(p.end for p in periods),
                *self._scope_rows())
            if self.scope.kind in PROFILE_KINDS:
                totals = totals.where(ActivityDay.person_id.in_(select(Person.id).where(*self._in_scope())))
            for day, *sums in self.session.execute(totals.group_by(ActivityDay.day)):
                for tally, p in zip(out, periods):
                    if p.start <= day <= p.end:
                        for k, v in zip(KINDS, sums):
                            tally.totals[k] += int(v or 0)
        self._correct_live(periods, out)
        return out

    def _member_sums(self, flags: Any, i: int, period: Period) -> list[Any]:
        member = self._member_by(_bounds(period.end, period.end)[1])
        f = flags.c[f"f{i}"]
        return [func.sum(case((and_(f == PART_CONTRIBUTED, member), 1), else_=0)),
                func.sum(case((and_(f == PART_REACTED, member), 1), else_=0)),
                func.sum(case((f == PART_CONTRIBUTED, 1), else_=0))]

    def _correct_live(self, periods: Sequence[Period], out: list["_Tally"]) -> None:
        """Add the activity of days not rolled up yet: totals as they are; a person active on
        them is taken out of the counts as the roll-up rows alone classed them, and put back
        as both together class them."""
        live, who = self.live()
        if not live:
            return
        per_person: dict[int, list[int]] = {}
        for (day, _conv, person), counts in live.items():
            parts = per_person.setdefault(person, [0] * len(periods))
            for i, (tally, p) in enumerate(zip(out, periods)):
                if p.start <= day <= p.end:
                    for k in KINDS:
                        tally.totals[k] += counts[k]
                    part = part_of(counts)
                    if part == PART_CONTRIBUTED:
                        tally.live_contributed.add(person)
                    parts[i] = max(parts[i], part)
        people = sorted(per_person)
        rolled: dict[int, tuple[int, ...]] = {}
        for chunk in range(0, len(people), 500):
            for pid, *values in self.session.execute(self._flags(periods, people[chunk:chunk + 500])):
                rolled[pid] = tuple(int(v or 0) for v in values)
        for person, live_parts in per_person.items():
            w = who.get(person, _Who(None, None, False))
            old = rolled.get(person, (0,) * len(periods))
            for i, (tally, p) in enumerate(zip(out, periods)):
                before, after = old[i], max(old[i], live_parts[i])
                if after != before:
                    member = w.member_by(_bounds(p.end, p.end)[1])
                    tally.count(_as_flags(before), member, w.label, -1)
                    tally.count(_as_flags(after), member, w.label, 1)

    def prepare_firsts(self, periods: Iterable[Period]) -> None:
        """The first-contribution counts (rolled up) of several periods in one grouped query."""
        wanted = [p for p in dict.fromkeys(periods) if p not in self._firsts]
        if not wanted:
            return
        conv = self.channel if self.channel is not None else NO_CHANNEL
        query = select(*[func.sum(case((and_(FirstContribution.day >= p.start, FirstContribution.day <= p.end), 1),
                                       else_=0)) for p in wanted]).where(
            FirstContribution.conversation_id == conv, FirstContribution.day >= min(p.start for p in wanted),
            FirstContribution.day <= max(p.end for p in wanted))
        if self.scope.kind in PROFILE_KINDS:
            query = query.join(Person, Person.id == FirstContribution.person_id).where(*self._in_scope())
        for p, n in zip(wanted, self.session.execute(query).one()):
            self._firsts[p] = int(n or 0)

    def _known_firsts(self) -> set[int]:
        """Of the people contributing on days not rolled up yet, those with a first day already."""
        if self._known is None:
            live, _ = self.live()
            conv = self.channel if self.channel is not None else NO_CHANNEL
            people = sorted({person for (_d, _c, person), c in live.items() if _contributed(c)})
            self._known = set()
            for chunk in range(0, len(people), 500):
                self._known.update(self.session.scalars(select(FirstContribution.person_id).where(
                    FirstContribution.conversation_id == conv, FirstContribution.person_id.in_(people[chunk:chunk + 500]))))
        return self._known

    def first_timers(self, period: Period, tally: "_Tally") -> int:
        """People whose first contribution in the scope (the channel, or the shared spaces) fell
        in the period; one contributing only on a day not rolled up yet, with no earlier first
        day, is a first-timer too."""
        self.prepare_firsts([period])
        live, _ = self.live()
        fresh = {person for (day, _c, person), c in live.items()
                 if period.start <= day <= period.end and person in tally.live_contributed and _contributed(c)}
        return self._firsts[period] + len(fresh - self._known_firsts())

    def _of_scope(self, model: Any, person_column: Any) -> list[ColumnElement[bool]]:
        if self.channel is not None:
            return [model.conversation_id == self.channel]
        where = [or_(model.conversation_id.is_(None), model.conversation_id.in_(
            select(Conversation.id).where(Conversation.kind.in_(SHARED_KINDS))))]
        if self.scope.kind in PROFILE_KINDS:
            where.append(person_column.in_(select(Person.id).where(*self._in_scope())))
        return where

    def help(self, period: Period) -> tuple[int, int, int, list[timedelta]]:
        if self._help is None:
            lo, hi = _bounds(self.span.start, self.span.end)
            self._help = list(self.session.execute(
                select(HelpRequest.asker_id, HelpRequest.created_at, HelpRequest.answered_at, HelpRequest.resolved_at,
                       HelpRequest.helper_id)
                .where(HelpRequest.created_at >= lo, HelpRequest.created_at < hi,
                       *self._of_scope(HelpRequest, HelpRequest.asker_id))).all())
        lo, hi = _bounds(period.start, period.end)
        asked = answered = 0
        waits: list[timedelta] = []
        for asker, created, answered_at, resolved_at, helper in self._help:
            if not lo <= created < hi:
                continue
            asked += 1
            first = answered_at or (resolved_at if helper is not None and helper != asker else None)
            if first is not None:
                answered += 1
                waits.append(max(first - created, timedelta(0)))
        return asked, answered, asked - answered, waits

    def ideas_forward(self, period: Period) -> int:
        if self._ideas is None:
            lo, hi = _bounds(self.span.start, self.span.end)
            self._ideas = list(self.session.execute(
                select(Idea.author_id, Idea.updated_at).where(
                    Idea.status.in_(FORWARD_STATUSES), Idea.updated_at >= lo, Idea.updated_at < hi,
                    *self._of_scope(Idea, Idea.author_id))).all())
        lo, hi = _bounds(period.start, period.end)
        return sum(1 for _author, at in self._ideas if lo <= at < hi)

    def figures(self, period: Period, minimum: int, tally: "_Tally") -> tuple[Figures, dict[str, int]]:
        """The period's Figures and the member counts per label (`tally`: its `tallies`)."""
        counts = self.member_counts(period.end)
        n_members = sum(counts.values())
        if 0 < n_members < minimum:  # a small group's activity would be one person's: nothing at all
            return Figures(period=period, members=None, contributors=None, reactors_only=None, silent=None,
                           rate=None, first_timers=None, too_small=True), counts
        # who contributed and is no member any more (left, or forgotten: their counts stay, unnamed)
        outsiders = tally.outsiders if self.scope.kind in ("channel", "all") else 0
        first = self.first_timers(period, tally)
        asked, answered, unanswered, waits = self.help(period)
        return _make_figures(period, minimum, n_members, tally.contributors, tally.reactors, outsiders, first,
                             tally.totals, (asked, answered, unanswered, waits), self.ideas_forward(period)), counts


def _make_figures(period: Period, minimum: int, n_members: int, contributors: int, reactors: int, outsiders: int,
                  first: int, totals: dict[str, int], help_figures: tuple[int, int, int, list[timedelta]],
                  ideas_forward: int) -> Figures:
    """Figures from raw counts, suppressed (see the module docstring). `contributors` and
    `reactors` are members; `outsiders` contributed without being members any more."""
    if 0 < n_members < minimum:
        return Figures(period=period, members=None, contributors=None, reactors_only=None, silent=None,
                       rate=None, first_timers=None, too_small=True)
    silent = max(n_members - contributors - reactors, 0)
    cells, complement = _suppress([contributors, reactors, silent], minimum)
    if cells[0] is not None:
        cells[0] = _hide(contributors + outsiders, minimum)
    withheld = tuple(("contributors", "reactors_only", "silent")[i] for i in sorted(complement))
    asked, answered, unanswered, waits = help_figures
    t = totals
    return Figures(
        period=period, members=n_members, contributors=cells[0], reactors_only=cells[1], silent=cells[2],
        rate=_rate(cells[0], n_members), first_timers=_hide(first, minimum), posts=t["posts"], replies=t["replies"],
        reactions=t["reactions"], ideas=t["ideas"], ideas_forward=ideas_forward, votes=t["votes"],
        kudos=t["kudos_given"], help_asked=asked, help_answered=answered, help_unanswered=unanswered,
        reply_median=statistics.median_low(waits) if waits else None, reply_slowest=max(waits) if waits else None,
        withheld=withheld,
    )


@dataclass(frozen=True)
class _Who:
    """An active person as the scope sees them: breakdown label, since when a member (join
    date for a channel, first sight otherwise), whether they are one at all (active, not a bot,
    in the channel or the part of the organisation)."""

    label: str | None
    since: datetime | None
    member: bool

    def member_by(self, bound: datetime) -> bool:
        return self.member and (self.since is None or self.since < bound)


def _with_readers(session: Session, conversation_id: int, f: Figures, minimum: int) -> Figures:
    since = datetime.combine(f.period.start, time.min, tzinfo=timezone.utc)
    until = datetime.combine(f.period.end + timedelta(days=1), time.min, tzinfo=timezone.utc)
    n = readers.member_readers(session, conversation_id, since, until, counts_as_member())
    return replace(f, readers=None if f.members is None else _hide(n, minimum), readers_measured=True)


def _hide(value: int, minimum: int) -> int | None:
    return None if 0 < value < minimum else value


def suppress_partition(values: Sequence[int], minimum: int) -> list[int | None]:
    """Cells of a partition whose total is shown: cells of 1..minimum-1 people become None, and
    while a single cell is hidden, or the hidden cells hold fewer than `minimum` people, the
    smallest shown non-zero cell is hidden too (so no subtraction gives a small group back)."""
    return _suppress(values, minimum)[0]


def _suppress(values: Sequence[int], minimum: int) -> tuple[list[int | None], set[int]]:
    """`suppress_partition` and the indexes hidden only as complements (not small themselves)."""
    small = {i for i, v in enumerate(values) if 0 < v < minimum}
    hidden = set(small)
    while hidden and (len(hidden) == 1 or sum(values[i] for i in hidden) < minimum):
        shown = [i for i, v in enumerate(values) if i not in hidden and v > 0]
        if not shown:
            break
        hidden.add(min(shown, key=lambda i: (values[i], i)))
    return [None if i in hidden else v for i, v in enumerate(values)], hidden - small


def _rate(contributors: int | None, members: int | None) -> float | None:
    if contributors is None or not members:
        return None
    return min(contributors / members, 1.0)


def _breakdown(counts: dict[str, int], active: dict[str, int], minimum: int) -> tuple[BreakdownRow, ...]:
    """Members and contributors per label (a partition of the members), suppressed both ways."""
    labels = sorted(counts, key=lambda g: (-counts[g], g.casefold()))
    sizes = [counts[g] for g in labels]
    shown_sizes, sizes_complement = _suppress(sizes, minimum)
    shown_active, active_complement = _suppress(
        [active.get(g, 0) if s is not None else 0 for g, s in zip(labels, shown_sizes)], minimum)
    rows = []
    for i, (label, size, act) in enumerate(zip(labels, shown_sizes, shown_active)):
        if size is None:
            act = None
        withheld = tuple(name for name, where in (("members", sizes_complement), ("contributors", active_complement))
                         if i in where)
        rows.append(BreakdownRow(label, size, act, _rate(act, size), withheld))
    return tuple(rows)


def _threads(session: Session, conversation_id: int, period: Period, limit: int = 3) -> tuple[Thread, ...]:
    return _threads_of(session, conversation_id, [period], limit)[period]


def _threads_of(session: Session, conversation_id: int, periods: Sequence[Period],
                limit: int = 3) -> dict[Period, tuple[Thread, ...]]:
    """The busiest threads (most replies) of each period, from one grouped read of the
    channel's replies over the longest span and one read of their roots."""
    periods = list(dict.fromkeys(periods))
    if not periods:
        return {}
    lo, hi = _bounds(min(p.start for p in periods), max(p.end for p in periods))
    reply = and_(Message.thread_external_id.is_not(None), Message.thread_external_id != Message.external_id)
    counts = [func.sum(case((and_(Message.sent_at >= a, Message.sent_at < b), 1), else_=0))
              for a, b in (_bounds(p.start, p.end) for p in periods)]
    rows = list(session.execute(
        select(Message.thread_external_id, *counts).where(
            Message.conversation_id == conversation_id, Message.sent_at >= lo, Message.sent_at < hi, reply)
        .group_by(Message.thread_external_id)))
    top: dict[Period, list[tuple[str, int]]] = {}
    for i, p in enumerate(periods):
        ranked = sorted(((thread, int(n[i] or 0)) for thread, *n in rows if n[i]), key=lambda t: (-t[1], t[0]))
        top[p] = ranked[:limit]
    wanted = sorted({thread for found in top.values() for thread, _ in found})
    roots = {m.external_id: m for m in session.scalars(select(Message).where(
        Message.conversation_id == conversation_id, Message.external_id.in_(wanted)))} if wanted else {}
    out: dict[Period, tuple[Thread, ...]] = {}
    for p, found in top.items():
        threads = []
        for thread_id, n in found:
            root = roots.get(thread_id)
            if root is None or root.deleted:
                continue  # the root is gone (deleted, forgotten author, retention): nothing to name
            title = (root.text or "").strip().splitlines()[0][:80] if (root.text or "").strip() else ""
            threads.append(Thread(conversation_id, title, n, root.permalink))
        out[p] = tuple(threads)
    return out


def period_ending(end: date, days: int) -> Period:
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(days)
    return Period(end - timedelta(days=days - 1), end)


def _no_jit(session: Session) -> None:
    """PostgreSQL: no JIT compilation for the rest of this transaction. An organisation
    report's grouped scan costs past the JIT threshold, and compiling it (≈ 0.3 s at 100,000
    people) costs more than it saves on a query run once; SQLite: nothing."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def report(session: Session, viewer: Viewer, scope: Scope, end: date, days: int) -> ScopeReport | None:
    """`scope`'s figures for the `days` UTC days ending with `end` (included) and the period
    before, suppressed; None when `viewer` may not read it (`may_read`). `end` is normally
    today (UTC): what is not rolled up yet is computed live. For "me" use `my_activity`."""
    found = reports(session, viewer, scope, end, (days,))
    return found[0] if found is not None else None


def reports(session: Session, viewer: Viewer, scope: Scope, end: date,
            periods: Sequence[int] = (7, 28)) -> list[ScopeReport] | None:
    """`report` for several period lengths at once (`stats #sales` shows 7 and 28 days), each
    table read once for the longest span; None when `viewer` may not read the scope."""
    if scope.kind == "me" or scope.kind not in SCOPE_KINDS:
        raise ValueError(scope.kind)
    if not may_read(session, viewer, scope):
        return None
    if scope.kind != "channel":
        _no_jit(session)
    minimum = min_group(session)
    longest = max(periods)
    reader = _Reader(session, scope, Period(end - timedelta(days=2 * longest - 1), end), end)
    label, kind = "", None
    if scope.kind == "channel":
        conv = session.get(Conversation, int(scope.value))  # type: ignore[arg-type]
        label, kind = (conv.name if conv else ""), (conv.kind if conv else None)
    elif scope.kind != "all":
        label = str(scope.value)
    by = {"channel": "department", "department": "site", "site": "department", "language": "department",
          "all": "department"}[scope.kind]
    reader.prepare_counts([end, *(end - timedelta(days=d) for d in periods)])
    spans = [p for days in periods for p in (period_ending(end, days), period_ending(end, days).before())]
    tallies = dict(zip(spans, reader.tallies(spans)))
    reader.prepare_firsts(spans)
    out = []
    figures = {days: reader.figures(period_ending(end, days), minimum, tallies[period_ending(end, days)])
               for days in periods}
    shown = [period_ending(end, days) for days in periods if not figures[days][0].too_small]
    threads_of = _threads_of(session, int(scope.value), shown) if scope.kind == "channel" else {}  # type: ignore[arg-type]
    read_measured = scope.kind == "channel" and readers.measured(session, int(scope.value))  # type: ignore[arg-type]
    for days in periods:
        period = period_ending(end, days)
        current, members = figures[days]
        previous, _ = reader.figures(period.before(), minimum, tallies[period.before()])
        threads = threads_of.get(period, ())
        if read_measured:
            current, previous = (_with_readers(session, int(scope.value), f, minimum)  # type: ignore[arg-type]
                                 for f in (current, previous))
        rows = _breakdown(members, tallies[period].active, minimum) if current.members is not None else ()
        out.append(ScopeReport(scope, label, current, previous, minimum, by, rows, threads, kind))
    return out


def weekly_series(session: Session, viewer: Viewer, scope: Scope, end: date, weeks: int = 12) -> list[WeekPoint]:
    """Contributors, members and rate per week (Monday to Sunday, UTC), oldest first, the last
    week being the one holding `end` (up to `end`). Suppressed like the report; [] when
    `viewer` may not read the scope."""
    if scope.kind == "me" or scope.kind not in SCOPE_KINDS or not may_read(session, viewer, scope):
        return []
    if scope.kind != "channel":
        _no_jit(session)
    minimum = min_group(session)
    last_monday = end - timedelta(days=end.weekday())
    first_monday = last_monday - timedelta(weeks=weeks - 1)
    reader = _Reader(session, scope, Period(first_monday, end), end)
    reader.prepare_counts(min(first_monday + timedelta(weeks=i, days=6), end) for i in range(weeks))
    spans = [Period(first_monday + timedelta(weeks=i), min(first_monday + timedelta(weeks=i, days=6), end))
             for i in range(weeks)]
    tallies = reader.tallies(spans, contributors_only=True)  # contributors who are members by each week's end
    points = []
    for (start, stop), tally in zip(((p.start, p.end) for p in spans), tallies):
        n = sum(reader.member_counts(stop).values())  # a channel's by join date; profiles: as first seen
        contributors = tally.contributors
        if 0 < n < minimum:
            points.append(WeekPoint(start, None, None, None))
            continue
        shown = _hide(contributors, minimum)
        points.append(WeekPoint(start, shown, n, _rate(shown, n)))
    return points


def my_activity(session: Session, viewer: Viewer, end: date, days: int) -> MyActivity:
    """The viewer's own counts for the period and the one before (every conversation they
    contributed in, private ones included: it is their own activity)."""
    since = date.min  # history backfilled from before the person was first seen counts too
    period = period_ending(end, days)

    def counts(p: Period) -> tuple[dict[str, int], set[int]]:
        out = dict.fromkeys(KINDS, 0)
        convs: set[int] = set()
        start = max(p.start, since)
        rolled = set(session.scalars(select(RollupDay.day).where(RollupDay.day >= p.start, RollupDay.day <= p.end)))
        for row in session.scalars(select(ActivityDay).where(ActivityDay.person_id == viewer.person_id,
                                                             ActivityDay.day >= start, ActivityDay.day <= p.end)):
            for k in KINDS:
                out[k] += getattr(row, k)
            if _contributed(row):
                convs.add(row.conversation_id)
        missing = [d for d in (p.start + timedelta(days=i) for i in range(p.days)) if d not in rolled and d <= end and d >= since]
        if missing:
            for (day, conv, person), c in _compute(session, min(missing), max(missing)).items():
                if person != viewer.person_id or day in rolled:
                    continue
                for k in KINDS:
                    out[k] += c[k]
                if _contributed(c):
                    convs.add(conv)
        return out, convs - {NO_CHANNEL}

    now_counts, convs = counts(period)
    before, _ = counts(period.before())
    first = session.scalar(select(FirstContribution.day).where(FirstContribution.person_id == viewer.person_id,
                                                               FirstContribution.conversation_id == NO_CHANNEL,
                                                               FirstContribution.day >= since))
    return MyActivity(period, now_counts, before, len(convs), first)


def dormant_channels(session: Session, viewer: Viewer, today: date) -> list[DormantChannel] | None:
    """Public channels with no post or reply for 30 days or more (most idle first), for admins
    (None for anyone else). Private channels are never listed."""
    if not viewer.admin:
        return None
    last = dict(session.execute(
        select(ActivityDay.conversation_id, func.max(ActivityDay.day))
        .where(or_(ActivityDay.posts > 0, ActivityDay.replies > 0)).group_by(ActivityDay.conversation_id)).all())
    recent = today - timedelta(days=DORMANT_STEPS[0])
    lo, _ = _bounds(recent, recent)
    for conv, sent in session.execute(select(Message.conversation_id, func.max(Message.sent_at))
                                      .where(Message.sent_at >= lo).group_by(Message.conversation_id)):
        last[conv] = max(last.get(conv, date.min), _day(sent))
    members = dict(session.execute(
        select(ConversationMember.conversation_id, func.count(ConversationMember.id))
        .join(Person, Person.id == ConversationMember.person_id).where(counts_as_member())
        .group_by(ConversationMember.conversation_id)).all())
    out = []
    for conv in session.scalars(select(Conversation).where(Conversation.kind == "public")):
        seen = last.get(conv.id)
        reference = seen or _day(conv.created_at)
        idle = (today - reference).days
        if idle >= DORMANT_STEPS[0]:
            out.append(DormantChannel(conv.id, conv.name, seen, idle, int(members.get(conv.id, conv.member_count))))
    return sorted(out, key=lambda d: (-d.idle_days, d.name.casefold()))


EXPORT_COLUMNS = ("scope", "name", "period_start", "period_end", "members", "contributors", "reactors_only", "silent",
                  "participation_rate", "first_time_contributors", "posts", "replies", "reactions", "ideas",
                  "ideas_moved_forward", "votes", "kudos", "help_requests", "help_answered", "help_unanswered",
                  "median_first_reply_hours")


def export_rows(session: Session, viewer: Viewer, end: date, days: int) -> list[dict[str, object]] | None:
    """Aggregated figures (never a row per person) for the organisation, each department, site
    and language, and each public channel, over the `days` ending with `end`; suppressed cells
    read "<N". Admins only (None otherwise)."""
    if not may_read(session, viewer, Scope("all")):
        return None
    minimum = min_group(session)
    scopes: list[tuple[Scope, str]] = [(Scope("all"), "")]
    for kind in PROFILE_KINDS:
        scopes += [(Scope(kind, v), v) for v in profile_values(session, kind)]
    period = period_ending(end, days)
    figures = [(scope, name, _reader_figures(_Reader(session, scope, period, end), period, minimum)) for scope, name in scopes]
    channels = _public_channel_figures(session, period, end, minimum)
    names = dict(session.execute(select(Conversation.id, Conversation.name).where(Conversation.kind == "public")).all())
    figures += sorted(((Scope("channel", cid), names.get(cid, ""), fig) for cid, fig in channels.items()),
                      key=lambda item: (item[1].casefold(), item[0].value))
    out = []
    for scope, name, fig in figures:
        if scope.kind == "channel" and not fig.active and not fig.members:
            continue

        def cell(v: int | None, field: str = "") -> object:
            return ("withheld" if field in fig.withheld else f"<{minimum}") if v is None else v

        out.append({
            "scope": scope.kind, "name": name, "period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
            "members": cell(fig.members), "contributors": cell(fig.contributors, "contributors"),
            "reactors_only": cell(fig.reactors_only, "reactors_only"), "silent": cell(fig.silent, "silent"), "participation_rate": "" if fig.rate is None else round(fig.rate * 100, 1),
            "first_time_contributors": cell(fig.first_timers), "posts": fig.posts, "replies": fig.replies,
            "reactions": fig.reactions, "ideas": fig.ideas, "ideas_moved_forward": fig.ideas_forward, "votes": fig.votes,
            "kudos": fig.kudos, "help_requests": fig.help_asked, "help_answered": fig.help_answered,
            "help_unanswered": fig.help_unanswered,
            "median_first_reply_hours": "" if fig.reply_median is None else round(fig.reply_median.total_seconds() / 3600, 1),
        })
    return out


def _reader_figures(reader: "_Reader", period: Period, minimum: int) -> Figures:
    return reader.figures(period, minimum, reader.tallies([period])[0])[0]


def _public_channel_figures(session: Session, period: Period, today: date, minimum: int) -> dict[int, Figures]:
    """Every public channel's figures for one period in a few grouped queries (the export):
    the same numbers and suppression as a channel report, without reading channel by channel."""
    public = select(Conversation.id).where(Conversation.kind == "public")
    bound = _bounds(period.end, period.end)[1]
    lo, hi = _bounds(period.start, period.end)
    is_member = and_(counts_as_member(), ConversationMember.id.is_not(None),
                     ConversationMember.joined_at < bound)
    members = dict(session.execute(
        select(ConversationMember.conversation_id, func.count(ConversationMember.id))
        .join(Person, Person.id == ConversationMember.person_id)
        .where(ConversationMember.conversation_id.in_(public), ConversationMember.joined_at < bound,
               counts_as_member())
        .group_by(ConversationMember.conversation_id)).all())
    pairs: dict[tuple[int, int], list[int]] = {}
    member_pairs: set[tuple[int, int]] = set()
    member_flag = case((is_member, 1), else_=0)  # one object in SELECT and GROUP BY (PostgreSQL compares them)
    query = (select(ActivityDay.conversation_id, ActivityDay.person_id, member_flag,
                    *[func.sum(getattr(ActivityDay, k)) for k in KINDS])
             .outerjoin(Person, Person.id == ActivityDay.person_id)
             .outerjoin(ConversationMember, and_(ConversationMember.person_id == ActivityDay.person_id,
                                                 ConversationMember.conversation_id == ActivityDay.conversation_id))
             .where(ActivityDay.day >= period.start, ActivityDay.day <= period.end, ActivityDay.conversation_id.in_(public))
             .group_by(ActivityDay.conversation_id, ActivityDay.person_id, member_flag))
    for conv, person, member, *sums in session.execute(query):
        pairs[(conv, person)] = [int(v or 0) for v in sums]
        if member:
            member_pairs.add((conv, person))
    rolled = set(session.scalars(select(RollupDay.day).where(RollupDay.day >= period.start, RollupDay.day <= period.end)))
    missing = [d for d in (period.start + timedelta(days=i) for i in range(period.days)) if d not in rolled and d <= today]
    public_ids = set(session.scalars(public))
    live_pairs: set[tuple[int, int]] = set()
    if missing:
        for (day, conv, person), counts in _compute(session, min(missing), max(missing)).items():
            if day in rolled or conv not in public_ids:
                continue
            row = pairs.setdefault((conv, person), [0] * len(KINDS))
            for i, k in enumerate(KINDS):
                row[i] += counts[k]
            live_pairs.add((conv, person))
        people = sorted({p for _, p in live_pairs})
        for chunk in range(0, len(people), 500):
            for conv, person in session.execute(
                    select(ConversationMember.conversation_id, ConversationMember.person_id)
                    .join(Person, Person.id == ConversationMember.person_id)
                    .where(ConversationMember.person_id.in_(people[chunk:chunk + 500]), ConversationMember.joined_at < bound,
                           counts_as_member())):
                member_pairs.add((conv, person))
    firsts = dict(session.execute(
        select(FirstContribution.conversation_id, func.count(FirstContribution.id))
        .where(FirstContribution.conversation_id.in_(public), FirstContribution.day >= period.start,
               FirstContribution.day <= period.end).group_by(FirstContribution.conversation_id)).all())
    fresh = {(c, p) for c, p in live_pairs if any(pairs[(c, p)][KINDS.index(k)] for k in CONTRIBUTING)}
    if fresh:  # contributing today with no first day yet: a first-timer too
        known: set[tuple[int, int]] = set()
        people = sorted({p for _, p in fresh})
        for chunk in range(0, len(people), 500):
            known.update(session.execute(select(FirstContribution.conversation_id, FirstContribution.person_id).where(
                FirstContribution.person_id.in_(people[chunk:chunk + 500]), FirstContribution.conversation_id != NO_CHANNEL)).all())
        for conv, _person in fresh - known:
            firsts[conv] = firsts.get(conv, 0) + 1
    help_rows: dict[int, list[tuple[int, datetime, datetime | None, datetime | None, int | None]]] = defaultdict(list)
    for conv, *row in session.execute(
            select(HelpRequest.conversation_id, HelpRequest.asker_id, HelpRequest.created_at, HelpRequest.answered_at,
                   HelpRequest.resolved_at, HelpRequest.helper_id)
            .where(HelpRequest.created_at >= lo, HelpRequest.created_at < hi, HelpRequest.conversation_id.in_(public))):
        help_rows[conv].append(tuple(row))  # type: ignore[arg-type]
    forward = dict(session.execute(
        select(Idea.conversation_id, func.count(Idea.id))
        .where(Idea.status.in_(FORWARD_STATUSES), Idea.updated_at >= lo, Idea.updated_at < hi,
               Idea.conversation_id.in_(public)).group_by(Idea.conversation_id)).all())
    per_conv: dict[int, dict[str, Any]] = defaultdict(lambda: {"c": 0, "r": 0, "o": 0, "t": dict.fromkeys(KINDS, 0)})
    for (conv, person), sums in pairs.items():
        acc = per_conv[conv]
        by_kind = dict(zip(KINDS, sums))
        member = (conv, person) in member_pairs
        contributed = any(by_kind[k] for k in CONTRIBUTING)
        if contributed:
            acc["c" if member else "o"] += 1
        elif member and any(by_kind[k] for k in REACTING):
            acc["r"] += 1
        for k in KINDS:
            acc["t"][k] += by_kind[k]
    out = {}
    for conv in set(members) | set(per_conv):
        acc = per_conv[conv]
        asked = answered = 0
        waits: list[timedelta] = []
        for asker, created, answered_at, resolved_at, helper in help_rows.get(conv, []):
            asked += 1
            first = answered_at or (resolved_at if helper is not None and helper != asker else None)
            if first is not None:
                answered += 1
                waits.append(max(first - created, timedelta(0)))
        out[conv] = _make_figures(period, minimum, int(members.get(conv, 0)), acc["c"], acc["r"], acc["o"],
                                  int(firsts.get(conv, 0)), acc["t"], (asked, answered, asked - answered, waits),
                                  int(forward.get(conv, 0)))
    return out


def record_reaction(session: Session, tenant: str, conversation_id: int, message_external_id: str, person_id: int,
                    day: date, now: datetime) -> None:
    """Remember that `person_id` reacted to a message on `day` (once per message and person)."""
    insert_ignore(session, MessageReaction, {"tenant": tenant, "conversation_id": conversation_id,
                                             "message_external_id": message_external_id[:200],
                                             "person_id": person_id, "day": day, "created_at": now})


__all__ = [
    "Scope", "Viewer", "ScopeNotFound", "Period", "Figures", "BreakdownRow", "Thread", "ScopeReport", "WeekPoint",
    "MyActivity", "DormantChannel", "min_group", "set_min_group", "may_read", "readable_scopes", "who_may_read",
    "resolve_scope", "resolve_channel_name", "profile_values", "rollup_day", "pending_days", "is_rolled",
    "report", "reports", "weekly_series", "my_activity", "dormant_channels", "export_rows", "EXPORT_COLUMNS",
    "suppress_partition", "period_ending", "record_reaction", "counts_as_member", "SCOPE_KINDS", "MAX_DAYS", "REFERENCE_RATE",
]
