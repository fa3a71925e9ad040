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

from leitstand.domain.agreements import Agreement, DataKind
from leitstand.domain.assets import parse_asset_model
from leitstand.domain.errors import Conflict, InputError
from leitstand.domain.tenancy import Role, Tenant
from leitstand.store.interfaces import AuditEntry, SigningKey
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
    with pytest.raises(Conflict, match="already exists"):
        store.create_user("acme", "ada", "hash", Role.VIEWER)
    with pytest.raises(InputError, match="does not exist"):
        store.create_user("ghost", "bob", "hash", Role.VIEWER)


def test_tokens_resolve_to_their_principal_until_deleted(store: SqlMetadataStore) -> None:
    who = store.create_user("acme", "ada", "hash", Role.VIEWER)
    expires = datetime.now(UTC) + timedelta(hours=1)
    store.store_token("j1", who.user_id, "session", expires)
    credential = store.token("j1")
    assert credential is not None
    assert credential.principal == who
    assert abs(credential.expires_at - expires) < timedelta(seconds=1)
    store.delete_token("j1")
    assert store.token("j1") is None


def test_api_tokens_are_listed_per_tenant_and_die_with_their_user(store: SqlMetadataStore) -> None:
    store.ensure_tenant(Tenant("rival", "Rival"))
    ada = store.create_user("acme", "ada", "hash", Role.VIEWER)
    eve = store.create_user("rival", "eve", "hash", Role.VIEWER)
    later = datetime.now(UTC) + timedelta(days=1)
    store.store_token("a-api", ada.user_id, "api", later, "script")
    store.store_token("a-session", ada.user_id, "session", later)
    store.store_token("e-api", eve.user_id, "api", later, "other")
    assert [c.jti for c in store.tokens("acme")] == ["a-api"]
    store.delete_user(ada.user_id)
    assert store.token("a-api") is None
    assert store.token("a-session") is None
    assert store.token("e-api") is not None


def test_a_gateway_keeps_its_site_and_mqtt_password_hash(store: SqlMetadataStore) -> None:
    gateway = store.create_user("acme", "acme/gw", "!", Role.GATEWAY, "service", "hh")
    assert gateway.site == "hh"
    now = datetime.now(UTC)
    assert store.mqtt_gateways(now) == []
    store.store_token("gw-key", gateway.user_id, "api", now + timedelta(days=1))
    store.set_mqtt_password_hash(gateway.user_id, "$7$101$x$y", "gw-key")
    assert store.mqtt_gateways(now) == [(gateway, "$7$101$x$y")]
    assert store.mqtt_gateways(now + timedelta(days=2)) == []  # the key, and so the password, expired
    store.delete_token("gw-key")
    assert store.mqtt_gateways(now) == []  # revoked


def test_agreements_are_seen_by_both_parties_and_revoked_once(store: SqlMetadataStore) -> None:
    store.ensure_tenant(Tenant("rival", "Rival", "BPNL000000000001"))
    store.ensure_tenant(Tenant("third", "Third"))
    now = datetime.now(UTC)
    offered = store.create_agreement(
        Agreement(
            0,
            "acme",
            "rival",
            "OEE of hh",
            "hh",
            frozenset({DataKind.KPI}),
            "cx.quality.base:1",
            "Quality:1.0",
            now,
            None,
            now,
            "acme-admin",
        )
    )
    assert [a.id for a in store.agreements("rival")] == [offered.id]
    assert store.agreements("third") == []
    assert store.agreements_between("acme", "rival")[0].kinds == frozenset({DataKind.KPI})
    revoked = store.revoke_agreement(offered.id, "acme-admin", now + timedelta(minutes=1))
    assert revoked is not None
    assert not revoked.in_force(now + timedelta(minutes=2))
    again = store.revoke_agreement(offered.id, "someone", now + timedelta(minutes=5))
    assert again is not None
    assert again.revoked_by == "acme-admin"


def test_a_business_partner_number_belongs_to_one_tenant(store: SqlMetadataStore) -> None:
    store.ensure_tenant(Tenant("rival", "Rival", "BPNL000000000001"))
    with pytest.raises(Conflict, match="belongs to another tenant"):
        store.ensure_tenant(Tenant("third", "Third", "BPNL000000000001"))


def test_the_audit_log_is_kept_per_tenant_newest_first(store: SqlMetadataStore) -> None:
    now = datetime.now(UTC)
    store.append_audit(
        [
            AuditEntry(now, "acme", "acme", "ada", "user_created", "user:bob", {"role": "viewer"}),
            AuditEntry(now, "acme", "rival", "eve", "shared_read", "/api/v1/kpi/oee", {"agreement": 1}),
            AuditEntry(now, "rival", "rival", "eve", "login", "user:eve", {}),
        ]
    )
    entries = store.audit("acme")
    assert [e.action for e in entries] == ["shared_read", "user_created"]
    assert [e.actor for e in store.audit("acme", shared=True)] == ["eve"]
    assert store.audit("acme", action="login") == []


def test_signing_keys_are_kept_and_retired(store: SqlMetadataStore) -> None:
    now = datetime.now(UTC)
    store.add_signing_key(SigningKey("k1", "pem-1", now))
    store.add_signing_key(SigningKey("k2", "pem-2", now + timedelta(seconds=1)))
    assert store.retire_signing_keys("k2", now) == ["k1"]
    assert [(k.kid, k.retired_at is None) for k in store.signing_keys()] == [("k1", False), ("k2", True)]


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
