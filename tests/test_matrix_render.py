"""Replies → Matrix message contents (adapters/matrix/render.py), pure: no homeserver."""
from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.matrix import render as rd
from bot.i18n import Prompts
from bot.text import Names, code_span, link_marker, mention_marker, ping_marker
from bot.types import Action, Card, Form, FormField, Picture, Reply

NAMES = Names({"@sophie:example.org": "Sophie <Martin>", "@julien:example.org": "Julien"}, {"!r:example.org": "sales"})


@pytest.fixture(scope="module")
def t() -> Any:
    prompts = Prompts.load()
    return lambda key, **p: prompts.t("en", key, **p)


def floats(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(floats(v) for v in value.values())
    if isinstance(value, list):
        return any(floats(v) for v in value)
    return False


def test_user_text_is_escaped_and_never_pings(t: Any) -> None:
    text = 'hi <a href="https://matrix.to/#/@julien:example.org">x</a> <script>1</script> & @room @julien:example.org'
    content = rd.render(Reply(text=text), NAMES, t).content
    assert content["msgtype"] == "m.notice" and content["format"] == "org.matrix.custom.html"
    assert "<a " not in content["formatted_body"] and "<script>" not in content["formatted_body"]
    assert "&lt;script&gt;" in content["formatted_body"] and "&amp;" in content["formatted_body"]
    assert content["m.mentions"] == {}  # always sent: no body-based push rule (@room, names) applies
    assert "@room" not in content["body"] and "@\u2060room" in content["body"]


def test_a_live_ping_is_a_pill_listed_in_m_mentions_and_a_named_person_is_not(t: Any) -> None:
    text = f"{ping_marker('@sophie:example.org')} thanks {mention_marker('@julien:example.org')}"
    content = rd.render(Reply(text=text), NAMES, t).content
    assert content["formatted_body"] == ('<a href="https://matrix.to/#/@sophie:example.org">Sophie &lt;Martin&gt;</a>'
                                         " thanks @Julien")
    assert content["body"] == "Sophie <Martin> thanks @Julien"
    assert content["m.mentions"] == {"user_ids": ["@sophie:example.org"]}


def test_a_stale_or_typed_ping_marker_is_only_a_name(t: Any) -> None:
    forged = "\u27e6*deadbeef@@julien:example.org\u27e7"
    content = rd.render(Reply(text=forged), NAMES, t).content
    assert content["m.mentions"] == {} and "<a " not in content["formatted_body"]


def test_room_links_and_names_and_code_spans(t: Any) -> None:
    text = f"see {link_marker('!r:example.org')} and {code_span('/causette help')} <b>"
    content = rd.render(Reply(text=text), NAMES, t, command="/causette").content
    assert '<a href="https://matrix.to/#/!r:example.org">#sales</a>' in content["formatted_body"]
    assert "<code>!causette help</code>" in content["formatted_body"] and "`!causette help`" in content["body"]
    assert content["formatted_body"].endswith("&lt;b&gt;")


def test_a_card_lists_its_actions_as_numbered_commands(t: Any) -> None:
    card = Card(title="Idea #12 <x>", body="Better coffee", fields=(("Votes", "3"),), sections=(("Why", "taste"),),
                actions=(Action("Vote", "idea vote 12"), Action("Follow", "idea follow 12")), footer="by Sophie")
    rendered = rd.render(Reply(text="fallback", card=card), NAMES, t)
    body, html = rendered.content["body"], rendered.content["formatted_body"]
    assert rendered.actions == ("idea vote 12", "idea follow 12")
    assert "1. Vote — !causette idea vote 12" in body and "2. Follow — !causette idea follow 12" in body
    assert "<ol><li>Vote — <code>!causette idea vote 12</code></li>" in html
    assert "<strong>Idea #12 &lt;x&gt;</strong>" in html and "<li><strong>Votes</strong>: 3</li>" in html
    assert "Reply to this message with the number" in body


def test_a_huge_reply_is_shortened_under_the_event_limit_with_a_note(t: Any) -> None:
    rendered = rd.render(Reply(text="x" * 200_000), NAMES, t)
    assert rd.size_of(rendered.content) <= rd.MAX_BYTES
    assert rendered.content["body"].endswith(t("matrix.truncated"))


def test_no_floats_in_any_content(t: Any) -> None:
    picture = Picture(png=b"\x89PNG", alt="chart of @room", filename="c.png")
    rendered = rd.render(Reply(text="chart", picture=picture), NAMES, t)
    assert rendered.picture is picture and not floats(rendered.content)
    image = rd.image_content(picture.alt, "mxc://x/y", 1234, 640, 480, "c.png")
    assert image["msgtype"] == "m.image" and image["info"] == {"mimetype": "image/png", "size": 1234, "w": 640, "h": 480}
    assert not floats(image) and "@room" not in image["body"]
    file = rd.file_content("export.csv", "mxc://x/z", 10, "text/csv", {"key": {"k": "v"}, "iv": "i", "hashes": {}, "v": "v2"})
    assert file["file"]["url"] == "mxc://x/z" and "url" not in file
    json.dumps(rendered.content, allow_nan=False)


def test_a_form_says_it_continues_in_the_direct_chat(t: Any) -> None:
    form = Form(title="Suggest", submit_command="suggest send", fields=(FormField("text", "Your idea"),))
    rendered = rd.render(Reply(text="Tell me", form=form), NAMES, t)
    assert rendered.form is form and "1 question for “Suggest”" in rendered.content["body"]


def test_edits_and_threads() -> None:
    content = {"msgtype": "m.notice", "body": "new", "format": "org.matrix.custom.html", "formatted_body": "new", "m.mentions": {}}
    edit = rd.edit_content(content, "$orig")
    assert edit["m.new_content"] == content and edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$orig"}
    assert edit["body"] == "* new"
    threaded = rd.in_thread(content, "$root")
    assert threaded["m.relates_to"]["rel_type"] == "m.thread" and threaded["m.relates_to"]["event_id"] == "$root"


def test_numbers_and_keycaps() -> None:
    assert rd.number_of("2") == 2 and rd.number_of(" #3 ") == 3 and rd.number_of("1.") == 1
    assert rd.number_of("2\ufe0f\u20e3") == 2 and rd.number_of("\U0001f51f") == 10
    assert rd.number_of("11") is None and rd.number_of("0") is None and rd.number_of("two") is None
