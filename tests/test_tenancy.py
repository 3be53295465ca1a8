"""No query crosses workspaces: the guard filters reads and refuses foreign writes."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.types import UserRef
from store import people
from store.db import ALL_TENANTS, Database, TenantError
from store.models.core import Person


def test_reads_are_scoped_to_the_session_tenant(db_url: str, clock) -> None:
    db = Database(db_url)
    for tenant in ("T1", "T2"):
        with db.session(tenant) as s:
            people.ensure_workspace(s, tenant, "slack", "en")
            people.upsert_person(s, UserRef("slack", tenant, "U1", f"alice-{tenant}"), clock.now())
    with db.session("T1") as s:
        names = [p.display_name for p in s.scalars(select(Person))]
    assert names == ["alice-T1"]
    with db.session(ALL_TENANTS) as s:
        assert len(s.scalars(select(Person)).all()) == 2
    db.dispose()


def test_writing_another_tenants_row_is_refused(db_url: str, clock) -> None:
    db = Database(db_url)
    with pytest.raises(TenantError):
        with db.session("T1") as s:
            s.add(Person(tenant="T2", external_id="U9", created_at=clock.now(), updated_at=clock.now()))
    with pytest.raises(TenantError):
        with db.session(None) as s:  # type: ignore[arg-type]
            s.scalars(select(Person)).all()
    db.dispose()
