"""Admin-only commands refused to others name the action as a phrase, not the command's spelling."""
from __future__ import annotations

import pytest

from bot.core import Bot
from bot.i18n import Prompts
from tests.test_ideas_support import Driver, everything, keys


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def test_every_admin_command_names_its_action_in_both_languages(bot: Bot) -> None:
    prompts = Prompts.load()
    admin_only = [spec for spec in bot.registry.commands if spec.permission == "admin"]
    assert admin_only
    for spec in admin_only:
        assert spec.action_key, spec.name
        for lang in ("en", "fr"):
            assert spec.action_key in prompts.keys(lang), (spec.name, lang)


def test_an_admin_command_refused_reads_as_a_sentence(d: Driver) -> None:
    refused = d.say("thomas", "#sales", "alias ajouter k8s = kubernetes")
    assert keys(refused) == ["error.not_allowed"]
    assert everything(refused) == "Seuls les admins peuvent ajouter un alias de sujet. Demandez à : camille (admin)."
    assert keys(d.say("thomas", "dm", "lang en")) == ["lang.set"]
    refused = d.say("thomas", "#sales", "idea author 1")
    assert everything(refused) == "Only admins can see who wrote an idea. Ask: camille (admin)."
