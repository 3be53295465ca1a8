from tests.scenarios import Scenario, Step

SCENARIOS = [
    Scenario("help and language", (
        Step("thomas", "#engineering", "lang en", expect=("lang.set",)),
        Step("thomas", "#engineering", "help", expect=("help.overview",), contains=("help",)),
        Step("thomas", "#engineering", "lang fr", expect=("lang.set",), contains=("français",)),
        Step("thomas", "#engineering", "aide", expect=("help.overview",), contains=("Général",)),
        Step("thomas", "#engineering", "blablabla", expect=("error.unknown_command_no_hint",)),
        Step("thomas", "#engineering", "hlep", expect=("error.unknown_command",), contains=("aide",)),
    )),
    Scenario("roles are for admins", (
        Step("thomas", "#sales", "lang en", expect=("lang.set",)),
        Step("thomas", "#sales", "role add @lucas animator #sales", expect=("error.not_allowed",), contains=("camille",)),
        Step("camille", "#sales", "role add @lucas animator #sales", expect=("roles.added",)),
        Step("camille", "#sales", "role list #sales", expect=("roles.list",), contains=("Lucas",)),
    )),
]
