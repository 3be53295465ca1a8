"""Feature handlers. Each module here exposes `register(registry)`; nothing else is shared."""
from __future__ import annotations

import importlib
import pkgutil

from bot.registry import Registry


def build_registry() -> Registry:
    registry = Registry()
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(registry)
    return registry
