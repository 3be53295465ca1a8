""""Who knows X?" across languages and wordings (issue 16): the meaning tier, abbreviations,
ranking within the close tiers, bad input, a missing model, and vectors shared by processes."""
from __future__ import annotations

import logging
from typing import Iterator

import pytest
from sqlalchemy import func, select

from bot.context import Ctx, Services
from bot.core import Bot
from handlers import build_registry
from handlers.expertise import meaning
from handlers.expertise.lookup import find_experts, nearest_topics
from store.db import Database
from store.models.core import Person, Workspace
from store.models.expertise import TopicVector
from tests.harness.console import ConsoleHarness
from tests.scenarios import Step
from tests.test_expertise import TENANT, keys, make_person, names, say, session_ctx  # noqa: F401 - fixture


@pytest.fixture
def team(bot: Bot) -> dict[str, int]:
    return {
        "asker": make_person(bot, "asker"),
        "marc": make_person(bot, "marc", ("project management",), days_ago=3),
        "ines": make_person(bot, "ines", ("human resource management",), days_ago=3),
        "paul": make_person(bot, "paul", ("programmable logic controller",), days_ago=3),
        "rose": make_person(bot, "rose", ("ressources humaines",), days_ago=3),
        "fred": make_person(bot, "fred", ("fisheries management",), days_ago=3),
        "stan": make_person(bot, "stan", ("project planning",), days_ago=400),
        "sara": make_person(bot, "sara", ("project planification",), days_ago=1),
    }


def test_a_french_query_finds_an_english_declaration_and_says_why(bot: Bot, team: dict[str, int]) -> None:
    say(bot, "asker", "general", "lang fr")
    out = say(bot, "asker", "general", "qui connaît la gestion de projet")
    assert keys(out) == ["expert.results"]
    card = out[0].reply.card
    close = dict(card.sections)[card.sections[-1][0]]
    assert "Marc" in close
    assert "sens : « gestion de projet » ≈ « project management »" in close
    assert "Fred" not in close  # "fisheries management" is not project management


def test_an_english_query_finds_a_french_declaration(bot: Bot, team: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    result = find_experts(session_ctx("asker"), "human resources")
    assert {"rose", "ines"} <= set(names(result.close))
    rose = next(c for c in result.close if c.person.external_id == "rose")
    assert rose.tier == "meaning" and rose.why[0].startswith('meaning: "human resources" ≈ "ressources humaines"')


def test_meaning_ranks_below_exact_matches(bot: Bot, team: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    result = find_experts(session_ctx("asker"), "project management")
    assert names(result.exact) == ["marc"]
    assert "marc" not in names(result.close)


def test_acronyms_match_the_topics_whose_initials_fit(bot: Bot, team: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    ctx = session_ctx("asker")
    plc = find_experts(ctx, "PLC")
    assert names(plc.candidates)[0] == "paul" and plc.candidates[0].tier == "abbrev"
    assert plc.candidates[0].why[0] == 'abbreviation: "PLC" = "programmable logic controller"'
    assert "ines" in names(find_experts(ctx, "HRM").candidates)
    assert "rose" in names(find_experts(ctx, "RH").candidates)
    # "it" and "on" are words before being acronyms: never expanded
    assert find_experts(ctx, "IT").candidates == ()


def test_an_expansion_finds_who_declared_the_acronym(bot: Bot, team: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    make_person(bot, "cleo", ("CRM",), days_ago=3)
    make_person(bot, "vic", ("ICT",), days_ago=3)
    result = find_experts(session_ctx("asker"), "information and communication technology")
    assert "vic" in names(result.close)


def test_similarity_first_then_freshness(bot: Bot, team: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    # stan's "project planning" (declared 400 days ago: stale) is spelled like the query;
    # sara's "project planification" is fresh but further away: similarity wins.
    result = find_experts(session_ctx("asker"), "project planing")
    order = names(result.close)
    assert order.index("stan") < order.index("sara")
    assert any("may be out of date" in why for why in result.close[order.index("stan")].why)


def test_a_topic_named_inside_a_longer_query_ranks_below_real_matches(bot: Bot, team: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    make_person(bot, "lou", ("kubernetes",), days_ago=3)
    make_person(bot, "max", ("kubernetes cluster upgrades",), days_ago=3)
    result = find_experts(session_ctx("asker"), "kubernetes cluster upgrade")
    order = names(result.candidates)
    assert order.index("max") < order.index("lou")
    lou = result.candidates[order.index("lou")]
    assert lou.tier == "inside" and lou.why[0] == '"kubernetes" is named in your question'


def test_nobody_for_an_unrelated_skill(bot: Bot, team: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    assert find_experts(session_ctx("asker"), "underwater welding").candidates == ()


def test_nearest_topics_by_meaning_then_spelling(bot: Bot, team: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    found = nearest_topics(session_ctx("asker"), "gestion d'équipe de projet", limit=3)
    assert found and found[0][0] == "project management" and found[0][2] == "meaning"
    assert all(0 < similarity <= 1 for _, similarity, _ in found)
    assert nearest_topics(session_ctx("asker"), "🎉🎉") == []


@pytest.mark.parametrize("query", ["", "x", "🎉🔥🚀", "a" * 2000, "project management " * 120])
def test_bad_queries_never_crash(bot: Bot, team: dict[str, int], session_ctx, query: str) -> None:  # noqa: ANN001
    find_experts(session_ctx("asker"), query)
    out = say(bot, "asker", "general", f"who knows {query}")
    assert len(out) == 1 and out[0].reply.key in {"expert.results", "expert.none", "expert.none_no_suggestion",
                                                  "error.missing_argument", "error.too_long"}


def test_a_third_language_is_answered_by_spelling_only(bot: Bot, team: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    assert meaning.third_language("gestión de proyectos") and meaning.third_language("Führung und Planung")
    assert not meaning.third_language("gestion de projet") and not meaning.third_language("project management")
    result = find_experts(session_ctx("asker"), "gestión de proyectos")
    assert all(c.tier != "meaning" for c in result.candidates)


def test_a_missing_or_corrupt_model_falls_back_to_spelling_with_a_warning(
        bot: Bot, team: dict[str, int], tmp_path, monkeypatch, caplog) -> None:  # noqa: ANN001
    broken = tmp_path / "weights.npz"
    broken.write_bytes(b"not a model")
    monkeypatch.setattr(meaning, "model_files", lambda: (broken, tmp_path / "sp.model"))
    meaning.forget_loaded()
    bot.services.extras.pop("expertise", None)
    try:
        with caplog.at_level(logging.WARNING, logger="handlers.expertise.meaning"):
            out = say(bot, "asker", "general", "who knows gestion de projet")
            assert keys(out) in (["expert.none"], ["expert.none_no_suggestion"])
            out = say(bot, "asker", "general", "who knows projet managment")  # spelling still works
            assert keys(out) == ["expert.results"] and "Marc" in str(out[0].reply.card.sections)
        warnings = [r for r in caplog.records if "meaning tier is off" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        meaning.forget_loaded()


@pytest.fixture
def other(services: Services) -> Iterator[Bot]:
    """A second worker process: same database, its own engine and index cache."""
    db = Database(services.settings.database_url)
    yield Bot(Services(settings=services.settings, db=db, prompts=services.prompts, clock=services.clock,
                       registry=build_registry()))
    db.dispose()


def _lookup(bot: Bot, asker: str, query: str) -> list[str]:
    with bot.services.db.session(TENANT) as s:
        workspace = s.get(Workspace, TENANT)
        actor = s.scalar(select(Person).where(Person.external_id == asker))
        return names(find_experts(Ctx.for_person(bot.services, s, workspace, actor), query).candidates)  # type: ignore[arg-type]


def test_a_second_process_reads_a_new_topics_vector_from_the_store(bot: Bot, other: Bot, team: dict[str, int],
                                                                   monkeypatch) -> None:  # noqa: ANN001
    assert "rose" in _lookup(other, "asker", "human resources")  # the other process's index is built
    say(bot, "dan", "dm", "skills add supply chain management")  # declared in this process
    with bot.services.db.session(TENANT) as s:
        stored = s.scalar(select(func.count()).select_from(TopicVector).where(TopicVector.topic_key == "supplychainmanagement"))
    assert stored == 1  # the declaring transaction stored the vector
    encoded: list[str] = []
    model = meaning.encoder()
    assert model is not None
    real = model.encode
    monkeypatch.setattr(model, "encode", lambda texts: encoded.extend(texts) or real(texts))
    assert "dan" in _lookup(other, "asker", "gestion de la chaîne logistique")
    assert "supply chain management" not in encoded  # read from the store, not computed again


def test_private_evidence_stays_private_in_meaning_matches(bot: Bot) -> None:
    # The demo's #direction is private (camille, sophie, thomas, julien); a past message there
    # used #réorganisation. Asked in English and by meaning, outsiders still learn nothing of it.
    harness = ConsoleHarness(bot)
    outsider = harness.run_step(Step("lucas", "#engineering", "who knows restructuring"))
    assert outsider and all("réorganisation" not in s.text.casefold() for s in outsider)
    member = harness.run_step(Step("camille", "#direction", "who knows restructuring"))
    assert any("réorganisation" in s.text.casefold() for s in member)


def test_the_vectors_job_stores_what_was_declared_without_them(bot: Bot, team: dict[str, int]) -> None:
    # The team's skills were written straight to the store (as before the meaning tier): no vectors.
    def stored() -> set[str]:
        with bot.services.db.session(TENANT) as s:
            return set(s.scalars(select(TopicVector.topic_key)))

    assert "projectmanagement" not in stored()
    job = next(j for j in bot.services.registry.jobs if j.name == "expertise.vectors")
    bot.run_job(job)
    assert {"projectmanagement", "ressourceshumaines", "programmablelogiccontroller"} <= stored()
    bot.run_job(job)  # nothing left to do, nothing written twice
    with bot.services.db.session(TENANT) as s:
        assert s.scalar(select(func.count()).select_from(TopicVector)) == len(stored())


def test_a_topic_spelled_alike_but_meaning_otherwise_is_offered_not_answered(bot: Bot, team: dict[str, int]) -> None:
    # "fisheries management" is spelled like "fishery managment" would be; "wineries management"
    # is spelled close to it too, but means something else: nobody is named, the topic is offered.
    out = say(bot, "asker", "general", "who knows wineries management")
    assert keys(out) in (["expert.none"], ["expert.none_no_suggestion"])
    assert "Fred" not in str(out[0].reply.card)


def test_a_server_answers_by_spelling_while_the_model_loads_then_by_meaning(
        bot: Bot, team: dict[str, int], session_ctx, monkeypatch) -> None:  # noqa: ANN001
    """A server's worker never waits for the model inside its transaction (adapters/server.py
    warm_in_background): until the model is loaded, lookups use the spelling tiers."""
    from handlers.expertise.lookup import ExpertiseCache

    cache = ExpertiseCache.for_files()
    cache.background_model = True
    bot.services.extras["expertise"] = cache
    started: list[bool] = []
    monkeypatch.setattr(meaning, "loaded", lambda: None)
    monkeypatch.setattr(meaning, "load_in_background", lambda: started.append(True))
    result = find_experts(session_ctx("asker"), "gestion de projet")
    assert "marc" not in names(result.candidates)  # no meaning tier yet, and no wait for it
    assert started
    monkeypatch.undo()
    assert meaning.loaded() is not None
    result = find_experts(session_ctx("asker"), "gestion de projet")
    assert "marc" in names(result.candidates)  # the index takes the vectors once the model is there


def test_the_token_table_is_read_from_a_checked_file_and_embeds_exactly_as_in_memory(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import numpy as np

    files = meaning.model_files()
    if files is None:
        pytest.skip("the model's package is not installed")
    monkeypatch.setattr(meaning, "table_cache_dir", lambda: None)
    plain = meaning.Encoder(*files)  # no cache directory: the table stays in memory
    assert isinstance(plain._backend.table, np.ndarray)
    monkeypatch.setattr(meaning, "table_cache_dir", lambda: tmp_path)
    filed = meaning.Encoder(*files)
    assert isinstance(filed._backend.table, meaning.TableFile)
    texts = ["gestion de projet", "programmable logic controller", "ressources humaines", "日本語"]
    assert np.array_equal(filed.encode(texts), plain.encode(texts))
    rows = [5, len(plain._backend.table) - 1, 5, 77777]
    assert np.array_equal(filed._backend.table[rows], plain._backend.table[rows])
    with pytest.raises(IndexError):
        filed._backend.table[[len(plain._backend.table)]]
    (path,) = tmp_path.glob("use3-table-*.npy")
    damaged = bytearray(path.read_bytes())
    damaged[-7000] ^= 0xFF  # a corrupt (or planted) file is noticed at the next start and written again
    path.write_bytes(bytes(damaged))
    again = meaning.Encoder(*files)
    assert np.array_equal(np.load(path), plain._backend.table)
    assert np.array_equal(again.encode(texts), plain.encode(texts))


def test_spelling_suggestions_are_computed_only_when_read(bot: Bot, team: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    result = find_experts(session_ctx("asker"), "xylophone")
    assert not result.candidates and callable(result.suggest)
    first = result.suggestions
    assert isinstance(first, tuple) and result.suggest == first and result.suggestions is first
    found = find_experts(session_ctx("asker"), "project management")
    assert found.candidates and found.suggestions == ()


def test_a_query_is_embedded_as_the_batch_path_embeds_it(monkeypatch) -> None:  # noqa: ANN001
    import numpy as np

    model = meaning.encoder()
    if model is None:
        pytest.skip("the model's package is not installed")
    assert model._single is not None
    single = meaning.QueryPath(model._backend)
    monkeypatch.setattr(single, "TOKENS_KEPT", 12)  # pieces are dropped and computed again
    texts = ["gestion de projet", "a", "kubernets", "human resource management", "ressources humaines ressources",
             "sécurité sociale", "日本語", "x" * 200, "gestion de projet", "pythrn devops k8s"]
    for text in texts:
        prepared = meaning.prepare(text)
        assert float(single.embed(prepared) @ model.encode([text])[0]) > 0.9999
        assert len(single.kept) <= 12
    broken = meaning.Encoder.__new__(meaning.Encoder)  # a package whose internals moved: the batch path
    monkeypatch.setattr(meaning, "QueryPath", lambda backend: (_ for _ in ()).throw(AttributeError("w1")))
    files = meaning.model_files()
    assert files is not None
    broken.__init__(*files)
    assert broken._single is None
    assert np.allclose(broken.query("gestion de projet"), model.query("gestion de projet"), atol=1e-5)


def test_a_vector_search_finds_what_an_exact_scan_finds_as_the_vocabulary_grows() -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    latent = rng.standard_normal((40, meaning.DIM))
    def vectors(n: int) -> np.ndarray:
        rows = rng.standard_normal((n, 40)) @ latent + 0.3 * rng.standard_normal((n, meaning.DIM))
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    index = meaning.TopicVectors("test")
    added = vectors(200)
    index.add([f"t{i}" for i in range(200)], added, ["topic"] * 200)
    assert index.axes is None  # small: every vector is scored
    for start in range(200, 3000, 700):  # the sketch's axes are computed past CANDIDATES, again when doubled
        more = vectors(700)
        index.add([f"t{i}" for i in range(start, start + 700)], more, ["topic"] * 700)
        added = np.concatenate([added, more])
    assert index.axes is not None and index.fitted >= 1500
    for query in vectors(50):
        exact = added @ query
        best = [f"t{i}" for i in np.argsort(-exact)[:6]]
        found = index.search(query, 6, -1.0)
        assert [key for key, _ in found] == best
        assert abs(found[0][1] - float(exact.max())) < 1e-3
        assert abs(index.similarity(query, best[0]) - float(exact.max())) < 1e-3


def test_the_best_scores_are_those_a_full_partition_finds() -> None:
    import numpy as np

    rng = np.random.default_rng(5)
    for size in (300, 8191, 8192, 20000, 50000):
        for scores in (rng.standard_normal(size), np.sort(rng.standard_normal(size)), -np.sort(rng.standard_normal(size))):
            scores = scores.astype(np.float32)
            found = meaning._best(scores, 256)
            assert len(found) == 256
            assert set(found.tolist()) == set(np.argpartition(scores, size - 256)[size - 256 :].tolist())


def test_a_close_spelling_that_holds_the_people_wanted_answers_without_embedding_the_query(
        bot: Bot, session_ctx, monkeypatch) -> None:  # noqa: ANN001
    """A spelling match of at least STRONG_SPELLING (0.85) is trusted: when it holds the people a
    lookup wants, the query is not embedded (most of a lookup's cost); when it does not, meaning
    is asked too, and the mistyped words' vector cannot drop the match."""
    model = meaning.encoder()
    if model is None:
        pytest.skip("the model's package is not installed")
    make_person(bot, "asker")
    for i in range(10):
        make_person(bot, f"dw{i}", ("data warehouse design",), days_ago=3)
    make_person(bot, "sc1", ("supply chain planning",), days_ago=3)
    embedded: list[str] = []
    query = model.query
    monkeypatch.setattr(model, "query", lambda text: embedded.append(text) or query(text))
    ctx = session_ctx("asker")
    found = find_experts(ctx, "daat warehuose desgin")   # 0.86 by spelling, ten people
    assert len(found.close) == 5 and {c.tier for c in found.close} == {"spelling"}
    assert embedded == []
    found = find_experts(ctx, "spuply cahin planing")    # 0.88 by spelling, one person
    assert names(found.close) == ["sc1"] and found.close[0].tier == "spelling"
    assert set(embedded) == {"spuply cahin planing"}  # asked twice, embedded once (cached)


def test_a_spelling_in_the_same_mould_with_other_words_must_mean_alike(bot: Bot, team: dict[str, int], session_ctx) -> None:  # noqa: ANN001
    """"understand spoken Norwegian" is spelled close to "understand spoken Azerbaijani" (0.79),
    but one of its words is another word, not a typo: the match must mean alike with a cosine of
    UNLIKE_CONFIRM (these two: 0.60, enough for a mistyped match), so Lena is not named; her
    skill is offered as a topic. A typo in every word still finds her."""
    make_person(bot, "lena", ("understand spoken Azerbaijani",), days_ago=3)
    ctx = session_ctx("asker")
    result = find_experts(ctx, "understand spoken Norwegian")
    assert "lena" not in names(result.candidates)
    assert "understand spoken Azerbaijani" in result.suggestions
    assert names(find_experts(ctx, "undrestand spokn Azerbaijany").candidates) == ["lena"]
