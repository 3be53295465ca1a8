"""Fresh skills: a declared skill neither confirmed nor backed by evidence for
`settings.skill_stale_days` gets its owner one "still true?" ping (Confirm / Remove), within
their notification budget. `PersonSkill.reminded_at` is claimed with a conditional update,
so several processes send it once; confirming resets it for the next cycle.

Reminders are staggered: a new workspace (or one whose skills all went stale at once) would
otherwise ping everyone at the first run. Each person has a day in a `SPREAD_DAYS` cycle
(their id modulo the cycle, the same in every process) and is reminded only on that day; a
run reminds at most `MAX_PEOPLE_PER_RUN` people per workspace, the others waiting for the
next hourly run. So over one cycle everyone stale is reminded exactly once, a few a day."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, exists, func, select, update

from bot.context import Ctx, JobCtx, UserError
from handlers.expertise.lookup import track_changes
from handlers.notifications.budget import notify
from bot.registry import CommandSpec, Job, Registry
from bot.text import norm_key, norm_token
from bot.words import parse_switch
from bot.types import Action, Effect, IncomingMessage, Reply
from store.expertise import add_skills, person_skills, remove_skills
from store.models.core import Evidence, Person, PersonSkill, Skill, Workspace

BATCH = 200
SPREAD_DAYS = 14
MAX_PEOPLE_PER_RUN = 5
MAX_REMOVE_BUTTONS = 4  # plus "confirm all": the five buttons a notification carries
# The reminder's own answers, beside every yes/no word of prompts/*/words.yaml.
CONFIRM = {"confirm", "confirmer", "still"}
REMOVE = {"remove", "retirer", "supprimer"}


def _answer(word: str) -> bool | None:
    token = norm_token(word)
    if token in CONFIRM:
        return True
    if token in REMOVE:
        return False
    return parse_switch(word)


def reminder_day(person_id: int) -> int:
    """The day of the `SPREAD_DAYS` cycle on which this person's stale skills are reminded."""
    return person_id % SPREAD_DAYS


def today_in_cycle(now: datetime) -> int:
    return now.astimezone(timezone.utc).date().toordinal() % SPREAD_DAYS


def stale_links(jctx: JobCtx) -> list[tuple[str, int, int]]:
    """(tenant, person id, PersonSkill id) of stale, not yet reminded skills of active people
    whose reminder day is today."""
    cutoff = jctx.now - timedelta(days=jctx.services.settings.skill_stale_days)
    recent_evidence = exists(
        select(Evidence.id).where(
            and_(Evidence.person_id == PersonSkill.person_id, Evidence.topic_key == func.replace(Skill.key, " ", ""),
                 Evidence.occurred_at >= cutoff)
        )
    )
    query = (
        select(PersonSkill.tenant, PersonSkill.person_id, PersonSkill.id)
        .join(Skill, Skill.id == PersonSkill.skill_id)
        .join(Person, Person.id == PersonSkill.person_id)
        .where(PersonSkill.confirmed_at < cutoff, PersonSkill.reminded_at.is_(None), Person.active, Person.is_bot.is_(False),
               ~recent_evidence, PersonSkill.person_id % SPREAD_DAYS == today_in_cycle(jctx.now))
        .order_by(PersonSkill.confirmed_at, PersonSkill.id)
        .limit(BATCH)
    )
    return [(tenant, person_id, link_id) for tenant, person_id, link_id in jctx.session.execute(query)]


def remind(jctx: JobCtx) -> list[Effect]:
    """One ping per person for all their newly stale skills (buttons fit in one message), to at
    most `MAX_PEOPLE_PER_RUN` people per workspace, those stale the longest first."""
    by_tenant: dict[str, dict[int, list[int]]] = defaultdict(dict)
    for tenant, person_id, link_id in stale_links(jctx):
        people = by_tenant[tenant]
        if person_id in people or len(people) < MAX_PEOPLE_PER_RUN:
            people.setdefault(person_id, []).append(link_id)
    effects: list[Effect] = []
    for tenant, people in by_tenant.items():
        ids = [link_id for links in people.values() for link_id in links]
        with jctx.services.db.session(tenant) as session:
            workspace = session.get(Workspace, tenant)
            if workspace is None:
                continue
            stale: dict[int, list[tuple[PersonSkill, Skill]]] = defaultdict(list)
            for link_id in ids:
                claimed = session.execute(
                    update(PersonSkill).where(PersonSkill.id == link_id, PersonSkill.reminded_at.is_(None))
                    .values(reminded_at=jctx.now).execution_options(synchronize_session=False)
                ).rowcount == 1
                link = session.get(PersonSkill, link_id) if claimed else None
                skill = session.get(Skill, link.skill_id) if link else None
                if link is not None and skill is not None:
                    stale[link.person_id].append((link, skill))
            for person_id, items in stale.items():
                person = session.get(Person, person_id)
                if person is not None:
                    effects += _ask(jctx.acting_as(session, workspace, person), person, items)
    return effects


def _ask(ctx: Ctx, person: Person, items: list[tuple[PersonSkill, Skill]]) -> list[Effect]:
    names = [skill.name for _, skill in items]
    since = min(link.confirmed_at for link, _ in items).date().isoformat()
    thread_key = "fresh:" + ",".join(f"{link.id}@{link.confirmed_at.date().isoformat()}" for link, _ in items)
    if len(names) == 1:
        actions = (Action("fresh.button.confirm", f"skill still {names[0]} yes", "primary"),
                   Action("fresh.button.remove", f"skill still {names[0]} no", "danger"))
        return notify(ctx, person, "fresh.still_true", params={"skill": names[0], "since": since},
                      thread_key=thread_key[:300], actions=actions)
    removes = tuple(Action(ctx.t_for(person, "fresh.button.remove_one", skill=name), f"skill still {name} no", "danger")
                    for name in names[:MAX_REMOVE_BUTTONS])
    actions = (Action("fresh.button.confirm_all", f"skill still {', '.join(names)} yes", "primary"), *removes)
    return notify(ctx, person, "fresh.still_true_many", params={"skills": ", ".join(names), "since": since},
                  thread_key=thread_key[:300], actions=actions)


def still_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    """`skill still <skill>[, <skill>…] yes|no`: the Confirm / Remove buttons of the reminder."""
    words = args.split()
    answer = _answer(words[-1]) if words else None
    if len(words) < 2 or answer is None:
        raise UserError("fresh.usage_error", usage=ctx.t("fresh.usage"))
    asked = [n.strip() for n in " ".join(words[:-1]).split(",") if n.strip()]
    declared = {norm_key(skill.name): skill.name for skill, _ in person_skills(ctx.session, ctx.actor)}
    unknown = [n for n in asked if norm_key(n) not in declared]
    if unknown or not asked:
        raise UserError("fresh.not_declared", skill=", ".join(unknown)[:120] or "…")
    labels = list(dict.fromkeys(declared[norm_key(n)] for n in asked))
    if answer:
        add_skills(ctx.session, ctx.tenant, ctx.actor, labels, ctx.now())
        track_changes(ctx)
        return ctx.reply("fresh.confirmed", private=True, skill=", ".join(labels))
    remove_skills(ctx.session, ctx.tenant, ctx.actor, labels)
    track_changes(ctx)
    return ctx.reply("fresh.removed", private=True, skill=", ".join(labels))


def register(r: Registry) -> None:
    r.command(CommandSpec("skill still", "compétence toujours", still_command, "fresh.help", "fresh.usage",
                          aliases=("competence toujours",), group="people", hidden=True, needs_args=True))
    r.job(Job("fresh.still_true", timedelta(hours=1), remind))
