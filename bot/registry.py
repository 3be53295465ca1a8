"""The command registry: specs with English and French aliases, matched longest first,
case- and accent-insensitive; plus ambient hooks (run on every event) and periodic jobs.

Feature modules in `handlers/` expose `register(registry)`; `handlers.build_registry()`
discovers them, so adding a feature touches no shared file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol, Sequence

from rapidfuzz import fuzz, process

from bot.text import norm_token

if TYPE_CHECKING:
    from bot.context import Ctx, JobCtx
    from bot.types import Effect, IncomingMessage, Reply

Permission = Literal["anyone", "admin"]
_TOKEN = re.compile(r"\S+")


class Handler(Protocol):
    """A command: `handler(ctx, msg, args)`, `args` being the text after the command's alias.

    It returns a `Reply` (sent as `ctx.answer(reply)`: to the message's conversation, privately
    when `reply.private`), effects (build answers among them with `ctx.answer`), or None.
    `raise UserError(key, **params)` refuses: its writes are rolled back, the refusal answered."""

    def __call__(self, ctx: Ctx, msg: IncomingMessage, args: str, /) -> Reply | Sequence[Effect] | None: ...


class Hook(Protocol):
    """An ambient hook: `hook(ctx, event)` for every event of its type, addressed or not."""

    def __call__(self, ctx: Ctx, event: Any, /) -> Sequence[Effect] | None: ...


@dataclass(frozen=True)
class CommandSpec:
    """One command: `name` is its English spelling, `fr` its French one, `aliases` any other
    accepted spellings (multi-word ok); all are matched case- and accent-insensitively.

    `help_key` names the prompt with a one-line description; `usage_key` the usage line;
    both must exist in every language. `hidden` commands (button-only) are left out of help.
    `action_key` names the action as a phrase for refusals ("change the workspace language"):
    an admin-only command must have one. `max_args` lets a command take more than the
    settings' `max_argument_chars` (a pasted file).
    """

    name: str
    fr: str
    handler: Handler
    help_key: str
    usage_key: str = ""
    aliases: tuple[str, ...] = ()
    permission: Permission = "anyone"
    group: str = "general"
    hidden: bool = False
    needs_args: bool = False
    action_key: str = ""
    max_args: int = 0  # longest arguments accepted; 0: settings.max_argument_chars


@dataclass(frozen=True)
class Match:
    spec: CommandSpec
    alias: str
    args: str


@dataclass(frozen=True)
class Job:
    """A periodic task. `run(jctx)` returns effects to deliver. `Bot.tick` runs it once per
    `every`, counted from its last start, across every process sharing the database (never
    more often; later when no process ticks or a run outlasts the period). It must still be
    safe to run in several processes at once (a run longer than `every` may overlap the next,
    `Bot.run_job` ignores the period): claim work with unique rows, not in-memory flags."""

    name: str
    every: timedelta
    run: Callable[[JobCtx], Sequence[Effect]]


@dataclass
class Registry:
    commands: list[CommandSpec] = field(default_factory=list)
    hooks: dict[type, list[Hook]] = field(default_factory=dict)
    jobs: list[Job] = field(default_factory=list)
    _aliases: list[tuple[tuple[str, ...], str, CommandSpec]] = field(default_factory=list)

    def command(self, spec: CommandSpec) -> None:
        for existing in self.commands:
            if existing.name == spec.name:
                raise ValueError(f"command {spec.name!r} registered twice")
        self.commands.append(spec)
        for alias in (spec.name, spec.fr, *spec.aliases):
            tokens = tuple(norm_token(t) for t in alias.split())
            for other_tokens, other_alias, other in self._aliases:
                if other_tokens == tokens and other is not spec:
                    raise ValueError(f"alias {alias!r} of {spec.name!r} already belongs to {other.name!r}")
            if not any(t == tokens and s is spec for t, _, s in self._aliases):
                self._aliases.append((tokens, alias, spec))
        self._aliases.sort(key=lambda item: -len(item[0]))

    def on(self, event_type: type, hook: Hook) -> None:
        """`hook(ctx, event) -> Sequence[Effect] | None`, run for every event of that type."""
        self.hooks.setdefault(event_type, []).append(hook)

    def job(self, job: Job) -> None:
        self.jobs.append(job)

    def spelling(self, spec: CommandSpec, locale: str) -> str:
        return spec.fr if locale == "fr" else spec.name

    def get(self, name: str) -> CommandSpec:
        for spec in self.commands:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def match(self, text: str) -> Match | None:
        spans = [(m.start(), m.end(), norm_token(m.group())) for m in _TOKEN.finditer(text)]
        words = [w for _, _, w in spans]
        for tokens, alias, spec in self._aliases:
            n = len(tokens)
            if len(words) >= n and tuple(words[:n]) == tokens:
                rest = text[spans[n - 1][1] :].strip() if n else text.strip()
                return Match(spec, alias, rest)
        return None

    def closest(self, text: str) -> CommandSpec | None:
        words = [norm_token(w) for w in text.split()[:3]]
        if not words:
            return None
        choices = {alias: spec for tokens, alias, spec in self._aliases if not spec.hidden}
        best: tuple[float, CommandSpec | None] = (0.0, None)
        for n in range(1, len(words) + 1):
            probe = " ".join(words[:n])
            found = process.extractOne(probe, list(choices), scorer=fuzz.ratio, processor=norm_token)
            if found and found[1] > best[0]:
                best = (found[1], choices[found[0]])
        return best[1] if best[0] >= 60 else None
