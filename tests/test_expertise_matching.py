"""The widening fuzzy search returns exactly what one scan of every topic would."""
from __future__ import annotations

import random

import pytest
from rapidfuzz import fuzz, process

from handlers.expertise.index import ExpertiseIndex, sorted_form
from handlers.expertise.scoring import CLOSE_CUTOFF

WORDS = ("data", "cloud", "vente", "négociation", "kubernetes", "pricing", "sécurité", "banque", "rgpd", "python",
         "appel", "offres", "design", "mobile", "finance", "santé", "industrie", "robotique", "analytique", "go")


def typo(rng: random.Random, text: str) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 1)
    return text[:i] + rng.choice("aeiourstn") + text[i + 1:] if rng.random() < 0.5 else text[:i] + text[i + 1:]


@pytest.mark.parametrize("seed", range(5))
def test_closest_forms_equals_a_full_scan(seed: int) -> None:
    rng = random.Random(seed)
    index = ExpertiseIndex(0, [])
    names = {" ".join(rng.sample(WORDS, rng.randrange(1, 4))) for _ in range(600)}
    for name in names:
        index.topic(name.replace(" ", ""), name)
    choices, _ = index._fuzzy_choices()
    for _ in range(150):
        query = sorted_form(typo(rng, rng.choice(sorted(names))))
        for limit in (1, 5):
            full = [(score, i) for _, score, i in process.extract(query, choices, scorer=fuzz.ratio, limit=None,
                                                                  score_cutoff=CLOSE_CUTOFF)]
            full.sort(key=lambda hit: (-hit[0], hit[1]))
            assert index.closest_forms(query, limit) == full[:limit], query
