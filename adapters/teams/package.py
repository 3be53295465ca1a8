"""`make teams-package`: the Teams app zip an admin uploads (manifest 1.17, icons, French strings).

    python -m adapters.teams.package [--app-id GUID] [--version 1.0.0] [--website https://…] [--out file.zip]

The bot's commands come from the registry with their English and French names and help
lines; the RSC permission `ChannelMessage.Read.Group` lets the bot see channel messages
that do not mention it (hashtags, mentions) once a team owner consents.
"""
from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

from bot.i18n import Prompts
from bot.registry import CommandSpec, Registry

MANIFEST_SCHEMA = "https://developer.microsoft.com/json-schemas/teams/v1.17/MicrosoftTeams.schema.json"
LOCALIZATION_SCHEMA = "https://developer.microsoft.com/json-schemas/teams/v1.17/MicrosoftTeams.Localization.schema.json"
ACCENT = (0x6B, 0x4E, 0xFF)
SCOPES = ("personal", "team", "groupChat")
RSC = "ChannelMessage.Read.Group"
PLACEHOLDER_APP_ID = "00000000-0000-0000-0000-000000000000"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "causette-teams-app.zip"
GROUP_ORDER = ("general", "people", "social", "ideas", "help", "kudos", "digests", "privacy")
Pixel = Callable[[int, int], tuple[int, int, int, int]]


# Icons ---------------------------------------------------------------------
def png(width: int, height: int, pixel: Pixel) -> bytes:
    """An RGBA PNG, written with zlib and struct only."""
    rows = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def _in_c(x: float, y: float, size: int) -> bool:
    """A speech-bubble "C": a thick ring open on the right."""
    cx = cy = size / 2
    dx, dy = x - cx, y - cy
    r = math.hypot(dx, dy)
    outer, inner = size * 0.36, size * 0.22
    if not inner <= r <= outer:
        return False
    angle = math.degrees(math.atan2(-dy, dx))
    return not -40 <= angle <= 40


def color_icon(size: int = 192) -> bytes:
    def pixel(x: int, y: int) -> tuple[int, int, int, int]:
        return (255, 255, 255, 255) if _in_c(x + 0.5, y + 0.5, size) else (*ACCENT, 255)
    return png(size, size, pixel)


def outline_icon(size: int = 32) -> bytes:
    def pixel(x: int, y: int) -> tuple[int, int, int, int]:
        return (255, 255, 255, 255) if _in_c(x + 0.5, y + 0.5, size) else (0, 0, 0, 0)
    return png(size, size, pixel)


# Manifest ------------------------------------------------------------------
def _cut(text: str, limit: int) -> str:
    text = " ".join(text.replace("`", "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def bot_commands(registry: Registry, limit: int = 10) -> list[CommandSpec]:
    """The commands worth showing in Teams' command menu: visible to everyone, by group."""
    visible = [s for s in registry.commands if not s.hidden and s.permission == "anyone"]
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    return sorted(visible, key=lambda s: order.get(s.group, len(order)))[:limit]


def build(app_id: str, version: str, website: str, prompts: Prompts, registry: Registry) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest.json, fr.json) for the app."""
    commands = bot_commands(registry)

    def command_list(lang: str) -> list[dict[str, str]]:
        return [{"title": _cut(s.fr if lang == "fr" else s.name, 32), "description": _cut(prompts.t(lang, s.help_key), 128)}
                for s in commands]

    def text(lang: str) -> dict[str, str]:
        return {"short": _cut(prompts.t(lang, "teams.package.short_description"), 80),
                "full": _cut(prompts.t(lang, "teams.package.full_description"), 4000)}

    def message_actions(lang: str) -> list[dict[str, Any]]:
        """The "…" menu of a message: "Send as a suggestion" (adapters/teams/inbound.py MESSAGE_ACTIONS)."""
        note = {"name": "text", "title": _cut(prompts.t(lang, "suggestions.teams.note_title"), 32),
                "description": _cut(prompts.t(lang, "suggestions.teams.note_description"), 128), "inputType": "textarea"}
        return [{"id": "suggest", "type": "action", "context": ["message"], "fetchTask": False,
                 "title": _cut(prompts.t(lang, "suggestions.teams.action_title"), 32),
                 "description": _cut(prompts.t(lang, "suggestions.teams.action_description"), 128), "parameters": [note]}]

    lists = [{"scopes": ["personal"], "commands": command_list("en")},
             {"scopes": ["team", "groupChat"], "commands": command_list("en")}]
    manifest: dict[str, Any] = {
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": "1.17",
        "version": version,
        "id": app_id,
        "localizationInfo": {"defaultLanguageTag": "en-us", "additionalLanguages": [{"languageTag": "fr", "file": "fr.json"}]},
        "developer": {"name": "Causette", "websiteUrl": website, "privacyUrl": website.rstrip("/") + "/privacy",
                      "termsOfUseUrl": website.rstrip("/") + "/terms"},
        "name": {"short": "Causette", "full": "Causette — enterprise social network"},
        "description": text("en"),
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#%02X%02X%02X" % ACCENT,
        "bots": [{"botId": app_id, "scopes": list(SCOPES), "isNotificationOnly": False, "supportsFiles": False,
                  "commandLists": lists}],
        "composeExtensions": [{"botId": app_id, "commands": message_actions("en")}],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [],
        "webApplicationInfo": {"id": app_id, "resource": "https://RscBasedStoreApp"},
        "authorization": {"permissions": {"resourceSpecific": [{"name": RSC, "type": "Application"}]}},
    }
    french: dict[str, Any] = {"$schema": LOCALIZATION_SCHEMA, "name.short": "Causette",
                              "name.full": "Causette — réseau social d'entreprise",
                              "description.short": text("fr")["short"], "description.full": text("fr")["full"]}
    for li in range(len(lists)):
        for ci, cmd in enumerate(command_list("fr")):
            french[f"bots[0].commandLists[{li}].commands[{ci}].title"] = cmd["title"]
            french[f"bots[0].commandLists[{li}].commands[{ci}].description"] = cmd["description"]
    action = message_actions("fr")[0]
    french["composeExtensions[0].commands[0].title"] = action["title"]
    french["composeExtensions[0].commands[0].description"] = action["description"]
    french["composeExtensions[0].commands[0].parameters[0].title"] = action["parameters"][0]["title"]
    french["composeExtensions[0].commands[0].parameters[0].description"] = action["parameters"][0]["description"]
    return manifest, french


def write_zip(out: Path, manifest: dict[str, Any], french: dict[str, Any]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
        zf.writestr("fr.json", json.dumps(french, ensure_ascii=False, indent=2))
        zf.writestr("color.png", color_icon())
        zf.writestr("outline.png", outline_icon())
    return out


def is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    from bot.config import ConfigError, load_settings
    from handlers import build_registry

    parser = argparse.ArgumentParser(prog="teams-package", description="Build Causette's Microsoft Teams app package.")
    parser.add_argument("--app-id", help="the bot's Microsoft App ID (default: MicrosoftAppId)")
    parser.add_argument("--version", default="1.0.0", help="app version, x.y.z; raise it for every re-upload")
    parser.add_argument("--website", default="https://github.com/causette-social/causette", help="https URL for the developer info")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as err:  # one line naming the variable, as `app.py` prints it
        print(f"error: {err}", file=sys.stderr)
        return 2
    app_id = args.app_id or settings.teams_app_id or PLACEHOLDER_APP_ID
    if not is_guid(app_id):
        print(f"error: the app id must be a GUID, got {app_id!r}", file=sys.stderr)
        return 2
    if app_id == PLACEHOLDER_APP_ID:
        print("warning: no MicrosoftAppId: the package uses a placeholder id; Teams will reject it until you "
              "rebuild with --app-id <your Azure bot's app id>", file=sys.stderr)
    manifest, french = build(app_id, args.version, args.website, Prompts.load(), build_registry())
    path = write_zip(args.out, manifest, french)
    print(f"{path} ({len(manifest['bots'][0]['commandLists'][0]['commands'])} commands, English and French)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
