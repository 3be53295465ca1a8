"""`taxonomy import`: an admin loads a skills vocabulary (the shape of ESCO's CSV exports) as
aliases grouped by concept: every label of a concept finds the people who declared any other
label of it, in any language; a label two concepts share never joins them. Off by default:
nothing is loaded until an admin imports a file, and no vocabulary ships with Causette.

The CSV: one row per concept and language, columns concept id, language, preferred label,
alternative labels (several in one cell, one per line as ESCO writes them, or separated by
`|`). A header row may name the columns in any order (`conceptUri`, `language`,
`preferredLabel`, `altLabels`, …); without one the four columns are read in that order. A
header without a language column is accepted (ESCO exports one file per language): the
command may then name the language, `taxonomy import fr …`.

Where the file comes from: the CSV pasted after the command (any messenger, up to
MAX_PASTE_CHARS), or on the console a path on the machine running Causette; a chat never names a
server path. Uploaded files are not read: a Slack slash command carries none, and a message's
upload is a private link to fetch with the bot token and the `files:read` scope (not requested);
Teams hands a bot files only in personal chats of an app declaring `supportsFiles` (not declared).

Privacy: a taxonomy adds words, never people or evidence.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from bot.context import Ctx, UserError
from bot.text import norm_key, topic_key
from bot.types import IncomingMessage, Reply
from store import expertise as xstore

MAX_LABELS = 200_000
MAX_PASTE_CHARS = 40_000  # a Slack message's limit; Teams takes about 28 KB
MAX_FILE_BYTES = 30_000_000
MAX_LABEL_CHARS = 200
MAX_CONCEPT_CHARS = 300
_LANG = re.compile(r"^[a-z]{2,3}([-_][a-z0-9]{2,8})?$")
_ALT_SPLIT = re.compile(r"[\n|]+")
COLUMNS = {
    "concept": ("concepturi", "concept", "conceptid", "id", "uri", "code"),
    "lang": ("language", "lang", "langue", "languagecode"),
    "preferred": ("preferredlabel", "preferred", "preflabel", "label", "libellepreferentiel", "libelle"),
    "alt": ("altlabels", "alternativelabels", "altlabel", "alternatives", "synonyms", "libellesalternatifs"),
}
POSITIONAL = ("concept", "lang", "preferred", "alt")


def _column_of(cell: str) -> str | None:
    name = norm_key(cell).replace(" ", "")
    return next((col for col, names in COLUMNS.items() if name in names), None)


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: (counts[d], d == ","))


def parse_csv(text: str, default_lang: str = "") -> list[xstore.ConceptLabel]:
    """Every label of the CSV, or a `UserError` naming the first bad line (nothing is kept then).
    `default_lang`: the language of rows that name none (a file without a language column)."""
    text = text.lstrip("\ufeff").strip()
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:  # pasted as a code block
        text = text[3:-3].strip()
    if not text:
        raise UserError("taxonomy.empty")
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text.split("\n", 1)[0]), strict=True)
    layout: dict[str, int] | None = None
    labels: list[xstore.ConceptLabel] = []
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            raise UserError("taxonomy.bad_quote", line=line) from None
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if layout is None:
            named = {_column_of(cell): i for i, cell in reversed(list(enumerate(row))) if _column_of(cell)}
            if "concept" in named and "preferred" in named:
                layout = named
                continue
            if named:
                raise UserError("taxonomy.bad_header", line=start)
            layout = {col: i for i, col in enumerate(POSITIONAL)}
        needed = max(i for col, i in layout.items() if col != "alt") + 1
        if len(row) < needed:
            raise UserError("taxonomy.bad_columns", line=start, count=len(row), expected=needed)
        concept = row[layout["concept"]].strip()
        lang = (row[layout["lang"]].strip().lower() if "lang" in layout else "") or default_lang
        preferred = row[layout["preferred"]].strip()
        alts = row[layout["alt"]] if "alt" in layout and layout["alt"] < len(row) else ""
        if not concept:
            raise UserError("taxonomy.no_concept", line=start)
        if len(concept) > MAX_CONCEPT_CHARS:
            raise UserError("taxonomy.concept_too_long", line=start, limit=MAX_CONCEPT_CHARS)
        if lang and not _LANG.match(lang):
            raise UserError("taxonomy.bad_language", line=start, value=lang[:20])
        names = [(preferred, True)] + [(a.strip(), False) for a in _ALT_SPLIT.split(alts) if a.strip()]
        if not topic_key(preferred):
            raise UserError("taxonomy.no_label", line=start)
        for name, is_preferred in names:
            if len(name) > MAX_LABEL_CHARS:
                raise UserError("taxonomy.label_too_long", line=start, limit=MAX_LABEL_CHARS, label=name[:30])
            if any(ch.isalnum() for ch in name):
                labels.append(xstore.ConceptLabel(concept, lang.split("-")[0].split("_")[0], name, is_preferred))
        if len(labels) > MAX_LABELS:
            raise UserError("taxonomy.too_big", limit=MAX_LABELS)
    if not labels:
        raise UserError("taxonomy.empty")
    return labels


def _source(ctx: Ctx, msg: IncomingMessage, args: str) -> str:
    """The CSV: pasted after the command, or (console only) a path on this machine."""
    text = args.strip()
    if "\n" in text or "," in text or ";" in text or "\t" in text:
        return text
    if not text:
        raise UserError("error.missing_argument", usage=ctx.t("taxonomy.usage"))
    if msg.conversation.platform != "console":
        raise UserError("taxonomy.paste_here")
    path = Path(text).expanduser()
    try:
        if not path.is_file():
            raise UserError("taxonomy.no_file", path=text[:200])
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UserError("taxonomy.file_too_big", path=text[:200], limit=MAX_FILE_BYTES // 1_000_000)
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError("taxonomy.not_utf8", path=text[:200]) from None
    except OSError:
        raise UserError("taxonomy.no_file", path=text[:200]) from None


_LEADING_LANG = re.compile(r"^\s*([A-Za-z]{2}(?:[-_][A-Za-z0-9]{2,8})?)[ \t]*(?:\n|[ \t]+)(?=\S)")


def _language_first(args: str) -> tuple[str, str]:
    """`taxonomy import fr <csv or path>`: the language of rows that name none (ESCO exports
    one file per language, without a language column)."""
    found = _LEADING_LANG.match(args)
    if found is None:
        return "", args
    return found.group(1).lower().replace("_", "-").split("-")[0], args[found.end():]


def import_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    lang, args = _language_first(args)
    labels = parse_csv(_source(ctx, msg, args), lang)
    concepts, added = xstore.import_taxonomy(ctx.session, ctx.tenant, labels)
    ctx.audit("taxonomy.import", f"{concepts} concepts, {added} new labels")
    concepts_now, labels_now = xstore.taxonomy_size(ctx.session)
    return ctx.reply("taxonomy.imported", private=True, count=concepts, added=added, concepts=concepts_now, labels=labels_now)


def status_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    concepts, labels = xstore.taxonomy_size(ctx.session)
    if not labels:
        return ctx.reply("taxonomy.none", private=True)
    return ctx.reply("taxonomy.status", private=True, count=concepts, labels=labels)


def clear_command(ctx: Ctx, msg: IncomingMessage, args: str) -> Reply:
    removed = xstore.clear_taxonomy(ctx.session, ctx.tenant)
    if not removed:
        return ctx.reply("taxonomy.none", private=True)
    ctx.audit("taxonomy.clear", f"{removed} labels")
    return ctx.reply("taxonomy.cleared", private=True, count=removed)
