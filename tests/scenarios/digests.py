"""Digests through every adapter. Jobs' output during `advance` is not recorded by the
harnesses, so posts are observed through `digest list`, which shows each digest's latest
period, its outcome, the number of posts so far and the sections of the latest post."""
from tests.scenarios import Scenario, Step

SCENARIOS = [
    Scenario("digest: scheduled, posted once with its sections", (
        Step("julien", "#general", "digest schedule #sales weekly monday 11:00 Europe/Paris", expect=("digest.scheduled",),
             contains=("#sales", "lundi", "11:00")),
        Step("sophie", "#sales", "Qui a déjà répondu à un appel d'offres Airbus ? #appeloffres", command=False, expect=()),
        Step("julien", "#general", "digest preview #sales", expect=("digest.preview",), contains=("Airbus", "Les plus discutés")),
        Step("julien", "#general", "digest list", advance="+2h", expect=("digest.list",),
             contains=("publié", "publications : 1", "Les plus discutés")),
        Step("julien", "#general", "digest list", advance="+2h", expect=("digest.list",), contains=("publications : 1",)),
        Step("thomas", "#sales", "digest pause 1", expect=("error.not_allowed",), contains=("Julien",)),
        Step("julien", "#general", "digest pause 1", expect=("digest.paused",)),
    ), tags=("digests",)),
    # #support: every author of the demo history there is a member already (a first message
    # elsewhere records its author as joining "now", which a digest rightly lists as a newcomer).
    Scenario("digest: an empty period posts nothing", (
        Step("camille", "#general", "digest schedule #support daily 11:00", expect=("digest.scheduled",)),
        Step("camille", "#general", "digest list", advance="+2h", expect=("digest.list",),
             contains=("rien de nouveau", "publications : 0")),
    ), tags=("digests",)),
    Scenario("digest: only animators and admins schedule", (
        Step("thomas", "#sales", "digest schedule #sales weekly monday 09:00", expect=("error.not_allowed",),
             contains=("Julien", "camille")),
        Step("thomas", "#sales", "digest list", expect=("digest.list_none",)),
        Step("julien", "#general", "digest planifier #direction chaque lundi 9h", expect=("error.not_allowed",)),
    ), tags=("digests",)),
]
