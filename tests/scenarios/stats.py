"""Adoption analytics (issue 15), told with the demo cast: the animator's figures with their
chart, a refusal that names who can, the organisation and its export for the admin, a
department référent, one's own figures, a period past the limit, the definitions."""
from tests.scenarios import Scenario, Step

SCENARIOS = [
    Scenario("adoption figures for animators, référents and admins", (
        Step("julien", "dm", "stats #sales", expect=("stats.report",),
             contains=("Adoption", "Contributeurs", "20–25 %", "moins de 5"), absent=("Chloé", "Sophie")),
        Step("thomas", "dm", "stats #sales", expect=("error.not_allowed",), contains=("Julien", "camille")),
        Step("sophie", "dm", "stats #sales 13 months", expect=("stats.period_too_long",), contains=("12",)),
        Step("camille", "dm", "stats all 90d", expect=("stats.report",), absent=("direction",)),
        Step("camille", "dm", "stats export 90d", expect=("stats.exported",)),
        Step("camille", "dm", "role add @sophie referent department Sales", expect=("roles.added",), contains=("Sales",)),
        Step("sophie", "dm", "statistiques service Sals", expect=("stats.unknown_scope_suggest",), contains=("Sales",)),
        Step("sophie", "dm", "statistiques service Sales 3 mois", expect=("stats.report",), contains=("Par site",)),
        Step("sophie", "dm", "statistiques site Lyon", expect=("error.not_allowed",)),
        Step("james", "dm", "stats me", expect=("stats.me_nothing",)),
        Step("sophie", "dm", "stats me 90d", expect=("stats.me",), contains=("Messages",)),
        Step("james", "dm", "help stats", expect=("stats.definitions",), contains=("Slack and Teams do not tell bots who reads",)),
    )),
]
