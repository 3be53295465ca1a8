"""The console messenger (adapters/console/messenger.py): a simulated workspace in a terminal.

Registered like the others (adapters/base.py) for what applies to it: it delivers effects and
ticks, but it has no settings of its own and is not served over HTTP (`python app.py console`
runs it). Import-light: the messenger module loads only when the console starts.
"""
from __future__ import annotations

from adapters.base import Registration

REGISTRATION = Registration(platform="console", title="Console")
