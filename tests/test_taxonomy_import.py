"""`taxonomy import`: an admin's CSV (concept id, language, preferred label, alternative labels)
becomes synonyms grouped by concept — a French label finds an English declaration, two concepts
sharing a label are not joined through it — refused to others, bad CSVs named by line, per
workspace, fresh in another process. The vocabulary here is made up for the test."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.context import Services
from bot.core import Bot
from handlers import build_registry
from store.db import Database
from store.models.taxonomy import TaxonomyLabel
from tests.harness import driver
from tests.test_ideas_support import Driver, everything, keys

CSV = '''conceptUri,language,preferredLabel,altLabels
urn:test:pm,en,project management,"project planning
managing projects"
urn:test:pm,fr,gestion de projet,conduite de projet|pilotage de projet
urn:test:bees,en,beekeeping,apiculture
urn:test:bees,fr,apiculture,
urn:test:piano,en,piano tuning,pitch work
urn:test:voice,en,voice coaching,pitch work
urn:test:zx,en,zorblax tuning,
urn:test:zx,fr,réglage du quimbor,quimborage
'''


@pytest.fixture
def d(bot: Bot) -> Driver:
    return Driver(bot)


def import_csv(d: Driver, who: str = "camille", text: str = CSV, where: str = "dm") -> list:  # noqa: ANN001
    if who == "camille":
        d.say("camille", "dm", "lang en")
    return d.say(who, where, "taxonomy import\n" + text)


def lookup(d: Driver, who: str, query: str) -> str:
    return everything(d.say(who, "dm", f"who knows {query}"))


def test_a_french_label_finds_an_english_declaration(d: Driver) -> None:
    d.say("emma", "dm", "skills add project management, zorblax tuning")
    d.say("nathan", "dm", "lang en")
    assert "Emma" not in lookup(d, "nathan", "réglage du quimbor")  # off by default: nothing imported
    assert keys(d.say("nathan", "dm", "taxonomy")) == ["taxonomy.none"]
    out = import_csv(d)
    assert keys(out) == ["taxonomy.imported"]
    assert "5 concepts read, 15 new labels" in everything(out)
    assert "Emma" in lookup(d, "nathan", "réglage du quimbor")
    assert "Emma" in lookup(d, "nathan", "quimborage")
    assert "Emma" in lookup(d, "nathan", "gestion de projet")
    assert "Emma" in lookup(d, "nathan", "conduite de projet")
    assert "Emma" in lookup(d, "nathan", "managing projects")
    # Importing the same file again adds nothing.
    assert "no new label" in everything(import_csv(d))
    assert "5 concepts and 15 labels" in everything(d.say("nathan", "dm", "taxonomy"))


def test_a_declaration_under_another_label_joins_the_concept(d: Driver) -> None:
    import_csv(d)
    d.say("emma", "dm", "lang en")
    out = d.say("emma", "dm", "skills add managing projects")
    assert keys(out) == ["skills.added", "skills.normalised"]
    assert "managing projects → project management (the same concept in the skills taxonomy)" in everything(out)
    # A French declarer of the French preferred label joins the topic already declared.
    out = d.say("sophie", "dm", "compétences ajouter gestion de projet")
    assert "gestion de projet → project management" in everything(out)


def test_two_concepts_sharing_a_label_are_not_chained(d: Driver) -> None:
    import_csv(d)
    d.say("emma", "dm", "skills add piano tuning")
    d.say("hugo", "dm", "skills add voice coaching")
    d.say("lucas", "dm", "lang en")
    tuning = lookup(d, "lucas", "piano tuning")
    assert "Emma" in tuning and "Hugo" not in tuning
    coaching = lookup(d, "lucas", "voice coaching")
    assert "Hugo" in coaching and "Emma" not in coaching
    shared = lookup(d, "lucas", "pitch work")  # the shared label names both concepts
    assert "Emma" in shared and "Hugo" in shared
    # A declaration under the shared label is ambiguous: kept as typed.
    out = d.say("lucas", "dm", "skills add pitch work")
    assert keys(out) == ["skills.added"]


def test_only_admins_import_and_the_refusal_names_who_can(d: Driver) -> None:
    d.say("thomas", "dm", "lang en")
    out = import_csv(d, "thomas")
    assert keys(out) == ["error.not_allowed"]
    assert everything(out) == "Only admins can import a skills taxonomy. Ask: camille (admin)."
    refused = d.say("sophie", "dm", "taxonomie importer\n" + CSV)
    assert "Seuls les admins peuvent importer une taxonomie de compétences" in everything(refused)
    assert keys(d.say("thomas", "dm", "taxonomy clear")) == ["error.not_allowed"]
    with d.session() as s:
        assert s.scalar(select(func.count(TaxonomyLabel.id))) == 0


@pytest.mark.parametrize("text, key, line", [
    ("urn:a,en,alpha,\nurn:b,en\n", "taxonomy.bad_columns", 2),
    ("conceptUri,language,preferredLabel,altLabels\nurn:a,en,alpha,\n,en,beta,\n", "taxonomy.no_concept", 3),
    ("urn:a,en,alpha,\nurn:b,en,\"beta,\nurn:c,en,gamma,\n", "taxonomy.bad_quote", 2),
    ("urn:a,en,alpha,\nurn:b,english!,beta,\n", "taxonomy.bad_language", 2),
    ("urn:a,en,alpha,\n\nurn:b,en,,\n", "taxonomy.no_label", 3),
    ("language,altLabels\nen,alpha\n", "taxonomy.bad_header", 1),
])
def test_a_bad_csv_names_its_line_and_imports_nothing(d: Driver, text: str, key: str, line: int) -> None:
    out = import_csv(d, text=text)
    assert keys(out) == [key]
    assert f"{line}" in everything(out) and "Nothing was imported" in everything(out)
    with d.session() as s:
        assert s.scalar(select(func.count(TaxonomyLabel.id))) == 0


def test_bad_csv_in_french(d: Driver) -> None:
    d.say("camille", "dm", "lang fr")
    out = d.say("camille", "dm", "taxonomie importer\nurn:a,fr,alpha,\nurn:b")
    assert keys(out) == ["taxonomy.bad_columns"]
    assert everything(out).startswith("La ligne 2 a 1 colonne ; il en faut au moins 3")


def test_a_path_only_on_the_console_and_semicolons(bot: Bot, d: Driver, tmp_path: Path) -> None:
    path = tmp_path / "skills_fr.csv"
    path.write_text("\ufeffconceptUri;preferredLabel;altLabels\nurn:test:zq;quimborage;zorblaxerie\n", encoding="utf-8")
    d.say("emma", "dm", "skills add quimborage")
    d.say("camille", "dm", "lang en")
    assert keys(d.say("camille", "dm", f"taxonomy import {path}")) == ["taxonomy.imported"]  # the console
    assert "Emma" in lookup(d, "camille", "zorblaxerie")
    on_slack = driver.handle(bot, "camille", "dm", f"taxonomy import {path}", tenant="slack:T1", platform="slack")
    assert keys(on_slack) == ["taxonomy.paste_here"]  # a chat never names a file of the server
    assert keys(d.say("camille", "dm", f"taxonomy import {tmp_path / 'missing.csv'}")) == ["taxonomy.no_file"]
    assert keys(d.say("camille", "dm", "taxonomy clear")) == ["taxonomy.cleared"]
    assert "Emma" not in lookup(d, "camille", "zorblaxerie")


def test_another_process_sees_the_import_and_other_workspaces_do_not(d: Driver, db_url: str, services: Services) -> None:
    d.say("emma", "dm", "skills add zorblax tuning")
    d.say("nathan", "dm", "lang en")
    assert "Emma" not in lookup(d, "nathan", "quimborage")  # this process built its index
    other = Bot(Services(settings=services.settings, db=Database(db_url), prompts=services.prompts, clock=services.clock,
                         registry=build_registry()))
    other_driver = Driver.__new__(Driver)
    other_driver.bot = other
    assert "Emma" not in lookup(other_driver, "nathan", "quimborage")  # and so did the other one
    import_csv(d)
    assert "Emma" in lookup(other_driver, "nathan", "quimborage")
    assert "Emma" in lookup(d, "nathan", "quimborage")
    # Another workspace of the same database knows nothing of it.
    elsewhere = {"tenant": "slack:T9", "platform": "slack"}
    driver.handle(d.bot, "emma", "dm", "skills add zorblax tuning", **elsewhere)
    driver.handle(d.bot, "nathan", "dm", "lang en", **elsewhere)
    assert "emma" in everything(driver.handle(d.bot, "nathan", "dm", "who knows zorblax tuning", **elsewhere)).lower()
    assert "emma" not in everything(driver.handle(d.bot, "nathan", "dm", "who knows quimborage", **elsewhere)).lower()
    other.services.db.dispose()


def test_a_pasted_csv_may_be_longer_than_an_ordinary_command(d: Driver) -> None:
    rows = "".join(f"urn:test:c{i},en,craft number {i},handiwork {i}|old trade {i}\n" for i in range(80))
    assert len(rows) > 2 * d.bot.services.settings.max_argument_chars
    out = import_csv(d, text=rows)
    assert keys(out) == ["taxonomy.imported"] and "80 concepts read, 240 new labels" in everything(out)
    assert keys(d.say("sophie", "dm", "who knows " + "x" * 2100)) == ["error.too_long"]  # other commands keep the limit


ESCO_LIKE = '''conceptType,conceptUri,skillType,reuseLevel,preferredLabel,altLabels,hiddenLabels,status,modifiedDate,scopeNote,definition,inScheme,description
KnowledgeSkillCompetence,urn:test:glass,skill/competence,sector-specific,souffler le verre,"soufflage du verre
verrerie soufflée",,released,2016-12-20T19:32:43Z,,"Façonner le verre, à chaud.",urn:test:scheme,"Une description, avec ""guillemets"" et virgules."
KnowledgeSkillCompetence,urn:test:rope,skill/competence,cross-sector,épisser des cordages,matelotage,,released,2016-12-20T19:32:43Z,,,urn:test:scheme,
'''


def test_an_esco_shaped_export_with_its_language_given_on_the_command(d: Driver) -> None:
    d.say("emma", "dm", "lang en")
    d.say("emma", "dm", "skills add glass blowing")
    out = import_csv(d, text="")  # nothing after the command line
    assert keys(out) == ["error.missing_argument"]
    d.say("camille", "dm", "lang en")
    out = d.say("camille", "dm", "taxonomy import fr\n" + ESCO_LIKE)
    assert keys(out) == ["taxonomy.imported"] and "2 concepts read, 5 new labels" in everything(out)
    out = d.say("camille", "dm", "taxonomy import en\nconceptUri,preferredLabel\nurn:test:glass,glass blowing\n")
    assert "1 new label" in everything(out)
    # A French declarer of an alternative label joins the concept's declared topic; with none
    # declared, the French preferred label (the rows' language came from the command).
    out = d.say("sophie", "dm", "compétences ajouter verrerie soufflée, matelotage")
    assert "verrerie soufflée → glass blowing" in everything(out)
    assert "matelotage → épisser des cordages" in everything(out)
    assert "Emma" in everything(d.say("sophie", "dm", "qui connaît soufflage du verre"))
    with d.session() as s:
        langs = dict(s.execute(select(TaxonomyLabel.label, TaxonomyLabel.lang)).all())
    assert langs["souffler le verre"] == "fr" and langs["glass blowing"] == "en"
