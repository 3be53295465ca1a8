"""English and French catalogues must match key for key, placeholder for placeholder, plural for plural."""
from __future__ import annotations

import re

from bot.i18n import Prompts, placeholders, plurals, required_categories, templates
from handlers import build_registry


def test_same_keys_in_both_languages(prompts: Prompts) -> None:
    en, fr = prompts.keys("en"), prompts.keys("fr")
    assert en - fr == set(), f"missing in French: {sorted(en - fr)}"
    assert fr - en == set(), f"missing in English: {sorted(fr - en)}"


def test_same_placeholders(prompts: Prompts) -> None:
    bad = [k for k in prompts.keys("en") if placeholders(prompts.raw("en", k)) != placeholders(prompts.raw("fr", k))]
    assert bad == []


def test_plural_prompts_count_the_same_parameters_in_both_languages(prompts: Prompts) -> None:
    bad = [k for k in prompts.keys("en") if set(plurals(prompts.raw("en", k))) != set(plurals(prompts.raw("fr", k)))]
    assert bad == []


def test_plural_forms_have_exactly_the_categories_of_their_language(prompts: Prompts) -> None:
    bad = []
    for lang in ("en", "fr"):
        needed = required_categories(lang)
        for key in prompts.keys(lang):
            for param, plural in plurals(prompts.raw(lang, key)).items():
                if plural.categories() != needed:
                    bad.append(f"{lang} {key} ({param}): {sorted(plural.categories())}, needs {sorted(needed)}")
    assert bad == []


def test_no_prompt_writes_a_plural_by_hand(prompts: Prompts) -> None:
    """`{count} idea(s)`, `sollicité(s)`, `existe(nt)`: a count's noun comes from plural forms instead."""
    hand_made = re.compile(r"\w\((s|es|e|nt)\)")
    bad = [f"{lang} {key}" for lang in ("en", "fr") for key in prompts.keys(lang)
           if any(hand_made.search(t) for t in templates(prompts.raw(lang, key)))]
    assert bad == []


def test_every_command_has_help_and_usage_in_both_languages(prompts: Prompts) -> None:
    for spec in build_registry().commands:
        for key in filter(None, (spec.help_key, spec.usage_key)):
            assert key in prompts.keys("en") and key in prompts.keys("fr"), f"{spec.name}: {key}"
