"""A digest's content as a neutral Card, sized for every platform.

Limits we stay inside (../shared/FACTS.md): Slack Block Kit 50 blocks per message and
3,000 characters per section text; Teams Adaptive Cards under 28 KB. A digest has at most
7 sections of at most 5 lines (each message quoted in at most 160 characters), each section
body is cut below 2,800 characters and the whole card below 12,000 characters, so even
French text with long links renders as about 20 blocks and well under 28 KB.
"""
from __future__ import annotations

from handlers.digests.content import Content
from handlers.digests.sources import Entry
from bot.i18n import Prompts
from bot.types import Card, Reply

SECTION_CHARS = 2800
CARD_CHARS = 12000
MAX_SECTIONS = 7


def _line(prompts: Prompts, locale: str, section: str, entry: Entry) -> str:
    t = prompts.t
    link = f" → {entry.link}" if entry.link else ""
    if section == "newcomers":
        if entry.detail:
            return t(locale, "digest.line.newcomer", name=entry.text, skills=entry.detail)
        return t(locale, "digest.line.newcomer_no_skills", name=entry.text)
    if entry.replies is not None:
        return t(locale, "digest.line.discussion", text=entry.text, author=entry.author, replies=entry.replies,
                 reactions=entry.reactions or 0, link=link)
    if entry.votes is not None:
        author = entry.author or t(locale, "digest.anonymous")
        return t(locale, "digest.line.idea", text=entry.text, author=author, votes=entry.votes, link=link)
    if section in ("followed", "mentions"):
        return t(locale, "digest.line.personal", text=entry.text, author=entry.author, channel=entry.detail, link=link)
    if section == "kudos":
        return t(locale, "digest.line.kudos", giver=entry.author, recipient=entry.detail, text=entry.text)
    if section == "help":
        return t(locale, "digest.line.help", text=entry.text, author=entry.author, link=link)
    return t(locale, "digest.line.plain", text=entry.text, author=entry.author, link=link)


def _fit(lines: list[str], budget: int) -> str:
    """Whole lines only, as many as fit in `budget` characters."""
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept)


def sections_of(prompts: Prompts, locale: str, content: Content) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    used = 0
    for name, entries in content.sections[:MAX_SECTIONS]:
        if not entries:
            continue
        heading = prompts.t(locale, f"digest.section.{name}")
        body = _fit([_line(prompts, locale, name, e) for e in entries], min(SECTION_CHARS, CARD_CHARS - used - len(heading)))
        if not body:
            break
        used += len(heading) + len(body)
        out.append((heading, body))
    return tuple(out)


def participation(prompts: Prompts, locale: str, content: Content, frequency: str) -> str:
    period = prompts.t(locale, f"digest.period.{frequency}")
    if content.contributors <= 0:
        return ""
    if content.members <= 0:
        return prompts.t(locale, "digest.participation_no_members", count=content.contributors, period=period)
    percent = round(100 * content.contributors / max(content.members, content.contributors))
    return prompts.t(locale, "digest.participation", count=content.contributors, period=period, percent=percent)


def render_channel(prompts: Prompts, locale: str, content: Content, channel: str, frequency: str, command: str) -> Reply:
    title = prompts.t(locale, f"digest.title.{frequency}", channel=channel)
    sections = sections_of(prompts, locale, content)
    body = participation(prompts, locale, content, frequency)
    footer = prompts.t(locale, "digest.footer", command=command)
    items = sum(len(e) for _, e in content.sections)
    text = prompts.t(locale, "digest.post", title=title, count=items)
    return Reply(text=text, card=Card(title=title, body=body, sections=sections, footer=footer), key="digest.post",
                 params={"channel": channel, "count": items})


def render_personal(prompts: Prompts, locale: str, content: Content, name: str, frequency: str, command: str) -> Reply:
    title = prompts.t(locale, "digest.title.personal", name=name, period=prompts.t(locale, f"digest.period.{frequency}"))
    sections = sections_of(prompts, locale, content)
    footer = prompts.t(locale, "digest.footer_personal", command=command)
    items = sum(len(e) for _, e in content.sections)
    text = prompts.t(locale, "digest.personal", title=title, count=items)
    return Reply(text=text, card=Card(title=title, sections=sections, footer=footer), key="digest.personal",
                 params={"count": items})
