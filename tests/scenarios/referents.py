"""Référents through every adapter: a suggestion routed to the channel's référent, taken and
answered; an access request approved (Slack invites through the Web API, Matrix through the
client API, the console adds the person itself, Teams tells the approver what to click) and a channel request declined.

Pings to the référent and the author go to their grouped DM (the notification budget), which
the harnesses do not record during a step: each step checks the replies it gets."""
from tests.scenarios import Differs, Scenario, Step

TEAMS_BY_HAND = "a Teams bot cannot add members without Graph: the approver gets the clicks that do it"

SCENARIOS = [
    Scenario("référents: a suggestion reaches the channel's référent", (
        Step("thomas", "#sales", "suggest Pin the 2026 price list in the channel", expect=("suggestions.filed",),
             contains=("Sophie",)),
        Step("hugo", "dm", "suggestion take 1", expect=("suggestions.not_found",)),
        Step("thomas", "dm", "suggestion take 1", expect=("suggestions.not_handler",)),
        Step("sophie", "dm", "suggestion take 1", expect=("suggestions.taken",)),
        Step("sophie", "dm", "suggestion answer 1 Done, it is pinned at the top", expect=("suggestions.answered",)),
        Step("sophie", "dm", "suggestion done 1", expect=("suggestions.closed",)),
        Step("thomas", "dm", "suggestions", expect=("suggestions.list",), contains=("price list",)),
        Step("lucas", "dm", "suggest anon Fewer meetings on Fridays", expect=("suggestions.filed_anon",),
             contains=("Camille",)),
        Step("camille", "dm", "suggestion show 2", expect=("suggestions.shown",), absent=("Lucas",)),
        Step("camille", "dm", "suggestion author 2", expect=("suggestions.author_is",), contains=("Lucas",)),
        Step("camille", "dm", "audit suggestions", expect=("audit.list",), contains=("suggestion.done",), absent=("Lucas",)),
        Step("camille", "dm", "audit anonymous", expect=("audit.list",), contains=("suggestion.author_revealed",)),
        Step("sophie", "dm", "audit", expect=("audit.list",), contains=("suggestion.done",), absent=("author_revealed",)),
        Step("thomas", "dm", "audit", expect=("error.not_allowed",)),
        # A department référent (issue 15's scoped roles): thomas works in Support.
        Step("thomas", "dm", "referent", expect=("referents.none",), contains=("Camille",)),
        Step("camille", "dm", "role add @alice referent department Suport", expect=("stats.unknown_scope_suggest",),
             contains=("Support",)),
        Step("camille", "dm", "role add @alice referent department Support", expect=("roles.added",)),
        Step("thomas", "#sales", "référent", expect=("referents.yours",), contains=("Sophie", "Julien", "Alice")),
        Step("lucas", "dm", "referent #direction", expect=("error.unknown_channel",), absent=("Julien",)),
        Step("thomas", "dm", "suggest A shared glossary of support macros", expect=("suggestions.filed",), contains=("Alice",)),
        Step("alice", "dm", "suggestion take 3", expect=("suggestions.taken",)),
        Step("camille", "dm", "audit roles", expect=("audit.list",), contains=("role.add",)),
    )),
    Scenario("référents: access and channel requests", (
        Step("emma", "dm", "request access #sales", expect=("requests.filed",), contains=("Julien", "Sophie")),
        Step("emma", "dm", "request access #sales", expect=("requests.already_requested",)),
        Step("hugo", "dm", "request approve 1", expect=("requests.not_found",)),
        Step("julien", "dm", "request approve 1", expect=("requests.approved",),
             differs=(Differs("teams", ("requests.approved", "requests.manual.access"), TEAMS_BY_HAND),)),
        Step("sophie", "dm", "request approve 1", expect=("requests.already_done",),
             differs=(Differs("teams", ("requests.already_approved",), TEAMS_BY_HAND),)),
        Step("thomas", "dm", 'request channel #sales "more sales"', expect=("requests.channel_exists",)),
        Step("thomas", "dm", 'request channel #Tenders.Aero "tenders"', expect=("requests.name_invalid_try",),
             contains=("tenders-aero",)),
        Step("thomas", "dm", 'request channel #tenders-aero "Answer aeronautics tenders together"',
             expect=("requests.filed",), contains=("Camille",)),
        Step("camille", "dm", "request decline 2 Use #sales for now", expect=("requests.declined",)),
        Step("camille", "dm", "request approve 2", expect=("requests.already_declined",)),
    )),
    Scenario("référents: a channel's welcome and the tour", (
        Step("julien", "#sales", "welcome set #sales fr Ici on parle ventes et appels d'offres", expect=("welcome.set_missing",)),
        Step("thomas", "#sales", "welcome off #sales", expect=("error.not_allowed",), contains=("Julien",)),
        Step("emma", "dm", "welcome show #sales", expect=("welcome.shown",), contains=("Ici on parle ventes", "Julien", "Sophie")),
        Step("thomas", "dm", "tour", expect=("welcome.tour",)),
        Step("thomas", "dm", "tour 3", expect=("welcome.tour",)),
    )),
]
