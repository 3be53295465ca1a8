"""Slack rendering and parsing, pure: escaping, markers, Block Kit limits, modals."""
from __future__ import annotations

import json

from adapters.slack import inbound
from adapters.slack.client import Pacer
from adapters.slack.render import render_modal, render_reply
from bot.i18n import Prompts
from bot.text import Names, channel_marker, code_span, link_marker, mention_marker, ping_marker
from bot.types import Action, Card, Form, FormField, Reply
from tests.conftest import ROOT
from tests.slack_mock import block_kit_problems, view_problems


def fr(prompts: Prompts):  # type: ignore[no-untyped-def]
    return lambda key, **p: prompts.t("fr", key, **p)


def test_live_markers_ping_and_user_text_is_escaped(prompts: Prompts) -> None:
    reply = Reply(text=f"{ping_marker('U1')} in {link_marker('C9')}: <!channel> & <@U2> > x <https://evil|label> <#C3>")
    msg = render_reply(reply, fr(prompts))
    assert msg.text == ("<@U1> in <#C9>: &lt;!channel&gt; &amp; &lt;@U2&gt; &gt; x &lt;https://evil|label&gt; &lt;#C3&gt;")
    assert msg.blocks == []


def test_people_and_channels_named_in_user_text_appear_by_name_never_as_pings(prompts: Prompts) -> None:
    names = Names({"U9": "Sophie <Martin>"}, {"C9": "sales"})
    card = Card(title=f"Idea by {mention_marker('U9')}", body=f"in {channel_marker('C9')}",
                fields=((mention_marker("U9"), mention_marker("U8")),), actions=(Action(f"Thank {mention_marker('U9')}", "x"),))
    msg = render_reply(Reply(text=f"Added: {mention_marker('U9')} stuff", card=card), fr(prompts), names=names)
    blob = json.dumps(msg.text) + json.dumps(msg.blocks)
    assert "<@" not in blob and "<#" not in blob
    assert msg.text == "Added: @Sophie &lt;Martin&gt; stuff"
    assert msg.blocks[1]["text"]["text"] == "*Idea by @Sophie &lt;Martin&gt;*\nin #sales"
    assert msg.blocks[2]["fields"][0]["text"] == "*@Sophie &lt;Martin&gt;*\n@U8"
    assert msg.blocks[3]["elements"][0]["text"]["text"] == "Thank @Sophie <Martin>"


def test_a_live_marker_of_another_process_is_only_a_name(prompts: Prompts) -> None:
    forged = ping_marker("U9").replace(ping_marker("U9")[2:14], "0" * 12)
    assert render_reply(Reply(text=f"hi {forged}"), fr(prompts), names=Names({"U9": "Sophie"})).text == "hi @Sophie"


def test_prompt_code_spans_render_as_code_and_user_backticks_stay_text(prompts: Prompts) -> None:
    text = prompts.t("en", "error.unknown_command", suggestion="who <knows>", command="/causette")
    assert render_reply(Reply(text=text), fr(prompts)).text == (
        "I don't know that command. Did you mean `who &lt;knows&gt;`? Type `/causette help` for the list.")
    assert render_reply(Reply(text=code_span("a`b") + " `c`"), fr(prompts)).text == "`a'b` `c`"


def test_oversized_french_card_stays_inside_block_kit_limits(prompts: Prompts) -> None:
    long = "Négociation d'appels d'offres aéronautiques & <RGPD> " * 200
    card = Card(
        title="Résultats " * 40, body=long,
        fields=tuple((f"Compétence {i}", long) for i in range(37)),
        sections=tuple((f"Section {i}", long) for i in range(60)),
        actions=tuple(Action("Voir le profil détaillé de la personne " * 3, f"profile @p{i}") for i in range(60))
        + (Action("trop long", "x" * 2500),),
        footer=long,
    )
    msg = render_reply(Reply(text=long, card=card), fr(prompts))
    assert block_kit_problems(msg.blocks) == []
    assert len(msg.text) <= 4000 and len(msg.blocks) == 50
    assert msg.blocks[-1]["type"] == "context"
    assert prompts.t("fr", "slack.truncated") in json.dumps(msg.blocks, ensure_ascii=False)
    assert all("&lt;RGPD&gt;" in b["text"]["text"] for b in msg.blocks[:2])


def test_cutting_never_leaves_half_an_entity(prompts: Prompts) -> None:
    msg = render_reply(Reply(text="<" * 5000), fr(prompts))
    body = msg.text.split("\n")[0]
    assert body.rstrip("…").endswith("&lt;") and prompts.t("fr", "slack.truncated") in msg.text


def test_buttons_carry_their_command(prompts: Prompts) -> None:
    card = Card(title="t", actions=(Action("Voter", "idea vote 42", "primary"), Action("Non", "idea reject 42", "danger")))
    [_, _, actions] = render_reply(Reply(text="x", card=card), fr(prompts)).blocks
    assert [(b["value"], b.get("style")) for b in actions["elements"]] == [("idea vote 42", "primary"), ("idea reject 42", "danger")]
    assert len({b["action_id"] for b in actions["elements"]}) == 2


def test_form_becomes_a_valid_modal(prompts: Prompts) -> None:
    form = Form(title="Proposer une idée pour l'équipe", submit_command="idea submit", submit_label="Envoyer la proposition maintenant",
                fields=(FormField("title", "Titre", required=True, max_length=150), FormField("body", "Détails", kind="multiline", value="déjà"),
                        FormField("anon", "Anonyme", kind="checkbox", value="true"),
                        FormField("kind", "Type", kind="select", value="b", options=(("a", "A"), ("b", "B")))))
    view = render_modal(form, {"ch": "C1", "k": "public"}, fr(prompts))
    assert view_problems(view) == []
    assert json.loads(view["private_metadata"]) == {"ch": "C1", "k": "public", "cmd": "idea submit"}
    kinds = [b["element"]["type"] for b in view["blocks"]]
    assert kinds == ["plain_text_input", "plain_text_input", "checkboxes", "static_select"]
    assert view["blocks"][0]["optional"] is False and view["blocks"][1]["element"]["multiline"] is True
    assert view["blocks"][2]["element"]["initial_options"] and view["blocks"][3]["element"]["initial_option"]["value"] == "b"


def test_incoming_tokens_become_markers_and_plain_text() -> None:
    parsed = inbound.parse_text("hi <@U1|ann> &amp; <@U1> <#C2|sales> <https://a.b/c|doc> <https://a.b> <mailto:x@y.z|x@y.z> "
                                "<!here> <!subteam^S1|@devs> &lt;b&gt;", "T1")
    assert parsed.text == (f"hi {mention_marker('U1')} & {mention_marker('U1')} {channel_marker('C2')} doc (https://a.b/c) "
                           "https://a.b x@y.z @here @devs <b>")
    assert [(u.id, u.display_name, u.tenant) for u in parsed.mentions] == [("U1", "ann", "T1")]
    assert parsed.channels == ("C2",)
    assert inbound.parse_text("<@UBOT> help", "T1", strip_user="UBOT").text == " help"


def test_conversation_kinds() -> None:
    assert inbound.kind_from("D1") == "dm" and inbound.kind_from("C1", "im") == "dm"
    assert inbound.kind_from("C1", "group") == "private" and inbound.kind_from("G1") == "private"
    assert inbound.kind_from("C1", channel_name="mpdm-a--b-1") == "group" and inbound.kind_from("C1", "channel") == "public"


def test_pacer_spaces_posts_per_channel() -> None:
    slept: list[float] = []
    pacer = Pacer(1.0, sleep=slept.append)
    for channel in ("C1", "C1", "C2", "C1"):
        pacer.wait(channel)
    assert len(slept) == 2 and 0.9 < slept[0] <= 1.0 and 1.9 < slept[1] <= 2.0


def test_the_package_is_import_light() -> None:
    """The console and Teams never load Bolt or slack_sdk: only `mount` does."""
    import subprocess
    import sys

    code = ("import sys, adapters.slack, adapters.server, app; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('slack_bolt', 'slack_sdk')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(ROOT))
    assert out.stdout.strip() == "[]"
