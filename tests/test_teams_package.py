"""`make teams-package`: the app zip validates against the Teams manifest 1.17 schema, ships
192×192 / 32×32 PNG icons, English and French command lists and the RSC permission."""
from __future__ import annotations

import json
import re
import struct
import zipfile
import zlib
from pathlib import Path

import jsonschema
import pytest

from adapters.teams import package
from bot.i18n import Prompts
from handlers import build_registry
from tests.conftest import spec_file

APP_ID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("pkg") / "app.zip"
    assert package.main(["--app-id", APP_ID, "--version", "1.2.3", "--out", str(out)]) == 0
    return zipfile.ZipFile(out)


def png_info(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    assert (depth, color) == (8, 6)
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    return width, height, zlib.decompress(idat)


def test_manifest_validates_against_the_1_17_schema(built: zipfile.ZipFile) -> None:
    schema = json.loads(spec_file("teams-manifest-1.17.schema.json").read_text())
    manifest = json.loads(built.read("manifest.json"))
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, f"{errors[0].message} at {list(errors[0].path)}"
    assert manifest["manifestVersion"] == "1.17" and manifest["version"] == "1.2.3"
    bot = manifest["bots"][0]
    assert bot["botId"] == APP_ID and sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert {"name": "ChannelMessage.Read.Group", "type": "Application"} in \
        manifest["authorization"]["permissions"]["resourceSpecific"]


def test_icons_have_the_sizes_teams_requires(built: zipfile.ZipFile) -> None:
    w, h, color = png_info(built.read("color.png"))
    assert (w, h) == (192, 192)
    w, h, outline = png_info(built.read("outline.png"))
    assert (w, h) == (32, 32)
    pixels = [outline[r * (1 + 32 * 4) + 1 + c * 4 : r * (1 + 32 * 4) + 1 + c * 4 + 4] for r in range(32) for c in range(32)]
    assert {bytes(p) for p in pixels} == {b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"}  # white on transparent


def test_commands_in_english_and_french(built: zipfile.ZipFile) -> None:
    manifest = json.loads(built.read("manifest.json"))
    french = json.loads(built.read("fr.json"))
    assert manifest["localizationInfo"]["additionalLanguages"] == [{"languageTag": "fr", "file": "fr.json"}]
    english = manifest["bots"][0]["commandLists"][0]["commands"]
    assert 1 <= len(english) <= 10 and all(len(c["title"]) <= 32 and c["description"] for c in english)
    titles = {c["title"] for c in english}
    assert "help" in titles
    for key in french:
        m = re.fullmatch(r"bots\[0\]\.commandLists\[(\d+)\]\.commands\[(\d+)\]\.(title|description)", key)
        if m:
            li, ci, field = int(m.group(1)), int(m.group(2)), m.group(3)
            assert manifest["bots"][0]["commandLists"][li]["commands"][ci][field]  # the key points at a real string
    french_titles = {v for k, v in french.items() if k.endswith(".title")}
    assert "aide" in french_titles and french["description.short"] != manifest["description"]["short"]


def test_commands_follow_the_registry() -> None:
    manifest, french = package.build(APP_ID, "1.0.0", "https://example.org", Prompts.load(), build_registry())
    names = [c["title"] for c in manifest["bots"][0]["commandLists"][0]["commands"]]
    registry = build_registry()
    for name in names:
        spec = next(s for s in registry.commands
                    if s.name == name or (name.endswith("…") and s.name.startswith(name.rstrip("…"))))
        assert not spec.hidden and spec.permission == "anyone"


def test_bad_app_id_is_refused(tmp_path: Path) -> None:
    assert package.main(["--app-id", "not-a-guid", "--out", str(tmp_path / "x.zip")]) == 2
    assert not (tmp_path / "x.zip").exists()


def test_bad_environment_variable_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PORT", "not-a-port")
    assert package.main(["--app-id", APP_ID, "--out", str(tmp_path / "x.zip")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "PORT" in err and "Traceback" not in err
    assert not (tmp_path / "x.zip").exists()
