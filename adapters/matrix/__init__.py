"""Matrix adapter (matrix-nio with vodozemac end-to-end encryption). Import-light: nio loads
only inside the runtime, which `mount` builds.

    mount(app, bot, settings, outbox)

registers the "matrix" processor with the app's durable inbox, the "matrix" sender in the
outbox (jobs: digests, notifications, outbox retries), and starts the account's sync loop with
the app (stops it at cleanup). No HTTP route: Matrix is synced, not called. `REGISTRATION` is
its entry in adapters/base.py's list (settings: adapters/matrix/settings.py). The modules:
`inbound.py` (events → neutral events, pure), `render.py` (replies → message contents, pure),
`forms.py` (guided forms, pure), `state.py` (the `matrix_state` table), `sender.py`
(delivery), `runtime.py` (login, sync loop, inbox processor). See docs/matrix.md.

One sync loop per bot account: the runtime takes a lease in the database (`matrix_state`,
name `lease`) before syncing. A second process configured with the same account logs an
error and stays idle for Matrix (retrying every 30 s; it takes over when the first stops);
run Matrix in one process and let the others serve Slack/Teams.

How a test starts and stops the bot against a homeserver (no aiohttp app needed)
------------------------------------------------------------------------------------
    from adapters.matrix.runtime import MatrixRuntime

    settings = settings.model_copy(update={
        "matrix_homeserver": "http://127.0.0.1:8601",
        "matrix_user_id": "@causette:localhost",
        "matrix_password": "…",                    # or matrix_access_token + matrix_device_id
        "matrix_store_path": str(tmp_path / "store"),  # keep it to restart with the same device
        "matrix_encryption": True,
        # "matrix_allowed_servers": "localhost",   # default: the bot's own server
    })
    seen = []                                      # every reply, as rendered, before it is sent
    runtime = MatrixRuntime(bot, settings, observer=lambda outbound, content: seen.append(
        (outbound.reply.key, content["body"])), sync_timeout_ms=1000)
    await runtime.start()        # logs in, uploads keys, first sync (past messages NOT answered), sync loop;
                                 # runs its own inbox worker (2 threads) unless attached to an app
    ... a human account sends "!causette help" in a room the bot joined; its event id is eid ...
    assert await runtime.wait_for(eid, timeout=20)   # True once that event was processed and its
                                                     # replies sent (or the bot chose to ignore it)
    assert await runtime.settle(timeout=20)          # a sync started after the call completed and
                                                     # everything written is processed (no-reply steps)
    await runtime.stop()         # stops syncing, drains the inbox, releases the lease, closes the client

- `observer(outbound, content)`: `outbound` is the `bot.types.Outbound` (its `reply.key` is the
  prompt key), `content` the `m.room.message` content (`body`, `formatted_body`, `m.mentions`).
  It is called for every reply the sender renders (DMs, forms' questions, private answers;
  not the public "answered you in private" acknowledgement, like Teams).
- Invites from allowed servers are joined automatically (the join arrives in a sync: wait with
  `settle`). Direct chats the bot opens are encrypted when `matrix_encryption` is on.
- A restart: `await runtime.stop()`, then a new `MatrixRuntime(bot, same settings)` and
  `start()`: the device and its keys come back from `matrix_store_path` (credentials.json after
  a password login), the sync resumes after the stored token, nothing already handled is
  answered again (the inbox deduplicates by event id).
- Jobs' effects: `runtime.deliver(effects)` from any thread but the runtime's event loop
  (on the loop: `await runtime.sender.deliver(effects)`). `start()` sets
  `bot.services.deliver` to it when nothing else did.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.base import Registration
from adapters.matrix import settings as _settings

if TYPE_CHECKING:
    from adapters.matrix.runtime import MatrixRuntime
    from bot.config import Settings
    from bot.core import Bot


def mount(app: Any, bot: "Bot", settings: "Settings", outbox: Any) -> "MatrixRuntime":
    """Serve Matrix with `app`: returns the runtime (also under `runtime_key()` in the app)."""
    from adapters.matrix.runtime import MatrixRuntime

    runtime = MatrixRuntime(bot, settings)
    runtime.attach(app, outbox)
    app[runtime_key()] = runtime
    return runtime


def runtime_key() -> Any:
    """The aiohttp app key under which `mount` leaves its MatrixRuntime."""
    from aiohttp import web

    from adapters.matrix.runtime import MatrixRuntime

    global _RUNTIME_KEY
    if _RUNTIME_KEY is None:
        _RUNTIME_KEY = web.AppKey("matrix_runtime", MatrixRuntime)
    return _RUNTIME_KEY


_RUNTIME_KEY: Any = None

REGISTRATION = Registration(platform="matrix", title=_settings.TITLE, settings_model=_settings.MatrixSettings,
                            configured=_settings.configured, describe=_settings.describe, mount=mount)
