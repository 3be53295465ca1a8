"""One scenario list, run through every adapter (console, Slack, Teams).

Each feature adds a module here with `SCENARIOS: list[Scenario]`. Steps are written as
a person would type them in the console (`@handle`, `#channel`); each adapter's harness
turns them into its own native payloads and reports the prompt keys and plain text of
every reply the step produced.

Every step states the prompt keys of its replies (`expect=()` when it gets none), and
`play` checks them on every adapter, so all adapters answer every step with the same keys.
A step that truly differs on one platform says so with `Differs(platform, keys, reason)` (when
it states no keys there, the step's `contains` is not checked on that platform).

Buttons and forms (every harness must honour these two fields; both default to "not used",
so existing steps are unchanged). A step does, in order: types `text` (when not empty), then
presses `press`, then sends `submit`; `expect` lists the keys of all the replies together.

- `press="survey answer"`: `user` presses a button, natively on each platform (console:
  `/click N` on the card just printed, else the command the card prints beside the button;
  Slack: a signed `block_actions` payload; Teams: the card's `Action.Submit`, a message
  activity carrying its `value`). The button is the most recent one shown to `user` (their
  DM, a reply only they see, or a channel post) whose command starts with `press`: commands,
  not labels, so one step works in every language.
- `submit={"q1": "4"}`: `user` fills and sends the most recent form the bot showed them that
  they have not sent yet (on a platform where a sent form stays on screen — the console's
  last form, a Teams card — the last one again when none is left). Fields not named keep the
  value the form showed (a template's questions, a default closing day); a checkbox takes
  "true"/"false". Natively: console `/form a=1 | b=2` (so no `|` or newline in a value);
  Slack the modal that `views.open` received, sent back as a signed `view_submission` with
  its `private_metadata` and `state.values`; Teams an `Action.Submit` whose `value` holds the
  card's inputs and the form's command. On Slack a form answering a typed message arrives as
  a message with an "open the form" button (no trigger_id to open a modal with): the harness
  clicks it first, as a person would, and does not report that click's reply (the same form,
  now as a modal) as one of the step's replies.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Mapping, Protocol


@dataclass(frozen=True)
class Differs:
    """On `platform`, this step answers with `expect` instead, for `reason`."""
    platform: str
    expect: tuple[str, ...]
    reason: str


# A reply carrying a form (Slack's modal, Teams' card form) on Matrix, which has neither.
MATRIX_FORM = "Matrix has no modal: a form is a guided exchange in the direct chat, whose first question follows"


@dataclass(frozen=True)
class Step:
    user: str                      # demo handle of who speaks
    where: str                     # "#channel" or "dm"
    text: str                      # what they type (without the slash command name)
    expect: tuple[str, ...] | None = None  # prompt keys of the replies, in order (required)
    contains: tuple[str, ...] = () # substrings the replies' plain text must contain
    absent: tuple[str, ...] = ()   # substrings it must not contain
    command: bool = True           # slash command (True) or a plain channel message (False)
    advance: str = ""              # move the clock first, e.g. "+2h"
    differs: tuple[Differs, ...] = ()  # platform-specific keys, each with its reason
    press: str = ""                # then press the latest button shown to `user` whose command starts so
    submit: Mapping[str, str] | None = None  # then send `user`'s latest form with these field values

    def expected_on(self, platform: str) -> tuple[str, ...] | None:
        return next((d.expect for d in self.differs if d.platform == platform), self.expect)


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    tags: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Seen:
    key: str
    text: str


class Harness(Protocol):
    platform: str  # "console", "slack", "teams": which `Differs` apply

    def run_step(self, step: Step) -> list[Seen]: ...


def all_scenarios() -> list[Scenario]:
    found: list[Scenario] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(getattr(module, "SCENARIOS", []))
    return found


def play(harness: Harness, scenario: Scenario) -> list[list[Seen]]:
    """Run every step, asserting its expectations; returns what was seen, for comparisons."""
    transcript: list[list[Seen]] = []
    for i, step in enumerate(scenario.steps):
        seen = harness.run_step(step)
        transcript.append(seen)
        acts = "".join([f", press {step.press!r}" if step.press else "",
                        f", submit {dict(step.submit)!r}" if step.submit is not None else ""])
        where = f"{scenario.name} step {i + 1} ({step.user} in {step.where}: {step.text!r}{acts})"
        keys = tuple(s.key for s in seen)
        expected = step.expected_on(harness.platform)
        assert expected is not None, f"{where}: the step states no expected keys"
        assert keys == expected, f"{where} on {harness.platform}: expected keys {expected}, got {keys}"
        assert all(s.text.strip() for s in seen), f"{where} on {harness.platform}: a reply was not shown: {seen}"
        blob = "\n".join(s.text for s in seen)
        # `contains` is about the replies: a platform where the step differs with none has nothing to contain
        for needle in step.contains if expected == step.expect or expected else ():
            assert needle.casefold() in blob.casefold(), f"{where}: {needle!r} not in replies:\n{blob}"
        for needle in step.absent:
            assert needle.casefold() not in blob.casefold(), f"{where}: {needle!r} should not appear in:\n{blob}"
    return transcript
