"""Forms on Matrix as a guided exchange (adapters/matrix/forms.py), pure: no homeserver."""
from __future__ import annotations

from typing import Any

import pytest

from adapters.matrix import forms
from bot.i18n import Prompts
from bot.types import ConversationRef, Form, FormField, UserRef

ORIGIN = ConversationRef("matrix", "example.org", "!sales:example.org", "public", name="sales")
FORM = Form(title="Suggest", submit_command="suggest send", fields=(
    FormField("text", "Your suggestion", required=True, max_length=20),
    FormField("kind", "Kind", kind="select", options=(("idea", "An idea"), ("bug", "A problem")), value="idea"),
    FormField("anonymous", "Stay anonymous?", kind="checkbox"),
    FormField("note", "A note", kind="multiline"),
))
SOPHIE = UserRef("matrix", "example.org", "@sophie:example.org", "Sophie")


@pytest.fixture(scope="module")
def t() -> Any:
    prompts = Prompts.load()
    return lambda key, **p: prompts.t("fr", key, **p)


def test_a_form_is_asked_field_by_field_then_submitted_where_it_was_opened(t: Any) -> None:
    session = forms.FormSession.start(FORM, "!dm:example.org", ORIGIN, thread_id="$root")
    text, key = forms.question(session, t)
    assert key == "matrix.form_question" and "Your suggestion" in text and "1 sur 4" in text and "annuler" in text
    assert forms.answer(session, "").error == ("matrix.form_required", {})
    too_long = forms.answer(session, "x" * 21)
    assert too_long.error is not None and too_long.error[0] == "matrix.form_too_long"
    assert forms.answer(session, "Better coffee").error is None
    text, _ = forms.question(session, t)
    assert "1. An idea" in text and "2. A problem" in text and "An idea" in text.split("\n")[-3]  # the current value
    assert forms.answer(session, "7").error == ("matrix.form_bad_choice", {"last": 2})
    assert forms.answer(session, "2").error is None
    assert forms.answer(session, "peut-être").error == ("matrix.form_bad_yes_no", {})
    assert forms.answer(session, "oui").error is None
    assert forms.answer(session, "-").error is None  # optional: left empty
    assert session.done
    msg = forms.submission(session, SOPHIE, "$answer")
    assert msg.text == "suggest send" and msg.via == "form" and msg.addressed
    assert msg.form_values == {"text": "Better coffee", "kind": "bug", "anonymous": "true", "note": ""}
    assert msg.conversation == ORIGIN and msg.thread_id == "$root" and msg.sender == SOPHIE


def test_a_select_by_label_and_keeping_a_prefilled_value() -> None:
    session = forms.FormSession.start(FORM, "!dm:example.org", ORIGIN)
    forms.answer(session, "idée")  # any text for the first field
    assert forms.answer(session, "=").error is None and session.values["kind"] == "idea"
    session = forms.FormSession.start(FORM, "!dm:example.org", ORIGIN)
    forms.answer(session, "x")
    assert forms.answer(session, "a problem").error is None and session.values["kind"] == "bug"


def test_cancel_in_either_language_and_required_fields_cannot_be_skipped() -> None:
    session = forms.FormSession.start(FORM, "!dm:example.org", ORIGIN)
    assert forms.answer(session, "-").error == ("matrix.form_required", {})
    assert forms.answer(session, "Annuler").cancelled and forms.answer(session, "cancel").cancelled
    assert session.index == 0


def test_a_session_survives_a_restart_as_json() -> None:
    session = forms.FormSession.start(FORM, "!dm:example.org", ORIGIN)
    forms.answer(session, "Better coffee")
    again = forms.loads(forms.dumps(session))
    assert again == session and again is not None and again.field() == FORM.fields[1]
    assert forms.loads("not json") is None and forms.loads("[1]") is None


def test_a_score_is_answered_as_it_reads_not_by_its_place_in_the_list(t: Any) -> None:
    """An eNPS question's choices are 0 … 10: numbered, "9" would have meant the 9th choice (8)."""
    score = FormField("q3", "Would you recommend us?", kind="select", options=tuple((str(v), str(v)) for v in range(11)))
    scale = FormField("q1", "Satisfied?", kind="select", options=(("1", "1 – pas du tout"), ("2", "2"), ("3", "3 – tout à fait")))
    form = Form(title="Pulse", submit_command="survey submit 1", fields=(score, scale))
    session = forms.FormSession.start(form, "!dm:example.org", ORIGIN)
    text, _ = forms.question(session, t)
    assert "0 · 1 · 2" in text and "10" in text and "1. 0" not in text and "l'une de ces valeurs" in text
    bad = forms.answer(session, "11")
    assert bad.error is not None and bad.error[0] == "matrix.form_bad_value" and "0 · 1" in str(bad.error[1]["values"])
    assert forms.answer(session, "9").error is None and session.values["q3"] == "9"
    text, _ = forms.question(session, t)
    assert "1. 1 – pas du tout" in text and "3. 3 – tout à fait" in text  # other selects stay numbered
    assert forms.answer(session, "3").error is None and session.values["q1"] == "3"
    again = forms.FormSession.start(form, "!dm:example.org", ORIGIN)
    assert forms.answer(again, "0").error is None and again.values["q3"] == "0"
