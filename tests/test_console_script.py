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


def run_console(tmp_path: Path, lines: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAUSETTE_", "SLACK_", "MICROSOFT_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "app.py", "--database-url", f"sqlite:///{tmp_path / 'console.db'}", "console", "--demo", "--clock", CLOCK],
        input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
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
