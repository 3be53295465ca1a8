"""Pulse surveys (issue 18) through every adapter: the creation form from a template in the
reader's language, who may create, a button pressed by someone the survey was not sent to,
the list, and what `privacy` says about survey answers; then a whole survey played with the
platforms' own buttons and forms (`Step.press`, `Step.submit`): created from the form, the
invitation DM's button opens the questionnaire, an answer goes in, a second anonymous answer
(from a questionnaire opened twice) is refused, results stay hidden under the minimum group,
then show with the small segments suppressed."""
from tests.scenarios import MATRIX_FORM, Differs, Scenario, Step

ANSWER = ("surveys.answer_intro_anonymous", "surveys.thanks_anonymous")
# On Matrix the questionnaire is a guided exchange: its first question follows the intro.
OPENED_ON_MATRIX = Differs("matrix", ("surveys.answer_intro_anonymous", "matrix.form_question"), MATRIX_FORM)
ANSWERED_ON_MATRIX = Differs("matrix", ("surveys.answer_intro_anonymous", "matrix.form_question", "surveys.thanks_anonymous"),
                             MATRIX_FORM)


def answer(who: str, scale: str, enps: str) -> Step:
    """`who` presses the invitation's Answer button and sends the questionnaire (template
    "satisfaction": two 1–5 scales q1 q2, eNPS q3, free text q4)."""
    return Step(who, "dm", "", press="survey answer", submit={"q1": scale, "q2": "4", "q3": enps, "q4": "Plus de cafés"},
                expect=ANSWER, differs=(ANSWERED_ON_MATRIX,))


SCENARIOS = [
    Scenario("surveys: templates, who may create, buttons, privacy", (
        Step("julien", "dm", "sondage nouveau modèle enps", expect=("surveys.form_intro",),
             contains=("formulaire du sondage",),
             differs=(Differs("matrix", ("surveys.form_intro", "matrix.form_question"), MATRIX_FORM),)),
        Step("camille", "dm", "survey new template satisfaction", expect=("surveys.form_intro",),
             differs=(Differs("matrix", ("surveys.form_intro", "matrix.form_question"), MATRIX_FORM),)),
        Step("james", "dm", "survey new", expect=("surveys.error.not_allowed",), contains=("animators",)),
        Step("julien", "dm", "survey new template weather", expect=("surveys.error.template",), contains=("enps",)),
        Step("james", "dm", "survey answer 7", expect=("surveys.error.not_found",), contains=("#7",)),
        Step("julien", "dm", "sondage liste", expect=("surveys.list_empty",)),
        Step("james", "dm", "privacy", expect=("privacy.explained",), contains=("random number", "5 people")),
    )),
    Scenario("surveys: created from the form, answered through the DM's button and form, results", (
        Step("julien", "dm", "sondage nouveau modèle satisfaction", expect=("surveys.form_intro",),
             differs=(Differs("matrix", ("surveys.form_intro", "matrix.form_question"), MATRIX_FORM),)),
        Step("julien", "dm", "", submit={"title": "Pouls des ventes", "audience": "channel", "audience_value": "sales",
                                         "closes": "3"},
             expect=("surveys.created_anonymous",), contains=("Pouls des ventes", "anonyme")),
        # The invitations go at the next run of `surveys.send` (Monday 09:00 UTC: 10:00 in Paris).
        Step("thomas", "dm", "", advance="+2m", press="survey answer", expect=("surveys.answer_intro_anonymous",),
             contains=("anonyme",), differs=(OPENED_ON_MATRIX,)),
        Step("thomas", "dm", "", press="survey answer", expect=("surveys.answer_intro_anonymous",),  # opened twice
             differs=(OPENED_ON_MATRIX,)),
        Step("thomas", "dm", "", submit={"q1": "4", "q2": "5", "q3": "9"}, expect=("surveys.thanks_anonymous",),
             contains=("sans votre nom",)),
        Step("thomas", "dm", "", submit={"q1": "1", "q2": "1", "q3": "0"}, expect=("surveys.error.twice",),
             contains=("déjà répondu",),
             differs=(Differs("matrix", (), "Matrix keeps one guided exchange per person: the questionnaire opened "
                                            "again replaced the first, and the one sent is over, so there is no second "
                                            "one to send (answering twice is refused at the button: next step)"),)),
        Step("thomas", "dm", "", press="survey answer", expect=("surveys.error.twice",)),
        Step("julien", "dm", "sondage résultats 1", expect=("survey_results.report",),
             contains=("Moins de 5 réponses pour l'instant",), absent=("Plus de cafés", "Moyenne")),
        answer("sophie", "5", "10"),
        answer("chloe", "3", "7"),
        answer("nathan", "4", "6"),
        Step("james", "dm", "", press="survey answer", submit={"q1": "2", "q3": "8"}, expect=ANSWER,
             contains=("without your name",), differs=(ANSWERED_ON_MATRIX,)),
        Step("julien", "dm", "sondage résultats 1", expect=("survey_results.report",) + ("survey_results.chart_of",) * 2,
             contains=("5 réponses sur", "Moyenne : 3,6 sur 5", "eNPS : 20", "Plus de cafés", "Sales : moins de 5",
                       "Moins de 5 personnes ont répondu à cette question : non affichée."),
             absent=("pour l'instant",)),
    )),
]
