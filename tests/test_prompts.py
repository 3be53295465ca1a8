"""English and French catalogues must match key for key and placeholder for placeholder."""
from __future__ import annotations

from bot.i18n import Prompts, placeholders
from handlers import build_registry


def test_same_keys_in_both_languages(prompts: Prompts) -> None:
    en, fr = prompts.keys("en"), prompts.keys("fr")
    assert en - fr == set(), f"missing in French: {sorted(en - fr)}"
    assert fr - en == set(), f"missing in English: {sorted(fr - en)}"


def test_same_placeholders(prompts: Prompts) -> None:
    bad = [k for k in prompts.keys("en") if placeholders(prompts.raw("en", k)) != placeholders(prompts.raw("fr", k))]
    assert bad == []


def test_every_command_has_help_and_usage_in_both_languages(prompts: Prompts) -> None:
    for spec in build_registry().commands:
        for key in filter(None, (spec.help_key, spec.usage_key)):
            assert key in prompts.keys("en") and key in prompts.keys("fr"), f"{spec.name}: {key}"
