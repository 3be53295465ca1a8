"""Engine, sessions and the tenant guard.

Every session is opened for one tenant (`Database.session(tenant)`). A listener adds
`tenant = :tenant` to every ORM query on a TenantScoped model and stamps new rows,
so no query can cross workspaces by accident. Jobs that sweep all workspaces open
`Database.session(ALL_TENANTS)` explicitly.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria
from sqlalchemy.orm.util import LoaderCriteriaOption

from store.models import Base, TenantScoped

log = logging.getLogger(__name__)
ALL_TENANTS = "*"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class TenantError(RuntimeError):
    pass


def _scope_queries(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return
    tenant = state.session.info.get("tenant")
    if tenant is None:
        raise TenantError("query on a session opened without a tenant")
    if tenant == ALL_TENANTS:
        return
    state.statement = state.statement.options(_tenant_criteria(tenant))


@lru_cache(maxsize=4096)
def _tenant_criteria(tenant: str) -> LoaderCriteriaOption:
    """The guard's option for one tenant, built once: building it (the lambda's closure analysis)
    was about 40% of the guard's cost on every query. Options are immutable, so one object serves
    every session and thread; the tenant still reaches the SQL as a bound parameter."""
    return with_loader_criteria(TenantScoped, lambda cls: cls.tenant == tenant, include_aliases=True)


def _stamp_tenant(session: Session, flush_context: object, instances: object) -> None:
    tenant = session.info.get("tenant")
    for obj in session.new:
        if isinstance(obj, TenantScoped):
            if obj.tenant is None:
                if tenant in (None, ALL_TENANTS):
                    raise TenantError(f"new {type(obj).__name__} without a tenant")
                obj.tenant = tenant
            elif tenant not in (None, ALL_TENANTS) and obj.tenant != tenant:
                raise TenantError(f"{type(obj).__name__} of tenant {obj.tenant!r} written in {tenant!r}")


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, **kwargs: object) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)
    return engine


def unreachable(url: str) -> str | None:
    """Why the database at `url` cannot be reached, in one line (None when it can): the reason
    the tests and benchmarks give when they skip a backend."""
    try:
        db = Database(url)
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            db.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure is the reason
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._factory, "do_orm_execute", _scope_queries)
        event.listen(self._factory, "before_flush", _stamp_tenant)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def new_session(self, tenant: str) -> Session:
        session = self._factory()
        session.info["tenant"] = tenant
        return session

    @contextmanager
    def session(self, tenant: str) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any exception."""
        session = self.new_session(tenant)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self) -> None:
        """Bring an empty or older database to the latest schema (all migration heads)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(727274)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")

    def analyze(self) -> None:
        """Refresh the query planner's statistics. SQLite gathers none by itself: without them
        it cannot tell a selective index from a useless one (PostgreSQL's autovacuum does this
        too; running it again is harmless)."""
        with self.engine.begin() as conn:
            conn.execute(text("ANALYZE"))

    def drop_everything(self) -> None:
        """Tests only: remove every table, Alembic's included."""
        with self.engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))

    def dispose(self) -> None:
        self.engine.dispose()
