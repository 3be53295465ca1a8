"""Prompt catalogues: `prompts/<lang>/<feature>.yaml`, flat keys, `{named}` placeholders.

Each feature owns one file per language; a key defined twice is an error, and a
test checks that English and French have the same keys, placeholders and plural shapes.

A prompt is a string, or one of two mappings when it shows a count with a noun:

- plural forms, chosen by the language's CLDR plural rule (Babel) applied to one
  numeric parameter, named by `count:` (default `count`)::

      idea.voted:
        count: votes
        one: "Your vote is counted: {votes} vote now."
        other: "Your vote is counted: {votes} votes now."

  Keys are the CLDR categories (`zero`, `one`, `two`, `few`, `many`, `other`) and
  exact values (`"=0"`, `"=1"`…, quoted in YAML), which win over the category.
  `other` is required; each language lists every category its rule has (English:
  `one`; French: `one` and `many`, as in "1 000 000 de votes") and no other, which
  the prompts test checks. The count may be a number or a numeric string; a missing
  or non-numeric one selects `other`.
- a sentence with several counts: `text:` plus, for each counted parameter, its
  plural forms; `{replies}` in the text is replaced by the chosen form::

      digest.line.discussion:
        text: "• {text} ({replies}, {reactions})"
        replies: {one: "{replies} reply", other: "{replies} replies"}
        reactions: {one: "{reactions} reaction", other: "{reactions} reactions"}

Parameters are formatted for the language by type, so templates carry no format
spec (the loader refuses `{x:…}` and `{x!r}`): numbers by Babel (`2,862` / `2 862`),
datetimes as `Mon 7 Dec 00:00` / `lun. 7 déc. 00:00`, dates as `Mon 7 Dec 2026` /
`lun. 7 déc. 2026`, times as `00:00`, in the value's own time zone (converting to
the reader's zone is the caller's job). Identifiers (a parameter named `id` or
ending in `_id`) are numbers people type back, so they are never grouped: `#1234`.
Strings and everything else stay as they are.

A template's `` `…` `` becomes a code span marker (`bot.text.code_span`) before the
parameters are filled in: the bot's own formatting is markup, whereas everything a
parameter brings (user text included) stays literal text that adapters escape.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import string
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping, Union

import yaml
from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_decimal

from bot.text import CODE_CLOSE, CODE_OPEN

LANGUAGES = ("en", "fr")
DEFAULT_PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

CATEGORIES = ("zero", "one", "two", "few", "many", "other")
COUNT_KEY = "count"
TEXT_KEY = "text"
DATETIME_PATTERN = "EEE d MMM HH:mm"
DATE_PATTERN = "EEE d MMM y"
TIME_PATTERN = "HH:mm"
_EXACT = re.compile(r"=(\d+)")


@dataclass(frozen=True)
class Plural:
    """Forms of one prompt keyed by CLDR category or exact value (`=0`), chosen on `param`."""

    param: str
    forms: Mapping[str, str]

    def categories(self) -> set[str]:
        return {k for k in self.forms if k in CATEGORIES}

    def choose(self, lang: str, value: object) -> str:
        number = _as_number(value)
        if number is None:
            return self.forms["other"]
        if number >= 0 and number == int(number):
            exact = self.forms.get(f"={int(number)}")
            if exact is not None:
                return exact
        return self.forms.get(_category(lang, abs(number)), self.forms["other"])


@dataclass(frozen=True)
class Composed:
    """A sentence whose counted parameters each bring their own plural forms."""

    text: str
    parts: Mapping[str, Plural]


Entry = Union[str, Plural, Composed]
# Told of every lookup: (language used, key, parameters, text). Tests use it to check which
# language each delivered line came from (tests/test_one_language.py).
Observer = Callable[[str, str, Mapping[str, object], str], None]


class _SafeDict(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


_BACKTICKS = re.compile(r"`([^`]*)`")


def with_code_spans(template: str) -> str:
    """`help <command>` in a template → a code span marker around `help <command>`."""
    return _BACKTICKS.sub(lambda m: CODE_OPEN + m.group(1) + CODE_CLOSE, template)


def templates(entry: Entry) -> list[str]:
    """Every template string an entry can produce (its text and all its forms)."""
    if isinstance(entry, str):
        return [entry]
    if isinstance(entry, Plural):
        return list(entry.forms.values())
    return [entry.text] + [form for part in entry.parts.values() for form in part.forms.values()]


def placeholders(entry: Entry) -> set[str]:
    """The parameter names an entry uses, over all its forms."""
    return {name for template in templates(entry) for _, name, _, _ in string.Formatter().parse(template) if name}


def plurals(entry: Entry) -> dict[str, Plural]:
    """The entry's plural mappings by counted parameter."""
    if isinstance(entry, Plural):
        return {entry.param: entry}
    if isinstance(entry, Composed):
        return dict(entry.parts)
    return {}


def required_categories(lang: str) -> set[str]:
    """The CLDR plural categories a language's forms must all have."""
    return set(_locale(lang).plural_form.tags) | {"other"}


@lru_cache(maxsize=None)
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


@lru_cache(maxsize=4096, typed=True)
def _category(lang: str, number: int | float | Decimal) -> str:
    """The CLDR plural category of a number (cached: Babel evaluates the rule slowly)."""
    return _locale(lang).plural_form(number)


@lru_cache(maxsize=4096, typed=True)
def _number(lang: str, number: int | float | Decimal) -> str:
    return format_decimal(number, locale=_locale(lang))


def _as_number(value: object) -> int | float | Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        return value if isinstance(value, int) or math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        if not number.is_finite():
            return None
        return int(number) if number == number.to_integral_value() else number
    return None


def localize(name: str, value: object, lang: str) -> object:
    """A parameter's value as the reader of `lang` expects it (see the module docstring)."""
    if isinstance(value, (str, bool)) or value is None:
        return value
    if name == "id" or name.endswith("_id"):
        return str(value)
    locale = _locale(lang)
    if isinstance(value, dt.datetime):
        return format_datetime(value, DATETIME_PATTERN, locale=locale)
    if isinstance(value, dt.date):
        return format_date(value, DATE_PATTERN, locale=locale)
    if isinstance(value, dt.time):
        return format_time(value, TIME_PATTERN, locale=locale)
    if isinstance(value, (int, float, Decimal)):
        return _number(lang, value)
    return value


def _check_template(where: str, template: object) -> str:
    if not isinstance(template, str):
        raise ValueError(f"{where} must be a string")
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is not None and (spec or conversion):
            raise ValueError(f"{where}: {{{name}}} has a format spec; parameters are formatted by type")
    return template


def _parse_plural(where: str, data: Mapping[object, object], default_param: str) -> Plural:
    param = data.get(COUNT_KEY, default_param)
    if not isinstance(param, str) or not param.isidentifier():
        raise ValueError(f"{where}: `{COUNT_KEY}` must name a parameter")
    forms: dict[str, str] = {}
    for raw_key, template in data.items():
        key = str(raw_key)
        if key == COUNT_KEY:
            continue
        if key not in CATEGORIES and not _EXACT.fullmatch(key):
            raise ValueError(f"{where}: {key!r} is not a plural category ({', '.join(CATEGORIES)}) nor =N")
        forms[key] = _check_template(f"{where}.{key}", template)
    if "other" not in forms:
        raise ValueError(f"{where}: plural forms need `other`")
    return Plural(param, forms)


def parse_entry(where: str, value: object) -> Entry:
    """One catalogue value: a string, plural forms, or a `text` with plural parts."""
    if isinstance(value, str):
        return _check_template(where, value)
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a string or a mapping of plural forms")
    if TEXT_KEY not in value:
        return _parse_plural(where, value, COUNT_KEY)
    text = _check_template(f"{where}.{TEXT_KEY}", value[TEXT_KEY])
    parts: dict[str, Plural] = {}
    for raw_key, forms in value.items():
        name = str(raw_key)
        if name == TEXT_KEY:
            continue
        if not isinstance(forms, dict):
            raise ValueError(f"{where}.{name} must be a mapping of plural forms")
        part = _parse_plural(f"{where}.{name}", forms, name)
        if part.param != name:
            raise ValueError(f"{where}.{name}: a part counts its own parameter, not {part.param!r}")
        if name not in placeholders(text):
            raise ValueError(f"{where}: the text has no {{{name}}} for its plural part")
        parts[name] = part
    return Composed(text, parts)


def load_catalogue(directory: Path, lang: str) -> dict[str, Entry]:
    merged: dict[str, Entry] = {}
    for path in sorted((directory / lang).glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of keys to strings")
        for key, value in data.items():
            if key in merged:
                raise ValueError(f"{path}: prompt key {key!r} is defined twice")
            merged[str(key)] = parse_entry(f"{path}: prompt {key!r}", value)
    return merged


def _marked_plural(plural: Plural) -> Plural:
    return Plural(plural.param, {k: with_code_spans(v) for k, v in plural.forms.items()})


def _marked(entry: Entry) -> Entry:
    if isinstance(entry, str):
        return with_code_spans(entry)
    if isinstance(entry, Plural):
        return _marked_plural(entry)
    return Composed(with_code_spans(entry.text), {n: _marked_plural(p) for n, p in entry.parts.items()})


class Prompts:
    def __init__(self, catalogues: Mapping[str, Mapping[str, Entry | dict]], default: str = "en") -> None:
        self._catalogues: dict[str, dict[str, Entry]] = {
            lang: {k: parse_entry(f"{lang}: prompt {k!r}", v) if isinstance(v, dict) else v for k, v in cat.items()}
            for lang, cat in catalogues.items()
        }
        self._marked = {lang: {k: _marked(v) for k, v in cat.items()} for lang, cat in self._catalogues.items()}
        self.default = default
        self.observer: Observer | None = None

    @classmethod
    def load(cls, directory: Path = DEFAULT_PROMPTS_DIR, default: str = "en") -> "Prompts":
        return cls({lang: load_catalogue(directory, lang) for lang in LANGUAGES}, default)

    def languages(self) -> tuple[str, ...]:
        return tuple(self._catalogues)

    def has(self, key: str) -> bool:
        return key in self._catalogues.get(self.default, {})

    def keys(self, lang: str) -> set[str]:
        return set(self._catalogues.get(lang, {}))

    def raw(self, lang: str, key: str) -> Entry:
        return self._catalogues[lang][key]

    def t(self, lang: str | None, key: str, **params: object) -> str:
        lang = lang if lang in self._marked else self.default
        entry = self._marked[lang].get(key)
        if entry is None:
            lang = self.default
            entry = self._marked[lang].get(key, key)
        text = render(entry, lang, params)
        if self.observer is not None:
            self.observer(lang, key, params, text)
        return text


def render(entry: Entry, lang: str, params: Mapping[str, object]) -> str:
    """Fill an entry's template for `lang`: plural forms chosen, parameters localized."""
    shown = _SafeDict({k: localize(k, v, lang) for k, v in params.items()})
    if isinstance(entry, str):
        return entry.format_map(shown)
    if isinstance(entry, Plural):
        return entry.choose(lang, params.get(entry.param)).format_map(shown)
    filled = _SafeDict(shown)
    for name, part in entry.parts.items():
        filled[name] = part.choose(lang, params.get(name)).format_map(shown)
    return entry.text.format_map(filled)
