"""Every command example of README.md and docs/*.md, played through the console messenger
against the demo organisation (the one `python app.py console --demo` starts with).

What counts as an example:
- a fenced block with the info string `console`: console lines typed in order (`/as`, `/in`,
  `/dm`, `/clock`, `/causette …`, ordinary channel messages), starting as @sophie in #general;
- the lines of a `printf '…'` piped into the console in a `sh` block;
- an inline code span that starts with a command (optionally after `/causette ` or
  `@Causette `), outside fenced blocks, with nothing left to fill in: no `<…>`, `[…]`, `…`,
  `a|b` alternatives or placeholder names such as `@someone` or `#channel`. A command name
  alone (`merci`, `skills add`) is a name, not an example, when the command needs arguments
  (its spec says so, or it answers `error.missing_argument`).

Inline examples are typed by @sophie, the person the console starts as, in #general; the
commands reserved to animators and admins by @camille, the demo's admin (the README says
so). Each example runs in its own copy of the freshly seeded demo, at a fixed Monday.

An example fails when the bot answers with a refusal or an error (a key some handler raises
`UserError` with, or such as `error.*`, `*.unknown*`, `*.not_found`, `*_past`…), when a command gets no answer,
when the console says a person or channel is new (the demo has no such person or channel),
or when it writes an absolute date (it would be refused as past one day). An inline example
in a table's French column must use the French spelling of its command, and the English
column the English one. Relative links in the Markdown must point at files of the repository.
"""
from __future__ import annotations

import io
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from adapters.console.messenger import ConsoleMessenger
from adapters.console.seed import demo_history, seed_demo
from bot.clock import FixedClock
from bot.config import Settings
from bot.context import Services
from bot.core import Bot
from bot.i18n import Prompts
from bot.registry import CommandSpec, Registry
from bot.types import Effect, Outbound
from handlers import build_registry
from store.db import Database
from store.demo import DEMO_ADMIN, DEMO_TENANT
from tests.conftest import ROOT, START

DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
COMMAND = "/causette"
STARTING_PERSON = "sophie"

# Commands whose handler lets only animators, référents or admins through (admin-only ones
# say so in their spec): an inline example of these is typed by the demo's admin.
ROLE_COMMANDS = frozenset({
    "digest schedule", "digest preview", "digest pause", "digest resume", "digest delete", "digest run",
    "idea status", "idea campaign", "help channel", "index history", "stats",
})

# Every key a handler refuses with (`raise UserError("key", …)`), read from the sources, and
# the answers that refuse without raising (unknown commands, console notes, "you were not away").
REFUSALS = frozenset(
    key for source in (*sorted((ROOT / "handlers").rglob("*.py")), *sorted((ROOT / "bot").glob("*.py")))
    for key in re.findall(r'UserError\(\s*"([\w.]+)"', source.read_text(encoding="utf-8"))
)
_FAILURE = re.compile(
    r"^error\.|_error$|unknown|not_found|no_such|\.bad_|_past$|_required$|too_long|too_many|not_public"
    r"|which_channel|not_declared|_incomplete$|overlaps|daily_limit|allowance|already|not_allowed"
    r"|^kudos\.(self|bot|who)$|follow_what|^topic\.which$|^expert\.none|source_private|_not_asker$"
    r"|own_vote|own_take|status_(backwards|same|final)$|not_voted|not_following|not_subscribed"
    r"|nothing_to_remove|back_not_away|share_not_needed|missing_frequency|\.usage$|_usage$"
    r"|^console\.(new_person|new_channel|usage_\w+|no_button|no_form)$"
)
_ABSOLUTE_DATE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}(er)?\s+(janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre"
    r"|novembre|décembre|january|february|march|april|may|june|july|august|september|october|november|december)\b"
    r"|\b(january|february|march|april|june|july|august|september|october|november|december)\s+\d{1,2}\b",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(
    r"[<>\[\]…|]|\.\.\.|@(someone|quelqu'un|helper|handle)\b|#(channel|canal|topic|tag|hashtag|other-channel|sujet)\b",
    re.IGNORECASE,
)
_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^\s*(```|~~~)\s*([\w-]*)")


@dataclass(frozen=True)
class Example:
    where: str                 # "README.md:61"
    lines: tuple[str, ...]     # console lines, typed in order
    user: str = STARTING_PERSON
    language: str | None = None  # the table column's language, for inline examples

    @property
    def id(self) -> str:
        return f"{self.where} {' ⏎ '.join(self.lines)[:80]}"


def _cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]


def _column_language(header: str) -> str | None:
    name = re.sub(r"[`*]", "", header).strip().lower()
    if name in {"english", "command"}:
        return "en"
    if name in {"français", "french"}:
        return "fr"
    return None


def _inline(span: str, registry: Registry) -> tuple[str, CommandSpec] | None:
    """The command an inline code span shows, if it is a complete one."""
    text = span.replace("\\|", "|").strip()
    for prefix in (COMMAND + " ", "@causette "):
        if text.lower().startswith(prefix):
            text = text[len(prefix):].strip()
    if text.startswith("/") or _PLACEHOLDER.search(text):
        return None
    match = registry.match(text)
    if match is None or (match.spec.needs_args and not match.args):
        return None
    return text, match.spec


def _player(text: str, spec: CommandSpec, registry: Registry) -> str:
    args = registry.match(text).args.lower()  # type: ignore[union-attr]
    reserved = spec.permission == "admin" or spec.name in ROLE_COMMANDS
    return DEMO_ADMIN if reserved or (spec.name == "privacy" and args.startswith(("channel", "canal"))) else STARTING_PERSON


def _session(where: str, spans: list[str], registry: Registry, language: str | None) -> Example | None:
    """The complete commands among `spans` (one table cell, or one line of prose), typed in
    order in one session, each by the person allowed to (a `/as` line when that changes)."""
    lines: list[str] = []
    first = current = ""
    for span in spans:
        found = _inline(span, registry)
        if found is None:
            continue
        text, spec = found
        player = _player(text, spec, registry)
        if not first:
            first = current = player
        elif player != current:
            lines.append(f"/as {player}")
            current = player
        lines.append(f"{COMMAND} {text}")
    return Example(where, tuple(lines), first, language) if lines else None


def extract(path: Path, registry: Registry) -> Iterator[Example]:
    name = path.relative_to(ROOT).as_posix()
    fence: str | None = None
    block: list[str] = []
    block_start = 0
    header: list[str] = []
    previous = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and not opened.group(2):
                if fence == "console" and block:
                    yield Example(f"{name}:{block_start}", tuple(block))
                fence, block = None, []
            elif fence == "console" and line.strip():
                block.append(line.strip())
            elif fence in {"sh", "bash", "shell"}:
                for piped in re.findall(r"printf '([^']*)'", line):
                    yield Example(f"{name}:{number}", tuple(p for p in piped.split("\\n") if p.strip()))
            continue
        if opened:
            fence, block_start = opened.group(2), number + 1
            continue
        stripped = line.strip()
        if stripped.startswith("|") and re.fullmatch(r"\|[\s:|-]+\|?", stripped):
            header = _cells(previous)
        elif not stripped.startswith("|"):
            header = []
        previous = line
        cells = _cells(stripped) if stripped.startswith("|") and header else [line]
        for column, cell in enumerate(cells):
            language = _column_language(header[column]) if header and column < len(header) else None
            example = _session(f"{name}:{number}", _SPAN.findall(cell), registry, language)
            if example is not None:
                yield example


REGISTRY = build_registry()
EXAMPLES = [example for document in DOCUMENTS for example in extract(document, REGISTRY)]


class RecordingConsole(ConsoleMessenger):
    """The real console messenger, noting the prompt key of every reply and console line."""

    def __init__(self, bot: Bot, user: str) -> None:
        super().__init__(bot, DEMO_TENANT, user, out=io.StringIO(), history=demo_history, lang="en")
        self.keys: list[str] = []

    def _t(self, key: str, **params: object) -> str:
        self.keys.append(key)
        return super()._t(key, **params)

    def deliver(self, effects: list[Effect]) -> None:
        self.keys.extend(e.reply.key for e in effects if isinstance(e, Outbound))
        super().deliver(effects)


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory, prompts: Prompts, backend: str) -> Path:
    """The demo organisation seeded once; each example gets a copy of this file."""
    if backend != "sqlite":
        pytest.skip("the documentation's examples do not depend on the database: they run in the SQLite pass")
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    services = Services(settings=_settings(path), db=db, prompts=prompts, clock=FixedClock(START), registry=REGISTRY)
    seed_demo(Bot(services))
    db.dispose()
    return path


def _settings(path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{path}", admins=[DEMO_ADMIN], default_locale="en")


@pytest.fixture
def demo_bot(demo_template: Path, tmp_path: Path, prompts: Prompts) -> Iterator[Bot]:
    path = tmp_path / "example.db"
    shutil.copy(demo_template, path)
    db = Database(f"sqlite:///{path}")
    yield Bot(Services(settings=_settings(path), db=db, prompts=prompts, clock=FixedClock(START), registry=REGISTRY))
    db.dispose()


def test_the_documentation_has_examples_of_every_kind() -> None:
    """The extraction finds what it is meant to find (a broken extractor would pass everything)."""
    texts = {line for example in EXAMPLES for line in example.lines}
    assert len(EXAMPLES) >= 60, len(EXAMPLES)
    assert {"social.follow_self", "error.unknown_channel", "help_requests.away_past"} <= REFUSALS
    assert any(e.where.startswith("README.md") and len(e.lines) > 1 for e in EXAMPLES)  # a console block or printf
    assert {"/causette who knows kubernets", "/causette profile"} <= texts
    assert any(e.language == "fr" for e in EXAMPLES) and any(e.user == DEMO_ADMIN for e in EXAMPLES)
    assert {Path(e.where.split(":")[0]).name for e in EXAMPLES} >= {"README.md", "people.md", "social.md", "contribution.md", "digests.md"}


def _bare(line: str) -> bool:
    """A command line that is a command's name with nothing after it."""
    match = REGISTRY.match(line[len(COMMAND):].strip()) if line.startswith(COMMAND + " ") else None
    return match is not None and not match.args


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_example_works_in_the_demo(demo_bot: Bot, example: Example) -> None:
    for line in example.lines:
        assert not _ABSOLUTE_DATE.search(line), f"{example.where}: write dates relative to today: {line!r}"
    for line in example.lines:
        spelling = REGISTRY.match(line[len(COMMAND):].strip()) if line.startswith(COMMAND + " ") else None
        if example.language is not None and spelling is not None:
            other = spelling.spec.fr if example.language == "en" else spelling.spec.name
            assert spelling.alias != other or spelling.spec.fr == spelling.spec.name, \
                f"{example.where}: {line!r} is spelled in the other language ({spelling.alias!r})"
    console = RecordingConsole(demo_bot, example.user)
    for line in example.lines:
        console.keys = []
        console.handle_line(line)
        if _bare(line) and [k for k in console.keys if not k.startswith("console.")] == ["error.missing_argument"]:
            continue  # a command's name in prose (`merci`, a digest's source), not an example
        failures = [k for k in console.keys if k in REFUSALS or _FAILURE.search(k)]
        assert not failures, f"{example.where}: {line!r} answered {failures}"
        if line.startswith(COMMAND + " "):
            assert console.keys, f"{example.where}: {line!r} got no answer"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_point_into_the_repository(document: Path) -> None:
    prose = re.sub(r"```.*?```", "", document.read_text(encoding="utf-8"), flags=re.DOTALL)
    for target in _LINK.findall(_SPAN.sub("", prose)):
        if re.match(r"[a-z]+:|#", target):
            continue
        resolved = (document.parent / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{document.name}: broken link {target}"
