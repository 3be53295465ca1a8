"""User text keeps only the markers its adapter put there: the mentions and channels it parsed."""
from __future__ import annotations

from bot.text import channel_ids_in, channel_marker, link_marker, mention_marker, sanitize


def test_parsed_channel_markers_survive_and_typed_ones_degrade() -> None:
    text = f"see {channel_marker('C2')} and {channel_marker('C9')} with {mention_marker('U1')}"
    kept = sanitize(text, keep=["U1"], channels=["C2"])
    assert channel_marker("C2") in kept and mention_marker("U1") in kept
    assert channel_marker("C9") not in kept and "(#C9)" in kept


def test_nothing_listed_keeps_nothing() -> None:
    assert sanitize(f"{channel_marker('C2')} {mention_marker('U1')}") == "(#C2) (@U1)"


def test_channel_ids_in_reads_named_channels_once_and_never_live_links() -> None:
    text = f"{channel_marker('19:a@thread')} {channel_marker('19:a@thread')} {link_marker('C5')} {mention_marker('U1')}"
    assert channel_ids_in(text) == ("19:a@thread",)
