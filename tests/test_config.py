"""Configuration takes values as people type them (README set-up, flags) and says in one line
what is wrong with one; `python app.py check-config` shows what was understood, secrets masked."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import AliasChoices

import app
from bot.config import ConfigError, Settings, load_settings, mask_secret

ROOT = Path(__file__).resolve().parent.parent
BOT_TOKEN = "xoxb-1111-2222-SECRETBOTTOKEN-9f3a"
SIGNING_SECRET = "8f1c0ffee5ec2e7signing77ab"
SHORT_PASSWORD = "pw12345"


def env_names() -> set[str]:
    names = set()
    for field, info in Settings.model_fields.items():
        names.add(f"CAUSETTE_{field.upper()}")
        if isinstance(info.validation_alias, AliasChoices):
            names.update(str(c) for c in info.validation_alias.choices)
    return names


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting inherited from the machine running the tests."""
    for name in env_names():
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def clean_environ(**values: str) -> dict[str, str]:
    names = {n.upper() for n in env_names()}
    base = {k: v for k, v in os.environ.items() if k.upper() not in names}
    return {**base, **values}


def run_app(*args: str, **env_values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=clean_environ(**env_values),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("typed, expected", [
    ("alice@example.com", ["alice@example.com"]),
    ("U1,U2", ["U1", "U2"]),
    ("U1 U2", ["U1", "U2"]),
    (" U1 ,  U2,", ["U1", "U2"]),
    ('["U1", "U2"]', ["U1", "U2"]),
    ("", []),
])
def test_admins_from_the_environment_in_every_form(env: pytest.MonkeyPatch, typed: str, expected: list[str]) -> None:
    env.setenv("CAUSETTE_ADMINS", typed)
    assert load_settings().admins == expected


def test_admins_from_flags_and_code(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert Settings(admins="U1, U2").admins == ["U1", "U2"]
    assert Settings(admins=["camille"]).admins == ["camille"]
    env.setenv("CAUSETTE_ADMINS", "ignored-by-the-flag")
    assert app.main(["--admins", "U1", "--admins", "U2 U3", "check-config"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.strip().startswith("CAUSETTE_ADMINS"))
    assert line.split(None, 1)[1] == "U1, U2, U3"


def test_the_readme_set_up_starts(tmp_path: Path) -> None:
    """`export CAUSETTE_ADMINS=alice@example.com` used to stop the app with "Input should be a valid list"."""
    done = run_app("--admins", "U1", "migrate", CAUSETTE_ADMINS="alice@example.com",
                   DATABASE_URL=f"sqlite:///{tmp_path / 'causette.db'}")
    assert done.returncode == 0, done.stderr
    assert "database is up to date" in done.stdout


@pytest.mark.parametrize("variable, value, expected", [
    ("PORT", "abc", "PORT='abc' is not a whole number"),
    ("PORT", "70000", "PORT='70000' is not a port number (1-65535)"),
    ("DATABASE_URL", "mysql://root@db/causette", "DATABASE_URL='mysql://root@db/causette' has scheme 'mysql', which is not supported"),
    ("DATABASE_URL", "causette.db", "DATABASE_URL is not a database URL"),  # unparsed: never echoed
    ("CAUSETTE_DEFAULT_LOCALE", "de", "CAUSETTE_DEFAULT_LOCALE='de' is not a supported language (en or fr)"),
    ("CAUSETTE_QUIET_HOURS", "late", "CAUSETTE_QUIET_HOURS='late' is not a time range"),
    ("CAUSETTE_RETENTION_DAYS", "0", "CAUSETTE_RETENTION_DAYS='0' must be 1 or more"),
    ("CAUSETTE_TEAMS_ENABLED", "maybe", "CAUSETTE_TEAMS_ENABLED='maybe' is not true or false"),
    ("CAUSETTE_ADMINS", "[alice", "CAUSETTE_ADMINS='[alice' starts with '[' but is not a JSON list"),
])
def test_a_wrong_value_is_named_in_one_line(env: pytest.MonkeyPatch, variable: str, value: str, expected: str) -> None:
    env.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("invalid configuration: ") and expected in message
    assert "\n" not in message


def test_several_wrong_values_are_all_named(env: pytest.MonkeyPatch) -> None:
    env.setenv("PORT", "x")
    env.setenv("CAUSETTE_DEFAULT_LOCALE", "de")
    with pytest.raises(ConfigError, match=r"CAUSETTE_DEFAULT_LOCALE='de' .*; PORT='x' "):
        load_settings()


def test_values_are_taken_as_typed(env: pytest.MonkeyPatch) -> None:
    env.setenv("CAUSETTE_DEFAULT_LOCALE", "fr-FR")
    env.setenv("DATABASE_URL", "postgres://bob@db/causette")
    env.setenv("CAUSETTE_TEAMS_ENABLED", "yes")
    env.setenv("CAUSETTE_COMMAND_NAME", "causette")
    settings = load_settings()
    assert settings.default_locale == "fr"
    assert settings.database_url == "postgresql://bob@db/causette"
    assert settings.teams_enabled is True
    assert settings.command_name == "/causette"
    assert load_settings({"default_locale": "EN"}).default_locale == "en"


def test_a_wrong_flag_is_named_as_a_flag(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["--lang", "de", "check-config"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "causette: invalid configuration: --lang='de' is not a supported language (en or fr)"


def test_passwords_never_appear_in_errors_or_repr(env: pytest.MonkeyPatch) -> None:
    env.setenv("DATABASE_URL", "mysql://bob:hunter2@db/causette")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "hunter2" not in str(raised.value) and "mysql://bob:***@db/causette" in str(raised.value)
    settings = Settings(database_url="postgresql://bob:hunter2@db/causette", slack_bot_token=BOT_TOKEN,
                        slack_signing_secret=SIGNING_SECRET, teams_app_password=SHORT_PASSWORD)
    for secret in ("hunter2", BOT_TOKEN, SIGNING_SECRET, SHORT_PASSWORD):
        assert secret not in repr(settings) and secret not in str(settings)


def test_secrets_show_at_most_their_last_four_characters() -> None:
    assert mask_secret("") == "not set"
    assert mask_secret(BOT_TOKEN) == "set (…9f3a)"
    assert mask_secret(SHORT_PASSWORD) == "set"  # last 4 of a short secret would give too much away


def test_check_config_shows_what_was_understood_with_secrets_masked() -> None:
    done = run_app("--admins", "U1", "check-config", CAUSETTE_ADMINS="alice@example.com",
                   DATABASE_URL="postgresql://bob:hunter2@db.internal:5432/causette", SLACK_BOT_TOKEN=BOT_TOKEN,
                   SLACK_SIGNING_SECRET=SIGNING_SECRET, MicrosoftAppPassword=SHORT_PASSWORD, PORT="8080")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for secret in ("hunter2", BOT_TOKEN, SIGNING_SECRET, SHORT_PASSWORD):
        assert secret not in out
    shown = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in out.splitlines()
             if line.startswith("  ") and len(line.split(None, 1)) == 2}
    assert shown["DATABASE_URL"] == "postgresql://bob:***@db.internal:5432/causette"
    assert shown["CAUSETTE_ADMINS"] == "U1"  # the flag wins over the environment
    assert shown["SLACK_BOT_TOKEN"] == "set (…9f3a)"
    assert shown["SLACK_SIGNING_SECRET"] == "set (…77ab)"
    assert shown["MicrosoftAppPassword"] == "set"
    assert shown["SLACK_APP_TOKEN"] == "not set"
    assert shown["PORT"] == "8080"
    assert {"CAUSETTE_DEFAULT_LOCALE", "CAUSETTE_RETENTION_DAYS", "CAUSETTE_QUIET_HOURS", "SLACK_API_URL",
            "MicrosoftAppId", "CAUSETTE_TEAMS_ENABLED"} <= set(shown)
    assert "Slack   configured: HTTP events, one workspace" in out
    assert "Teams   not configured" in out
    assert out.rstrip().endswith("configuration is valid")


def test_check_config_says_what_a_messenger_lacks() -> None:
    done = run_app("check-config", SLACK_BOT_TOKEN=BOT_TOKEN)
    assert done.returncode == 0, done.stderr
    assert "Slack   incomplete: needs SLACK_SIGNING_SECRET" in done.stdout
    assert "starts the console" in done.stdout


def test_check_config_fails_with_one_line_and_no_traceback() -> None:
    done = run_app("check-config", PORT="abc", CAUSETTE_ADMINS="U1,U2")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == "causette: invalid configuration: PORT='abc' is not a whole number"
