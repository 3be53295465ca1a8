"""The issue's "done when" script, piped into `python app.py console --demo` as a user would:
/as a salesperson → who knows kubernets → profile of the first result → skills add →
lang fr → qui connaît appel d'offres. Also: garbage lines never stop the console."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOCK = "2026-11-23T09:00:00+00:00"


def run_console(tmp_path: Path, lines: list[str], *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAUSETTE_", "SLACK_", "MICROSOFT_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "app.py", "--database-url", f"sqlite:///{tmp_path / 'console.db'}", "console", "--demo", "--clock", CLOCK,
         *flags],
        input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=ROOT, env=env, timeout=360,
    )


def test_done_when_script(tmp_path: Path) -> None:
    first = run_console(tmp_path, ["/as james", "/in #sales", "/causette who knows kubernets"])
    assert first.returncode == 0, first.stderr
    # The first result's profile button tells us whom to look up next, as a user would read it.
    button = re.search(r"\[1\] Profile: ([^(]+)\(/causette (profile @\w+)\)", first.stdout)
    assert button, first.stdout
    first_name, profile_command = button.group(1).strip(), button.group(2)
    assert "Close matches" in first.stdout and "kubernetes" in first.stdout

    done = run_console(tmp_path, [
        "/as james",
        "/in #sales",
        f"/causette {profile_command}",
        "/causette skills add kubernetes, appel d'offres",
        "/causette lang fr",
        "/as sophie",
        "/causette qui connaît appel d'offres",
    ])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    profile = out[out.index(f"/causette {profile_command}"):out.index("/causette skills add")]
    assert f"Profile of {first_name}." in profile and "kubernetes — declared, confirmed" in profile
    assert "Added to your profile: kubernetes, appel d'offres." in out
    assert "je vous parlerai désormais en français" in out or "français" in out
    french = out[out.index("/causette qui connaît appel d'offres"):]
    assert "Qui connaît appel d'offres" in french and "Correspondent à « appel d'offres »" in french
    assert "James Smith" in french and "a déclaré appel d'offres, confirmée aujourd'hui" in french
    assert "Traceback" not in done.stderr


GARBAGE = ["/causette", "/causette \x07 \x1b[31m", "/causette who knows " + "é" * 3000,
           "/causette skills add '; DROP TABLE people; --", "/causette 🤖🤖", "/as", "/nope", "/causette profile set tz ../../etc"]


def test_garbage_lines_get_answers_and_exit_zero(tmp_path: Path) -> None:
    done = run_console(tmp_path, ["/as james", *GARBAGE, "/causette profile"])
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    answers = done.stdout.count("Causette: ")
    assert answers >= 7, done.stdout  # every bot line got an answer (console-only lines print their own notes)
    assert "Profile of James Smith." in done.stdout  # the console kept going and the database is intact


def test_the_console_speaks_english_unless_started_with_lang_fr(tmp_path: Path) -> None:
    """Its own lines follow the keyboard, not @sophie (French) or whoever `/as` makes you."""
    lines = ["/as julien", "/in #sales", "/nope"]
    english = run_console(tmp_path, lines)
    assert english.returncode == 0, english.stderr
    assert "(console) you are now @julien" in english.stdout and "(console) you are now in #sales" in english.stdout
    assert "unknown console command /nope" in english.stdout
    french = run_console(tmp_path, lines, "--lang", "fr")
    assert french.returncode == 0, french.stderr
    assert "(console) vous êtes maintenant @julien" in french.stdout and "you are now" not in french.stdout
    bad = run_console(tmp_path, [], "--lang", "klingon")
    assert bad.returncode == 2 and "--lang" in bad.stderr and "Traceback" not in bad.stderr


def test_a_scripted_month_prints_one_summary_line_and_the_messages_by_recipient(tmp_path: Path) -> None:
    done = run_console(tmp_path, ["/as julien", "/clock +30d", "/as james", "/causette profile"])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    clock = out[out.index("/clock +30d"):out.index("/as james")]
    assert "moving time forward" not in clock  # no progress redrawn into a script's output
    summary = re.search(r"\(console\) \+30d: \d+ clock ticks, [\d,]+ job runs, messages: (\d+) \(recipients: (\d+)\)", clock)
    assert summary, clock
    recipients = re.findall(r"^→ @(\w+) \(DM\)", clock, re.MULTILINE)
    assert len(recipients) == len(set(recipients)) == int(summary.group(2))
    assert "it is now 2026-12-23 09:00 UTC" in clock
    assert "Profile of James Smith." in out
