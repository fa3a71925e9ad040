"""The MetadataStore interface, run against SQLite (embedded) and PostgreSQL (on loopback)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from leitstand.domain.assets import parse_asset_model
from leitstand.domain.errors import InputError
from leitstand.domain.tenancy import Role, Tenant
from leitstand.store.sql import SqlMetadataStore
from leitstand.store.sql.tables import Base

POSTGRES_URL = os.environ.get(
    "LEITSTAND_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.sqlite'}"
        return
    name = f"leitstand_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def store(url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(url)
    s.ensure_tenant(Tenant("acme", "ACME"))
    yield s
    s.close()


def test_the_migrated_schema_matches_the_orm_tables(url: str) -> None:
    SqlMetadataStore(url).close()
    engine = sa.create_engine(url)
    with engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    engine.dispose()


def test_opening_twice_keeps_the_data(url: str) -> None:
    first = SqlMetadataStore(url)
    first.ensure_tenant(Tenant("acme", "ACME"))
    first.close()
    again = SqlMetadataStore(url)
    assert again.tenant("acme") == Tenant("acme", "ACME")
    again.close()


def test_users_are_found_by_name_with_their_tenant_and_role(store: SqlMetadataStore) -> None:
    created = store.create_user("acme", "ada", "hash", Role.ENGINEER)
    found = store.user_by_name("ada")
    assert found == (created, "hash")
    assert found[0].tenant_id == "acme"
    assert store.user_by_name("nobody") is None


def test_a_username_is_unique_and_users_need_an_existing_tenant(store: SqlMetadataStore) -> None:
    store.create_user("acme", "ada", "hash", Role.VIEWER)
    with pytest.raises(InputError, match="already exists"):
        store.create_user("acme", "ada", "hash", Role.VIEWER)
    with pytest.raises(InputError, match="does not exist"):
        store.create_user("ghost", "bob", "hash", Role.VIEWER)


def test_credentials_resolve_to_their_principal_until_deleted(store: SqlMetadataStore) -> None:
    who = store.create_user("acme", "ada", "hash", Role.VIEWER)
    expires = datetime.now(UTC) + timedelta(hours=1)
    store.store_credential("h1", who.user_id, "session", expires)
    credential = store.credential("h1")
    assert credential is not None
    assert credential.principal == who
    assert abs(credential.expires_at - expires) < timedelta(seconds=1)
    store.delete_credential("h1")
    assert store.credential("h1") is None


def test_importing_a_model_twice_changes_nothing_the_second_time(
    store: SqlMetadataStore, example_model: dict
) -> None:
    model = parse_asset_model(example_model)
    first = store.import_asset_model("acme", model)
    second = store.import_asset_model("acme", model)
    assert first["assets_created"] == 6
    assert first["products_created"] == 1
    assert second == {"assets_created": 0, "assets_updated": 0, "products_created": 0, "products_updated": 0}
    assert [a.id for a in store.assets("acme")][:2] == ["acme", "hh"]


def test_the_model_reads_back_with_signals_products_and_calendars(
    store: SqlMetadataStore, example_model: dict
) -> None:
    store.import_asset_model("acme", parse_asset_model(example_model))
    machine = next(a for a in store.assets("acme") if a.id == "hh-press-l1-m1")
    assert {s.name: s.unit for s in machine.signals} == {"temperature": "degC", "motor_current": "A"}
    assert machine.ideal_cycle_s == 4.0
    assert store.products("acme")[0].ideal_cycle_s["hh-press-l1-m2"] == 4.5
    assert store.calendars("acme")["hh"]["holidays"] == ["2026-12-25"]


def test_tenants_see_only_their_own_assets(store: SqlMetadataStore, example_model: dict) -> None:
    store.ensure_tenant(Tenant("rival", "Rival"))
    store.import_asset_model("acme", parse_asset_model(example_model))
    assert store.assets("rival") == []
    assert store.products("rival") == []


def test_listeners_hear_about_model_changes(store: SqlMetadataStore, example_model: dict) -> None:
    heard: list[str] = []
    store.on_change(heard.append)
    store.import_asset_model("acme", parse_asset_model(example_model))
    assert heard == ["acme"]
