"""Follow, feed, subscriptions within the notification budget, the privacy contract,
export and erasure — through every adapter's harness.

Jobs' output during `advance` is not recorded by the harnesses, so pings are observed
through `notifications`, which counts today's pings and the direct messages they made."""
from tests.scenarios import Scenario, Step

SCENARIOS = [
    Scenario("follow a colleague and read the feed", (
        Step("lucas", "#engineering", "lang en", expect=("lang.set",)),
        Step("lucas", "#engineering", "follow @thomas", expect=("social.followed",)),
        Step("thomas", "#engineering", "Nouveau runbook #kubernetes pour les mises à jour", command=False, expect=()),
        Step("lucas", "dm", "feed", expect=("feed.page",), contains=("Nouveau runbook", "Thomas", "#engineering")),
        Step("lucas", "dm", "following", expect=("social.following",), contains=("Thomas",)),
        Step("thomas", "dm", "followers", expect=("social.followers",), contains=("Lucas",)),
        Step("emma", "dm", "followers @thomas", expect=("social.followers_count",), absent=("Lucas",)),
        Step("lucas", "dm", "unfollow @thomas", expect=("social.unfollowed",)),
        Step("lucas", "dm", "feed", expect=("feed.no_follows",)),
    )),
    Scenario("subscribe: one grouped ping, held in quiet hours", (
        Step("thomas", "dm", "lang en", expect=("lang.set",)),
        Step("thomas", "dm", "subscribe #terraform", expect=("social.subscribed",)),
        Step("lucas", "#engineering", "The #terraform modules are ready for review", command=False, expect=()),
        Step("lucas", "#engineering", "And the #terraform docs are up to date", command=False, expect=()),
        Step("thomas", "dm", "notifications", advance="+10m", expect=("notifications.settings",),
             contains=("2 pings in 1 message",)),
        Step("thomas", "dm", "quiet hours 09:00-23:00", expect=("notifications.quiet_set",)),
        Step("lucas", "#engineering", "One more #terraform change", command=False, expect=()),
        Step("thomas", "dm", "notifications", advance="+10m", expect=("notifications.settings",), contains=("2 pings in 1 message",)),
        Step("thomas", "dm", "topic #terraform", expect=("topic.card",), contains=("Lucas", "One more")),
    )),
    Scenario("a private channel never leaks", (
        Step("nathan", "dm", "lang en", expect=("lang.set",)),
        Step("nathan", "dm", "subscribe @camille", expect=("social.subscribed",)),
        Step("nathan", "dm", "subscribe #réorganisation", expect=("social.subscribed",)),
        Step("camille", "#direction", "Budget #réorganisation T1 validé", command=False, expect=()),
        Step("camille", "#general", "Town hall on Friday #onboarding", command=False, expect=()),
        Step("nathan", "dm", "feed", expect=("feed.page",), contains=("Town hall",),
             absent=("Budget", "Confidentiel", "direction")),
        Step("nathan", "dm", "topic #réorganisation", expect=("topic.unknown",), absent=("Camille", "Budget")),
        Step("nathan", "dm", "who knows réorganisation", expect=("expert.none",), absent=("Camille", "Budget", "Confidentiel")),
        Step("nathan", "dm", "notifications", advance="+10m", expect=("notifications.settings",), contains=("1 ping in 1 message",)),
        Step("sophie", "dm", "follow #réorganisation", expect=("social.followed",)),
        Step("sophie", "dm", "feed", expect=("feed.page",), contains=("Budget",)),
    )),
    Scenario("privacy switches, export and erasure", (
        Step("hugo", "dm", "lang en", expect=("lang.set",)),
        Step("hugo", "dm", "privacy", expect=("privacy.explained",), contains=("180",)),
        Step("thomas", "#sales", "privacy channel off", expect=("error.not_allowed",), contains=("Julien",)),
        Step("hugo", "dm", "export my data", expect=("privacy.exported",)),
        Step("hugo", "dm", "forget me", expect=("privacy.forget_confirm",), contains=("forget me confirm",)),
        Step("hugo", "dm", "forget me confirm", expect=("privacy.forgotten",)),
        Step("lea", "dm", "topic #RGPD", expect=("topic.unknown",), absent=("Hugo", "retention")),
    )),
]
