"""Pulse surveys (issue 18) through every adapter: the creation form from a template in the
reader's language, who may create, a button pressed by someone the survey was not sent to,
the list, and what `privacy` says about survey answers. (Form submissions and the jobs' DMs
are covered in tests/test_surveys.py: scenario steps are typed text.)"""
from tests.scenarios import MATRIX_FORM, Differs, Scenario, Step

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
]
