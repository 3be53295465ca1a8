"""Charts as PNG pictures (`bot.types.Picture`), drawn with matplotlib's Agg backend.

    from bot.charts import ChartLabels, WeekPoint, render_trend
    t = ctx.translator(locale)                       # the reader's language
    chart = render_trend(points, title="#ventes", labels=ChartLabels.of(t), locale=locale)
    return ctx.reply("stats.channel", private=True, picture=chart, …)

`render_trend` draws the last weeks of a scope (12 in a report): contributors as bars (left
axis), the participation rate as a line (right axis) over the 20–25 % reference band. A week
whose value is None (a group under the minimum size, suppressed) is a gap, hatched and named in
the legend, never a zero. Dates are the week's first day in the reader's locale (Babel); the
title is the scope's name, shortened with an ellipsis when long. The alt text, in the reader's
language, says what the chart shows ("Contributors per week in #ventes, 12 weeks: from 8 to 14.
Participation 21 % last week.").

Matplotlib is imported inside the functions, never at import time; no pyplot (no global
figure state): each chart is its own `Figure` on its own Agg canvas. Matplotlib's text and font
caches are shared by the process, so renders are serialised by a lock (a chart takes about
110 ms of CPU here). The output is deterministic: fixed size (800 × 420 px) and DPI, no PNG
metadata (no software name, no date): the drawn pixels are written once, as a 256-colour palette
PNG (flat colours lose nothing, and a 12-week chart weighs about 15 KB, which a Teams card can
carry inline).
`warm_up()` pays the first import and font loading once (call it at start or before timing).
"""
from __future__ import annotations

import io
import math
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Protocol, Sequence

from bot.types import Picture

__all__ = ["Chart", "ChartLabels", "WeekPoint", "render_trend", "warm_up", "example_points", "alt_text", "shorten", "REFERENCE", "TITLE_MAX"]

Chart = Picture  # what render_trend returns: PNG bytes, alt text, filename; put it in Reply.picture

REFERENCE = (0.20, 0.25)  # the participation rate counted as a success for an enterprise social network
TITLE_MAX = 48            # characters of a scope's name in a chart title before the ellipsis
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.2, 100  # 800 × 420 px
PALETTE_COLOURS = 256
_BAR = "#4C78A8"
_LINE = "#E45756"
_BAND = "#54A24B"
_HIDDEN = "#9E9E9E"
_LOCK = threading.Lock()


class _Point(Protocol):
    week_start: date
    contributors: int | None
    rate: float | None


@dataclass(frozen=True)
class WeekPoint:
    """One week of a scope: its first day, how many contributed, and the share of members who
    did (0.21 for 21 %). None: suppressed (a group under the minimum size), drawn as a gap.
    Any object with these three attributes will do (a roll-up row, for instance)."""

    week_start: date
    contributors: int | None
    rate: float | None


Translate = Callable[..., str]


@dataclass(frozen=True)
class ChartLabels:
    """The words of a chart in the reader's language. Build it with `ChartLabels.of(t)` from a
    translator bound to that language (`ctx.translator(locale)`, `jctx.t` partial, the shell's),
    which it keeps for the title and the alt text (prompts `charts.*`)."""

    contributors: str
    rate: str
    reference: str
    week_axis: str
    hidden: str
    translate: Translate = field(repr=False, compare=False)

    @classmethod
    def of(cls, t: Translate) -> "ChartLabels":
        low, high = (round(v * 100) for v in REFERENCE)
        return cls(contributors=t("charts.contributors"), rate=t("charts.rate"),
                   reference=t("charts.reference", low=low, high=high), week_axis=t("charts.week_axis"),
                   hidden=t("charts.hidden"), translate=t)


def shorten(text: str, limit: int = TITLE_MAX) -> str:
    """`text` on one line, at most `limit` characters, the last one an ellipsis when cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"


def _filename(title: str, last: date | None) -> str:
    plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:40].strip("-") or "scope"
    return f"causette-trend-{slug}" + (f"-{last.isoformat()}" if last else "") + ".png"


def _known(values: Sequence[float | int | None]) -> list[float | int]:
    return [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def alt_text(points: Sequence[_Point], title: str, t: Translate) -> str:
    """What the chart shows, in words: contributors first and last known, last week's rate,
    the weeks not shown."""
    scope = " ".join(title.split())
    weeks = len(points)
    counts = [p.contributors for p in points]
    known = _known(counts)
    if not known:
        parts = [t("charts.alt_empty", scope=scope, weeks=weeks)]
    else:
        parts = [t("charts.alt", scope=scope, weeks=weeks, first=known[0], last=known[-1])]
        hidden = weeks - len(known)
        if hidden:
            parts.append(t("charts.alt_hidden", count=hidden))
    if points:
        last_rate = points[-1].rate
        if last_rate is None:
            parts.append(t("charts.alt_rate_hidden"))
        else:
            parts.append(t("charts.alt_rate", rate=round(last_rate * 100)))
    return " ".join(parts)


def example_points(end: date, weeks: int = 12) -> list[WeekPoint]:
    """A deterministic, realistic series ending with the week of `end` (benchmarks, tests, demos):
    a growing channel of about 60 members with two suppressed weeks."""
    from datetime import timedelta

    monday = end - timedelta(days=end.weekday())
    out = []
    for i in range(weeks):
        n = 8 + (i * 7) // max(1, weeks - 1) + (i % 3) - 1
        hidden = i in (2, 7)
        out.append(WeekPoint(monday - timedelta(weeks=weeks - 1 - i), None if hidden else n, None if hidden else n / 60))
    return out


def warm_up() -> None:
    """Import matplotlib and load its fonts once, so the first real chart is as fast as the next."""
    render_trend([WeekPoint(date(2026, 1, 5), 1, 0.1), WeekPoint(date(2026, 1, 12), None, None)], title="warm-up",
                 labels=ChartLabels("a", "b", "c", "d", "e", translate=lambda key, **p: key), locale="en")


def render_trend(points: Sequence[_Point], *, title: str, labels: ChartLabels, locale: str) -> Picture:
    """A PNG of contributors per week (bars) and participation rate (line, right axis, with the
    20–25 % reference band); None values are gaps. `title`: the scope as the reader knows it
    ("#ventes", "Sales"). Returns the Picture (png, alt, filename)."""
    points = list(points)
    with _LOCK:
        fig = trend_figure(points, title=title, labels=labels, locale=locale)
        fig.canvas.draw()
        width, height = fig.canvas.get_width_height()
        rgba = bytes(fig.canvas.buffer_rgba())
    return Picture(png=_palette(rgba, (width, height)), alt=alt_text(points, title, labels.translate),
                   filename=_filename(title, points[-1].week_start if points else None))


def trend_figure(points: Sequence[_Point], *, title: str, labels: ChartLabels, locale: str) -> Any:
    """The matplotlib Figure `render_trend` draws (tests read its texts and artists; not locked)."""
    from babel.dates import format_skeleton
    from babel.numbers import format_percent

    heading = (shorten(title), labels.translate("charts.subtitle", weeks=len(points)))
    ticks = [format_skeleton("MMMd", p.week_start, locale=locale) for p in points]
    return _draw(heading, ticks, [p.contributors for p in points], [p.rate for p in points], labels,
                 percent=lambda v: format_percent(v, locale=locale))


def _draw(heading: tuple[str, str], ticks: list[str], counts: list[int | None], rates: list[float | None],
          labels: ChartLabels, percent: Callable[[float], str]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    n = len(ticks)
    xs = list(range(n))
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    right = ax.twinx()
    ax.set_zorder(right.get_zorder() + 1)  # bars above the band, line above the bars: see below
    ax.patch.set_visible(False)

    known = _known(counts)
    top = max(known) if known else 1
    ax.set_ylim(0, max(1, top) * 1.2)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))

    bar_x = [x for x, c in zip(xs, counts) if c is not None]
    bar_h = [c for c in counts if c is not None]
    ax.bar(bar_x, bar_h, width=0.6, color=_BAR, label=labels.contributors, zorder=2)
    hidden = [x for x, c in zip(xs, counts) if c is None]
    for x in hidden:  # a gap, said as such: hatched, no bar, no zero
        ax.axvspan(x - 0.3, x + 0.3, facecolor="none", edgecolor=_HIDDEN, hatch="///", linewidth=0, zorder=1)

    rate_values = _known(rates)
    rate_top = max([REFERENCE[1], *rate_values]) * 1.25
    right.set_ylim(0, rate_top)
    right.axhspan(REFERENCE[0], REFERENCE[1], color=_BAND, alpha=0.18, linewidth=0, zorder=0)
    right.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: percent(v)))
    right.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
    line_y = [float("nan") if r is None else r for r in rates]  # NaN breaks the line: a gap
    # the line is drawn on the left axes (above the bars), scaled into its units
    scale = ax.get_ylim()[1] / rate_top
    ax.plot(xs, [y * scale for y in line_y], color=_LINE, linewidth=2.2, marker="o", markersize=4.5,
            label=labels.rate, zorder=3)

    ax.set_xlim(-0.6, n - 0.4 if n else 0.4)
    ax.set_xticks(xs)
    ax.set_xticklabels(ticks, fontsize=8)
    ax.set_xlabel(labels.week_axis, fontsize=9)
    ax.tick_params(axis="y", labelsize=8, colors=_BAR)
    right.tick_params(axis="y", labelsize=8, colors=_LINE)
    ax.set_ylabel(labels.contributors, fontsize=9, color=_BAR)
    right.set_ylabel(labels.rate, fontsize=9, color=_LINE)
    for side in ("top",):
        ax.spines[side].set_visible(False)
        right.spines[side].set_visible(False)
    ax.grid(axis="y", color="#DDDDDD", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    fig.text(0.015, 0.955, heading[0], fontsize=13, fontweight="bold", ha="left", va="center")
    fig.text(0.015, 0.900, heading[1], fontsize=9, color="#555555", ha="left", va="center")

    handles, names = ax.get_legend_handles_labels()
    if len(handles) == 2:  # bars first, as on the axes
        handles, names = handles[::-1], names[::-1]
    handles.append(Patch(facecolor=_BAND, alpha=0.18, edgecolor="none"))
    names.append(labels.reference)
    if hidden:
        handles.append(Patch(facecolor="none", edgecolor=_HIDDEN, hatch="///"))
        names.append(labels.hidden)
    fig.legend(handles, names, loc="lower center", ncol=len(handles), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.subplots_adjust(left=0.07, right=0.92, top=0.84, bottom=0.22)
    return fig


def _palette(rgba: bytes, size: tuple[int, int]) -> bytes:
    """The drawn pixels as an 8-bit palette PNG: a flat-coloured chart loses nothing visible and
    weighs a third of a true-colour one. Pillow (a matplotlib dependency) writes no metadata."""
    from PIL import Image

    rgb = Image.frombuffer("RGBA", size, rgba, "raw", "RGBA", 0, 1).convert("RGB")
    quantized: Any = rgb.quantize(colors=PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    quantized.save(out, format="PNG")
    return out.getvalue()
