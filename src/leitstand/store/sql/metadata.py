"""MetadataStore on SQLAlchemy 2. The schema is created and upgraded by Alembic on open."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, delete, event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from leitstand.domain.assets import Asset, AssetLevel, AssetModel, Product, Signal
from leitstand.domain.errors import InputError
from leitstand.domain.tenancy import Principal, Role, Tenant
from leitstand.store.interfaces import Credential
from leitstand.store.sql.tables import (
    AssetRow,
    CredentialRow,
    IdealCycleRow,
    ProductRow,
    SignalRow,
    TenantRow,
    UserRow,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade_schema(engine: Engine) -> None:
    """Bring the database schema to the newest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class SqlMetadataStore:
    """MetadataStore on any SQLAlchemy URL: `sqlite:///…` embedded, `postgresql+psycopg://…` at scale."""

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url)
        if url.startswith("sqlite"):
            event.listen(self._engine, "connect", _sqlite_pragmas)
        upgrade_schema(self._engine)
        self._session = sessionmaker(self._engine, expire_on_commit=False)
        self._listeners: list[Callable[[str], None]] = []
        self._lock = threading.Lock()

    # tenants and users -----------------------------------------------------------------------------

    def ensure_tenant(self, tenant: Tenant) -> None:
        with self._session.begin() as s:
            row = s.get(TenantRow, tenant.id)
            if row is None:
                s.add(TenantRow(id=tenant.id, name=tenant.name))
            else:
                row.name = tenant.name

    def tenant(self, tenant_id: str) -> Tenant | None:
        with self._session() as s:
            row = s.get(TenantRow, tenant_id)
            return Tenant(row.id, row.name) if row else None

    def create_user(self, tenant_id: str, username: str, password_hash: str, role: Role) -> Principal:
        with self._session.begin() as s:
            if s.get(TenantRow, tenant_id) is None:
                raise InputError(f"tenant {tenant_id!r} does not exist")
            if s.scalar(select(UserRow).where(UserRow.username == username)) is not None:
                raise InputError(f"user {username!r} already exists")
            row = UserRow(
                tenant_id=tenant_id, username=username, password_hash=password_hash, role=role.value
            )
            s.add(row)
            s.flush()
            return Principal(tenant_id=tenant_id, user_id=row.id, username=username, role=role)

    def user_by_name(self, username: str) -> tuple[Principal, str] | None:
        with self._session() as s:
            row = s.scalar(select(UserRow).where(UserRow.username == username))
            if row is None:
                return None
            return _principal(row), row.password_hash

    def update_password_hash(self, user_id: int, password_hash: str) -> None:
        with self._session.begin() as s:
            row = s.get(UserRow, user_id)
            if row is not None:
                row.password_hash = password_hash

    def store_credential(
        self, secret_hash: str, user_id: int, kind: str, expires_at: datetime | None, name: str = ""
    ) -> None:
        with self._session.begin() as s:
            s.add(
                CredentialRow(
                    secret_hash=secret_hash,
                    user_id=user_id,
                    kind=kind,
                    name=name,
                    created_at=datetime.now(UTC),
                    expires_at=expires_at,
                )
            )

    def credential(self, secret_hash: str) -> Credential | None:
        with self._session() as s:
            row = s.get(CredentialRow, secret_hash)
            if row is None:
                return None
            user = s.get(UserRow, row.user_id)
            if user is None:
                return None
            expires = (
                row.expires_at.replace(tzinfo=UTC)
                if row.expires_at and not row.expires_at.tzinfo
                else row.expires_at
            )
            return Credential(principal=_principal(user), kind=row.kind, expires_at=expires)

    def delete_credential(self, secret_hash: str) -> None:
        with self._session.begin() as s:
            s.execute(delete(CredentialRow).where(CredentialRow.secret_hash == secret_hash))

    # asset model ---------------------------------------------------------------------------------

    def import_asset_model(self, tenant_id: str, model: AssetModel) -> dict[str, int]:
        counts = {"assets_created": 0, "assets_updated": 0, "products_created": 0, "products_updated": 0}
        with self._lock, self._session.begin() as s:
            if s.get(TenantRow, tenant_id) is None:
                raise InputError(f"tenant {tenant_id!r} does not exist")
            for asset in model.assets:
                row = s.get(AssetRow, (tenant_id, asset.id))
                values = {
                    "level": asset.level.value,
                    "name": asset.name,
                    "parent_id": asset.parent_id,
                    "path": asset.path,
                    "machine_type": asset.machine_type,
                    "timezone": asset.timezone,
                    "ideal_cycle_s": asset.ideal_cycle_s,
                    "calendar": model.calendars.get(asset.id),
                }
                if row is None:
                    s.add(AssetRow(tenant_id=tenant_id, id=asset.id, **values))
                    counts["assets_created"] += 1
                elif any(getattr(row, k) != v for k, v in values.items()):
                    for k, v in values.items():
                        setattr(row, k, v)
                    counts["assets_updated"] += 1
                for signal in asset.signals:
                    s.merge(
                        SignalRow(
                            tenant_id=tenant_id,
                            asset_id=asset.id,
                            name=signal.name,
                            unit=signal.unit,
                            description=signal.description,
                        )
                    )
            for product in model.products:
                _upsert_product(s, tenant_id, product, counts)
        for listener in list(self._listeners):
            listener(tenant_id)
        return counts

    def assets(self, tenant_id: str) -> list[Asset]:
        with self._session() as s:
            signals: dict[str, list[Signal]] = {}
            for sig in s.scalars(
                select(SignalRow).where(SignalRow.tenant_id == tenant_id).order_by(SignalRow.name)
            ):
                signals.setdefault(sig.asset_id, []).append(Signal(sig.name, sig.unit, sig.description))
            rows = s.scalars(select(AssetRow).where(AssetRow.tenant_id == tenant_id).order_by(AssetRow.path))
            return [
                Asset(
                    id=r.id,
                    level=AssetLevel(r.level),
                    name=r.name,
                    parent_id=r.parent_id,
                    path=r.path,
                    machine_type=r.machine_type,
                    timezone=r.timezone,
                    ideal_cycle_s=r.ideal_cycle_s,
                    signals=tuple(signals.get(r.id, ())),
                )
                for r in rows
            ]

    def products(self, tenant_id: str) -> list[Product]:
        with self._session() as s:
            cycles: dict[str, dict[str, float]] = {}
            for c in s.scalars(select(IdealCycleRow).where(IdealCycleRow.tenant_id == tenant_id)):
                cycles.setdefault(c.product_id, {})[c.asset_id] = c.ideal_cycle_s
            rows = s.scalars(
                select(ProductRow).where(ProductRow.tenant_id == tenant_id).order_by(ProductRow.id)
            )
            return [Product(r.id, r.name, cycles.get(r.id, {})) for r in rows]

    def calendars(self, tenant_id: str) -> dict[str, dict[str, object]]:
        with self._session() as s:
            rows = s.scalars(
                select(AssetRow).where(
                    AssetRow.tenant_id == tenant_id, AssetRow.level == AssetLevel.SITE.value
                )
            )
            return {r.id: r.calendar for r in rows if r.calendar}

    def on_change(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def ping(self) -> None:
        with self._engine.connect() as c:
            c.execute(text("SELECT 1"))

    def close(self) -> None:
        self._engine.dispose()


def _upsert_product(s: Session, tenant_id: str, product: Product, counts: dict[str, int]) -> None:
    row = s.get(ProductRow, (tenant_id, product.id))
    if row is None:
        s.add(ProductRow(tenant_id=tenant_id, id=product.id, name=product.name))
        counts["products_created"] += 1
    elif row.name != product.name:
        row.name = product.name
        counts["products_updated"] += 1
    existing = {
        c.asset_id: c
        for c in s.scalars(
            select(IdealCycleRow).where(
                IdealCycleRow.tenant_id == tenant_id, IdealCycleRow.product_id == product.id
            )
        )
    }
    for asset_id, seconds in product.ideal_cycle_s.items():
        if asset_id in existing:
            existing[asset_id].ideal_cycle_s = seconds
        else:
            s.add(
                IdealCycleRow(
                    tenant_id=tenant_id, product_id=product.id, asset_id=asset_id, ideal_cycle_s=seconds
                )
            )


def _principal(row: UserRow) -> Principal:
    return Principal(tenant_id=row.tenant_id, user_id=row.id, username=row.username, role=Role(row.role))


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
