"""All ORM models. Each feature keeps its tables in its own module; importing this
package imports every module so `Base.metadata` is complete for Alembic."""
from __future__ import annotations

import importlib
import pkgutil

from store.models.base import Base, TenantScoped


def load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


load_all()

__all__ = ["Base", "TenantScoped", "load_all"]
