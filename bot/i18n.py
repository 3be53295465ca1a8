"""Prompt catalogues: `prompts/<lang>/<feature>.yaml`, flat keys, `{named}` placeholders.

Each feature owns one file per language; a key defined twice is an error, and a
test checks that English and French have the same keys and placeholders.

A template's `` `…` `` becomes a code span marker (`bot.text.code_span`) before the
parameters are filled in: the bot's own formatting is markup, whereas everything a
parameter brings (user text included) stays literal text that adapters escape.
"""
from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Mapping

import yaml

from bot.text import CODE_CLOSE, CODE_OPEN

LANGUAGES = ("en", "fr")
DEFAULT_PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


class _SafeDict(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


_BACKTICKS = re.compile(r"`([^`]*)`")


def with_code_spans(template: str) -> str:
    """`help <command>` in a template → a code span marker around `help <command>`."""
    return _BACKTICKS.sub(lambda m: CODE_OPEN + m.group(1) + CODE_CLOSE, template)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def load_catalogue(directory: Path, lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted((directory / lang).glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of keys to strings")
        for key, value in data.items():
            if key in merged:
                raise ValueError(f"{path}: prompt key {key!r} is defined twice")
            if not isinstance(value, str):
                raise ValueError(f"{path}: prompt {key!r} must be a string")
            merged[str(key)] = value
    return merged


class Prompts:
    def __init__(self, catalogues: Mapping[str, Mapping[str, str]], default: str = "en") -> None:
        self._catalogues = {lang: dict(cat) for lang, cat in catalogues.items()}
        self._marked = {lang: {k: with_code_spans(v) for k, v in cat.items()} for lang, cat in self._catalogues.items()}
        self.default = default

    @classmethod
    def load(cls, directory: Path = DEFAULT_PROMPTS_DIR, default: str = "en") -> "Prompts":
        return cls({lang: load_catalogue(directory, lang) for lang in LANGUAGES}, default)

    def languages(self) -> tuple[str, ...]:
        return tuple(self._catalogues)

    def has(self, key: str) -> bool:
        return key in self._catalogues.get(self.default, {})

    def keys(self, lang: str) -> set[str]:
        return set(self._catalogues.get(lang, {}))

    def raw(self, lang: str, key: str) -> str:
        return self._catalogues[lang][key]

    def t(self, lang: str | None, key: str, **params: object) -> str:
        lang = lang if lang in self._marked else self.default
        template = self._marked[lang].get(key)
        if template is None:
            template = self._marked[self.default].get(key, key)
        return template.format_map(_SafeDict({k: v for k, v in params.items()}))
