"""Prompt catalogues: `prompts/<lang>/<feature>.yaml`, flat keys, `{named}` placeholders.

Each feature owns one file per language; a key defined twice is an error, and a
test checks that English and French have the same keys and placeholders.
"""
from __future__ import annotations

import string
from pathlib import Path
from typing import Mapping

import yaml

LANGUAGES = ("en", "fr")
DEFAULT_PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


class _SafeDict(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


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
        lang = lang if lang in self._catalogues else self.default
        template = self._catalogues[lang].get(key)
        if template is None:
            template = self._catalogues[self.default].get(key, key)
        return template.format_map(_SafeDict({k: v for k, v in params.items()}))
