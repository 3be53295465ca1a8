"""Causette's entry point.

    python app.py                 console on SQLite with the demo organisation, or the HTTP
                                  server when Slack or Teams credentials are configured
    python app.py console --demo  the console messenger (scriptable: pipe lines on stdin); its own
                                  lines are in the default language: English, `--lang fr` for French
    python app.py serve           the HTTP server (Slack /slack/events, Teams /api/messages)
    python app.py migrate         bring the database schema up to date
    python app.py check-config    print what the configuration was understood as (secrets masked);
                                  exit 0 when valid, 2 with a one-line error otherwise

Configuration is read here, once: environment variables (see README) and flags.
"""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime

from bot.clock import FixedClock, OffsetClock, SystemClock
from adapters.base import served, statuses, titles
from bot.config import ConfigError, Settings, describe_settings, load_settings
from bot.context import Services
from bot.core import Bot
from bot.i18n import Prompts


def build_services(settings: Settings, clock: object | None = None, *, migrate: bool = True) -> Services:
    from handlers import build_registry
    from store.db import Database

    db = Database(settings.database_url)
    if migrate:
        db.upgrade()
    return Services(
        settings=settings,
        db=db,
        prompts=Prompts.load(default=settings.default_locale),
        clock=clock or SystemClock(),  # type: ignore[arg-type]
        registry=build_registry(),
    )


def run_console(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.console.messenger import ConsoleMessenger
    from adapters.console.seed import demo_history, seed_demo
    from handlers.expertise import meaning
    from handlers.expertise.lookup import ExpertiseCache
    from store.demo import DEMO_ADMIN, DEMO_TENANT

    if not settings.admins:
        settings.admins = [DEMO_ADMIN]
    start = datetime.fromisoformat(args.clock) if args.clock else None
    clock = FixedClock(start) if start else OffsetClock()
    bot = Bot(build_services(settings, clock))
    # As a server does (adapters/server.py, warm_in_background): the model loads in a thread while
    # the demo is seeded, and a lookup never waits for it inside its transaction; until it is
    # there, lookups answer by spelling.
    cache = bot.services.extras.setdefault("expertise", ExpertiseCache.for_files(settings.aliases_file))
    cache.background_model = True
    meaning.load_in_background()
    if args.demo:
        seed_demo(bot)
    messenger = ConsoleMessenger(bot, DEMO_TENANT, args.as_user, history=demo_history, lang=settings.default_locale)
    return messenger.run(sys.stdin)


def run_server(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.server import serve

    bot = Bot(build_services(settings))
    return serve(bot, settings)


FLAGS = {"database_url": "--database-url", "default_locale": "--lang", "admins": "--admins"}


def check_config(settings: Settings) -> int:
    """What was understood, secrets masked; reached only when the configuration is valid."""
    rows = describe_settings(settings)
    width = max(len(env) for env, _field, _shown in rows)
    print("Causette configuration (environment variables and flags, as understood):")
    for env, _field, shown in rows:
        print(f"  {env.ljust(width)}  {shown}")
    print("Messengers:")
    found = statuses(settings)
    for status in found:
        print(f"  {status.title.ljust(8)}{'configured: ' if status.configured else ''}{status.detail}")
    serving = [s.title for s in found if s.configured]
    if serving:
        print(f"`python app.py` serves {' and '.join(serving)} on http://{settings.host}:{settings.port}")
    else:
        print(f"`python app.py` starts the console (no {titles()} credentials)")
    print("configuration is valid")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="causette", description="Causette, the enterprise social network in your chat.")
    parser.add_argument("--database-url", help="overrides DATABASE_URL")
    parser.add_argument("--lang", help="workspace default language: en or fr")
    parser.add_argument("--admins", action="append",
                        help="admin ids, handles or e-mails, separated by commas or spaces (may be repeated)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command")
    console = sub.add_parser("console", help="the console messenger")
    console.add_argument("--demo", action="store_true", help="seed the demo organisation (once)")
    console.add_argument("--as", dest="as_user", default="sophie", help="who you are at start (a demo handle)")
    console.add_argument("--clock", help="start the clock at this ISO time (UTC offset required), for scripts")
    console.add_argument("--lang", dest="console_lang",
                         help="the console's language, en (default) or fr: its own lines, and the default for new workspaces")
    sub.add_parser("serve", help="serve Slack and Teams over HTTP")
    sub.add_parser("migrate", help="upgrade the database schema")
    sub.add_parser("check-config", help="print the configuration as understood (secrets masked) and whether it is valid")
    args = parser.parse_args(argv)

    overrides: dict[str, object] = {}
    if args.database_url:
        overrides["database_url"] = args.database_url
    lang = getattr(args, "console_lang", None) or args.lang
    if lang:
        overrides["default_locale"] = lang
    if args.admins:
        overrides["admins"] = args.admins[0] if len(args.admins) == 1 else ",".join(args.admins)
    try:
        settings = load_settings(overrides, flags=FLAGS)
    except ConfigError as err:
        print(f"causette: {err}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        return check_config(settings)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING if args.command in (None, "console") else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    command = args.command
    if command is None:
        if served(settings):
            command = "serve"
        else:
            command = "console"
            args = parser.parse_args(["console", "--demo", *(argv or [])[0:0]])
    if command == "console":
        return run_console(settings, args)
    if command == "serve":
        return run_server(settings, args)
    if command == "migrate":
        from store.db import Database

        Database(settings.database_url).upgrade()
        print("database is up to date")
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
