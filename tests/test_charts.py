"""Charts (bot/charts.py): a real PNG of sensible size, the reader's words and dates on it, long
names shortened, suppressed weeks drawn as gaps (never zeros), the alt text in the reader's
language, the same bytes every time, nothing heavy at import, and safe from several threads."""
from __future__ import annotations

import math
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import partial

import pytest

from bot.charts import TITLE_MAX, ChartLabels, WeekPoint, example_points, render_trend, trend_figure, warm_up
from bot.i18n import Prompts
from bot.types import Picture

PROMPTS = Prompts.load()
END = date(2026, 11, 23)
LONG = "#ventes-équipe-région-auvergne-rhône-alpes-et-bourgogne-franche-comté-grands-comptes"


def labels(locale: str) -> ChartLabels:
    return ChartLabels.of(partial(PROMPTS.t, locale))


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def drawn_texts(fig) -> list[str]:
    """Every piece of text the figure draws (titles, tick labels, axis labels, legend)."""
    fig.canvas.draw()
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and a.get_visible()) if t.get_text()]


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    warm_up()


def test_a_chart_is_a_png_of_sensible_size_and_fixed_dimensions() -> None:
    chart = render_trend(example_points(END), title="#sales", labels=labels("en"), locale="en")
    assert isinstance(chart, Picture)
    assert png_size(chart.png) == (800, 420)
    assert 5_000 < len(chart.png) < 200_000
    # small enough for a Teams card inline (28 KB for the whole activity, base64 adds a third)
    assert len(chart.png) * 4 / 3 < 26_000
    assert chart.filename == "causette-trend-sales-2026-11-23.png"
    # the file reads back as the same picture with matplotlib
    import io

    from matplotlib.image import imread

    pixels = imread(io.BytesIO(chart.png), format="png")
    assert pixels.shape[:2] == (420, 800)


def test_the_same_input_gives_the_same_bytes() -> None:
    first = render_trend(example_points(END), title="#ventes", labels=labels("fr"), locale="fr")
    again = render_trend(example_points(END), title="#ventes", labels=labels("fr"), locale="fr")
    assert first.png == again.png
    assert b"Software" not in first.png and b"tIME" not in first.png  # no tool name, no date


def test_french_words_and_dates_on_a_french_chart() -> None:
    texts = drawn_texts(trend_figure(example_points(END), title="#ventes", labels=labels("fr"), locale="fr"))
    joined = "\n".join(texts)
    for word in ("Contributeurs", "Taux de participation", "Semaine du", "Zone de réussite 20–25 %",
                 "Trop peu de personnes : non affiché", "Contributeurs et participation, 12 dernières semaines"):
        assert word in joined
    assert "7 sept." in texts and "23 nov." in texts  # the week's first day, as a French reader writes it
    assert "20\xa0%" in texts  # on the rate axis, as French writes a percentage
    assert "Contributors" not in joined


def test_english_words_and_dates_on_an_english_chart() -> None:
    texts = drawn_texts(trend_figure(example_points(END), title="#sales", labels=labels("en"), locale="en"))
    joined = "\n".join(texts)
    for word in ("Contributors", "Participation rate", "Week starting", "Success range 20–25%",
                 "Contributors and participation, last 12 weeks"):
        assert word in joined
    assert "Sep 7" in texts and "Nov 23" in texts
    assert "20%" in texts
    assert "Contributeurs" not in joined


def test_a_long_accented_name_is_shortened_with_an_ellipsis_and_fits_the_picture() -> None:
    fig = trend_figure(example_points(END), title=LONG, labels=labels("fr"), locale="fr")
    texts = drawn_texts(fig)
    title = next(t for t in texts if t.startswith("#ventes"))
    assert title.endswith("…") and len(title) == TITLE_MAX
    assert title[:-1] == LONG[: TITLE_MAX - 1]  # accents kept: "région", "rhône"
    renderer = fig.canvas.get_renderer()
    for text in fig.texts:  # the title and subtitle lie inside the picture, not cut at its edge
        box = text.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width
    legend = fig.legends[0].get_window_extent(renderer)
    assert 0 <= legend.x0 and legend.x1 <= fig.bbox.width
    chart = render_trend(example_points(END), title=LONG, labels=labels("fr"), locale="fr")
    assert LONG in chart.alt  # the alt text names the scope in full
    assert chart.filename.startswith("causette-trend-ventes-equipe-region-auvergne") and chart.filename.isascii()


def test_suppressed_weeks_are_gaps_not_zeros() -> None:
    points = example_points(END)
    hidden = [i for i, p in enumerate(points) if p.contributors is None]
    assert hidden == [2, 7]
    fig = trend_figure(points, title="#sales", labels=labels("en"), locale="en")
    ax = fig.axes[0]
    bars = [p for c in ax.containers for p in c]
    assert len(bars) == len(points) - len(hidden)
    assert sorted(round(b.get_x() + b.get_width() / 2) for b in bars) == [i for i in range(12) if i not in hidden]
    assert all(b.get_height() > 0 for b in bars)
    line = ax.get_lines()[0]
    ys = list(line.get_ydata())
    assert [i for i, y in enumerate(ys) if math.isnan(y)] == hidden  # the line breaks there
    assert "Too few people: not shown" in drawn_texts(fig)


def test_alt_text_summarises_the_trend_in_the_readers_language() -> None:
    points = example_points(END)
    en = render_trend(points, title="#sales", labels=labels("en"), locale="en").alt
    assert en == ("Contributors per week in #sales, 12 weeks: from 7 to 16. 2 weeks not shown (too few people). "
                  "Participation 27% last week.")
    fr = render_trend(points, title="#ventes", labels=labels("fr"), locale="fr").alt
    assert fr == ("Contributeurs par semaine dans #ventes, sur 12 semaines : de 7 à 16. 2 semaines non affichées "
                  "(trop peu de personnes). Participation de 27 % la semaine dernière.")


def test_everything_suppressed_or_a_hidden_last_week_still_makes_a_chart() -> None:
    nothing = [WeekPoint(p.week_start, None, None) for p in example_points(END)]
    chart = render_trend(nothing, title="#tiny", labels=labels("en"), locale="en")
    assert png_size(chart.png) == (800, 420)
    assert chart.alt == ("Contributors per week in #tiny, 12 weeks: too few people to show any week. "
                         "Participation last week not shown (too few people).")
    last_hidden = example_points(END)[:-1] + [WeekPoint(END, None, None)]
    fr = render_trend(last_hidden, title="#ventes", labels=labels("fr"), locale="fr").alt
    assert "de 7 à 14" in fr and "3 semaines non affichées" in fr and "la semaine dernière non affichée" in fr
    one = render_trend([WeekPoint(END, 3, 0.5)], title="#new", labels=labels("fr"), locale="fr")
    assert "sur 1 semaine : de 3 à 3" in one.alt and png_size(one.png) == (800, 420)


def test_renders_from_several_threads_give_the_same_pictures() -> None:
    jobs = [("fr", "#ventes"), ("en", "#sales"), ("fr", LONG), ("en", "#support")] * 2
    alone = [render_trend(example_points(END), title=t, labels=labels(loc), locale=loc).png for loc, t in jobs]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda j: render_trend(example_points(END), title=j[1], labels=labels(j[0]), locale=j[0]).png, jobs))
    assert together == alone


def test_a_warm_chart_renders_well_under_a_second() -> None:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        render_trend(example_points(END), title="#sales", labels=labels("en"), locale="en")
        times.append(time.perf_counter() - start)
    assert sorted(times)[1] < 1.0  # the target is 500 ms (bench: chart_ms); this machine is shared


def test_importing_charts_loads_no_matplotlib_and_rendering_uses_no_pyplot() -> None:
    code = ("import sys, bot.charts, bot.types\n"
            "assert 'matplotlib' not in sys.modules, 'imported at import time'\n"
            "from datetime import date\n"
            "bot.charts.warm_up()\n"
            "assert 'matplotlib' in sys.modules\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot has global state'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
