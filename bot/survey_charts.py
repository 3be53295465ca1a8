"""A survey question's distribution as a PNG picture (`bot.types.Picture`), same conventions as
`bot.charts`: matplotlib imported lazily, its Agg backend on a `Figure` of its own (no pyplot),
renders serialised by `bot.charts`' lock (matplotlib's font caches are shared by the process),
fixed size and DPI, an 8-bit palette PNG without metadata, so the same results give the same
bytes. Words come from a translator bound to the reader's language (prompts
`survey_results.chart.*`), numbers are formatted by Babel for that language.

    from bot.survey_charts import Bar, render_distribution
    t = ctx.translator(locale)
    chart = render_distribution([Bar("1", 2), Bar("2", None), …], title=question, answers=6,
                                translate=t, locale=locale)
    return ctx.reply(…, picture=chart)

One horizontal bar per option, in the question's order (a scale reads 1 → 5, 0 → 10 top down).
A count of None (a group under the minimum size, or a complement withheld) is drawn as a hatched
gap, named in the legend, never as a zero. The alt text says what the chart shows: the question,
the number of answers, the most chosen option, the options not shown.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from bot.charts import _LOCK, DPI, HEIGHT_IN, WIDTH_IN, _palette, shorten
from bot.types import Picture

__all__ = ["Bar", "render_distribution", "distribution_figure", "alt_text"]

Translate = Callable[..., str]
_BAR = "#4C78A8"
_HIDDEN = "#9E9E9E"
LABEL_MAX = 28  # characters of an option's label on the axis


@dataclass(frozen=True)
class Bar:
    """One option of a question and how many answers chose it (None: not shown)."""

    label: str
    count: int | None


def _filename(title: str) -> str:
    plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:40].strip("-") or "question"
    return f"causette-survey-{slug}.png"


def alt_text(bars: Sequence[Bar], title: str, answers: int, t: Translate) -> str:
    """What the chart shows, in the reader's words."""
    question = " ".join(title.split())
    parts = [t("survey_results.chart.alt", question=question, answers=answers)]
    known = [b for b in bars if b.count is not None]
    if known and max(b.count or 0 for b in known) > 0:
        top = max(known, key=lambda b: b.count or 0)
        parts.append(t("survey_results.chart.alt_top", option=" ".join(top.label.split()), count=top.count))
    hidden = len(bars) - len(known)
    if hidden:
        parts.append(t("survey_results.chart.alt_hidden", count=hidden))
    return " ".join(parts)


def render_distribution(bars: Sequence[Bar], *, title: str, answers: int, translate: Translate,
                        locale: str) -> Picture:
    """A PNG of the answers per option (horizontal bars; None values are hatched gaps). `title`:
    the question as asked; `answers`: how many answered it (the subtitle)."""
    bars = list(bars)
    with _LOCK:
        fig = distribution_figure(bars, title=title, answers=answers, translate=translate, locale=locale)
        fig.canvas.draw()
        width, height = fig.canvas.get_width_height()
        rgba = bytes(fig.canvas.buffer_rgba())
    return Picture(png=_palette(rgba, (width, height)), alt=alt_text(bars, title, answers, translate),
                   filename=_filename(title))


def distribution_figure(bars: Sequence[Bar], *, title: str, answers: int, translate: Translate, locale: str) -> Any:
    """The matplotlib Figure `render_distribution` draws (tests read its texts; not locked)."""
    from babel.numbers import format_decimal
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    n = len(bars)
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(n))
    counts = [b.count for b in bars]
    top = max([c for c in counts if c is not None] or [1])
    ax.set_xlim(0, max(1, top) * 1.18)
    shown_y = [y for y, c in zip(ys, counts) if c is not None]
    shown_w = [c for c in counts if c is not None]
    ax.barh(shown_y, shown_w, height=0.6, color=_BAR, zorder=2)
    for y, c in zip(shown_y, shown_w):
        ax.text(c + top * 0.015, y, format_decimal(c, locale=locale), va="center", ha="left", fontsize=8)
    hidden = [y for y, c in zip(ys, counts) if c is None]
    for y in hidden:
        ax.axhspan(y - 0.3, y + 0.3, xmin=0, xmax=0.25, facecolor="none", edgecolor=_HIDDEN, hatch="///",
                   linewidth=0, zorder=1)
    ax.set_ylim(n - 0.4 if n else 0.6, -0.6)  # first option on top
    ax.set_yticks(ys)
    ax.set_yticklabels([shorten(b.label, LABEL_MAX) for b in bars], fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_decimal(int(v), locale=locale)))
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel(translate("survey_results.chart.axis"), fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", color="#DDDDDD", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    fig.text(0.015, 0.955, shorten(title, 80), fontsize=12, fontweight="bold", ha="left", va="center")
    fig.text(0.015, 0.900, translate("survey_results.chart.subtitle", answers=answers), fontsize=9,
             color="#555555", ha="left", va="center")
    if hidden:
        fig.legend([Patch(facecolor="none", edgecolor=_HIDDEN, hatch="///")],
                   [translate("survey_results.chart.hidden")], loc="lower center", fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 0.0))
    fig.subplots_adjust(left=0.25, right=0.96, top=0.84, bottom=0.2)
    return fig
