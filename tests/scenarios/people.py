"""Profiles, skills and expertise lookup, told with the demo cast (commands only)."""
from tests.scenarios import Differs, Scenario, Step

SCENARIOS = [
    Scenario("who knows, profile, skills, in both languages", (
        Step("james", "#sales", "who knows kubernets", expect=("expert.results",),
             contains=("Close matches", "kubernetes", "Thomas"), absent=('Matching "',)),
        Step("james", "#sales", "profile @thomas", expect=("profile.card",),
             contains=("Technical Account Manager", "kubernetes — declared", "Europe/Paris")),
        Step("james", "#sales", "skills add kubernetes, appel d'offres", expect=("skills.added",),
             contains=("kubernetes", "appel d'offres")),
        Step("james", "#sales", "lang fr", expect=("lang.set",)),
        Step("james", "#sales", "qui connaît appel d'offres", expect=("expert.results",),
             contains=("Correspondent à", "a déclaré appel d'offres"), absent=("James",)),  # never the asker
        Step("chloe", "#sales", "qui connaît appel d'offres", expect=("expert.results",), contains=("James",)),
        Step("james", "#sales", "qui connait AO", expect=("expert.results",), contains=("appel d'offres",)),
        Step("james", "#sales", "expert negociation", expect=("expert.results",), contains=("négociation",)),
        Step("james", "#sales", "qui connaît la vannerie quantique", expect=("expert.none",),
             contains=("compétences ajouter",)),
    )),
    Scenario("profile settings and bad input", (
        Step("emily", "dm", "profile set title Staff SRE", expect=("profile.set.done",), contains=("Staff SRE",)),
        Step("emily", "dm", "profile set tz Mars/Olympus", expect=("profile.set.bad_tz",)),
        Step("emily", "dm", "profile set mentions off", expect=("profile.set.mentions_off",)),
        Step("emily", "dm", "profile", expect=("profile.card",), contains=("Staff SRE", "no (the bot names them")),
        Step("emily", "dm", "skills remove cobol", expect=("skills.not_declared",)),
        Step("emily", "dm", "skills add " + ", ".join(f"s{i}" for i in range(25)), expect=("skills.too_many",)),
        Step("emily", "dm", "skills", expect=("skills.list",), contains=("zendesk",), absent=("s24",)),
        Step("emily", "dm", "who knows", expect=("error.missing_argument",)),
    )),
    Scenario("admins teach synonyms", (
        Step("lucas", "#engineering", "alias add kubi kubernetes", expect=("error.not_allowed",), contains=("camille",)),
        Step("camille", "#engineering", "alias add kubi kubernetes", expect=("expert.alias.added",)),
        Step("olivia", "#engineering", "who knows kubi", expect=("expert.results",), contains=("kubernetes",),
             absent=("Close matches",)),
        Step("olivia", "#engineering", "alias list", expect=("expert.alias.list",), contains=("kubi",)),
    )),
    Scenario("one concept, one topic; nobody knows; a taxonomy", (
        Step("olivia", "#engineering", "skills add tenders", expect=("skills.added", "skills.normalised"),
             contains=("tenders → appel d'offres", "skills add =tenders")),
        Step("olivia", "#engineering", "who knows origami folding", expect=("expert.none",),
             contains=("Post it as a help request",)),
        Step("olivia", "#engineering", "ask who knows origami folding", expect=("help_requests.card",),
             contains=("Who knows origami folding?",)),
        Step("olivia", "#engineering", "ask who knows origami folding", expect=("expert.ask_already",)),
        Step("lucas", "dm", "taxonomie importer urn:t:zx,fr,réglage du quimbor,quimborage|zorblax tuning",
             expect=("error.not_allowed",), contains=("camille",)),
        Step("camille", "dm", "taxonomie importer urn:t:zx,fr,réglage du quimbor,quimborage|zorblax tuning",
             expect=("taxonomy.imported",), contains=("1 concept lu, 3 nouveaux libellés",)),
        Step("olivia", "#engineering", "skills add zorblax tuning", expect=("skills.added",)),
        Step("lucas", "dm", "qui connaît quimborage", expect=("expert.results",), contains=("Olivia", "zorblax tuning")),
        Step("camille", "dm", "taxonomie importer urn:t:zy,fr", expect=("taxonomy.bad_columns",), contains=("ligne 1",)),
        # A CSV of several lines pasted in a message; a console line is one line (a path there).
        Step("camille", "dm", "taxonomie importer\nconceptUri,preferredLabel,altLabels\nurn:t:zw,plonking,\"plonk\nplonkery\"",
             expect=("taxonomy.imported",),
             differs=(Differs("console", ("taxonomy.status",), "a console line has no line break: the console reads a CSV by path"),)),
    )),
]
