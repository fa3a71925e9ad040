"""MetadataStore on SQLAlchemy 2. The schema is created and upgraded by Alembic on open."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, delete, event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from leitstand.domain.agreements import Agreement, DataKind
from leitstand.domain.assets import Asset, AssetLevel, AssetModel, Product, Signal
from leitstand.domain.errors import Conflict, InputError
from leitstand.domain.tenancy import Principal, Role, Tenant
from leitstand.domain.time_model import StateMapping, TimeCategory
from leitstand.store.interfaces import AuditEntry, Credential, SigningKey, StoredConnection
from leitstand.store.sql.tables import (
    AgreementRow,
    AssetRow,
    AuditRow,
    ConnectionRow,
    IdealCycleRow,
    ProductRow,
    SignalRow,
    SigningKeyRow,
    TenantRow,
    TokenRow,
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

    @property
    def engine(self) -> Engine:
        """The database engine, for stores that share the metadata database (alarms)."""
        return self._engine

    # tenants and users -----------------------------------------------------------------------------

    def ensure_tenant(self, tenant: Tenant) -> None:
        with self._session.begin() as s:
            if tenant.bpn is not None:
                holder = s.scalar(select(TenantRow).where(TenantRow.bpn == tenant.bpn))
                if holder is not None and holder.id != tenant.id:
                    raise Conflict(f"business partner number {tenant.bpn!r} belongs to another tenant")
            row = s.get(TenantRow, tenant.id)
            if row is None:
                s.add(TenantRow(id=tenant.id, name=tenant.name, bpn=tenant.bpn))
            else:
                row.name = tenant.name
                row.bpn = tenant.bpn if tenant.bpn is not None else row.bpn

    def tenant(self, tenant_id: str) -> Tenant | None:
        with self._session() as s:
            row = s.get(TenantRow, tenant_id)
            return Tenant(row.id, row.name, row.bpn) if row else None

    def tenants(self) -> list[Tenant]:
        with self._session() as s:
            return [Tenant(r.id, r.name, r.bpn) for r in s.scalars(select(TenantRow).order_by(TenantRow.id))]

    def create_user(
        self,
        tenant_id: str,
        username: str,
        password_hash: str,
        role: Role,
        kind: str = "human",
        site: str | None = None,
    ) -> Principal:
        with self._session.begin() as s:
            if s.get(TenantRow, tenant_id) is None:
                raise InputError(f"tenant {tenant_id!r} does not exist")
            if s.scalar(select(UserRow).where(UserRow.username == username)) is not None:
                raise Conflict(f"user {username!r} already exists")
            row = UserRow(
                tenant_id=tenant_id,
                username=username,
                password_hash=password_hash,
                role=role.value,
                kind=kind,
                site_id=site,
            )
            s.add(row)
            s.flush()
            return _principal(row)

    def user(self, user_id: int) -> Principal | None:
        with self._session() as s:
            row = s.get(UserRow, user_id)
            return _principal(row) if row else None

    def users(self, tenant_id: str) -> list[tuple[Principal, str]]:
        """The tenant's accounts with their kind (human, service, external), by name."""
        with self._session() as s:
            rows = s.scalars(select(UserRow).where(UserRow.tenant_id == tenant_id).order_by(UserRow.username))
            return [(_principal(r), r.kind) for r in rows]

    def set_role(self, user_id: int, role: Role) -> None:
        with self._session.begin() as s:
            row = s.get(UserRow, user_id)
            if row is not None:
                row.role = role.value

    def delete_user(self, user_id: int) -> None:
        with self._session.begin() as s:
            s.execute(delete(TokenRow).where(TokenRow.user_id == user_id))
            s.execute(delete(UserRow).where(UserRow.id == user_id))

    def set_mqtt_password_hash(self, user_id: int, password_hash: str, jti: str) -> None:
        with self._session.begin() as s:
            row = s.get(UserRow, user_id)
            if row is not None:
                row.mqtt_password_hash, row.mqtt_jti = password_hash, jti

    def mqtt_gateways(self, now: datetime) -> list[tuple[Principal, str]]:
        """Every gateway whose MQTT password (an API key) is neither revoked nor expired, with its hash
        (for the broker's password file)."""
        with self._session() as s:
            rows = s.scalars(
                select(UserRow)
                .join(TokenRow, TokenRow.jti == UserRow.mqtt_jti)
                .where(
                    UserRow.role == Role.GATEWAY.value,
                    UserRow.mqtt_password_hash.is_not(None),
                    TokenRow.expires_at > now,
                )
                .order_by(UserRow.tenant_id, UserRow.username)
            )
            return [(_principal(r), r.mqtt_password_hash or "") for r in rows]

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

    # tokens and signing keys ---------------------------------------------------------------------

    def store_token(self, jti: str, user_id: int, kind: str, expires_at: datetime, name: str = "") -> None:
        with self._session.begin() as s:
            s.add(
                TokenRow(
                    jti=jti,
                    user_id=user_id,
                    kind=kind,
                    name=name,
                    created_at=datetime.now(UTC),
                    expires_at=expires_at,
                )
            )

    def token(self, jti: str) -> Credential | None:
        with self._session() as s:
            row = s.get(TokenRow, jti)
            if row is None:
                return None
            user = s.get(UserRow, row.user_id)
            if user is None:
                return None
            return Credential(
                jti=row.jti,
                principal=_principal(user),
                kind=row.kind,
                name=row.name,
                created_at=row.created_at,
                expires_at=row.expires_at,
            )

    def tokens(self, tenant_id: str) -> list[Credential]:
        """The tenant's API keys (not sessions), newest first."""
        with self._session() as s:
            rows = s.execute(
                select(TokenRow, UserRow)
                .join(UserRow, UserRow.id == TokenRow.user_id)
                .where(UserRow.tenant_id == tenant_id, TokenRow.kind == "api")
                .order_by(TokenRow.created_at.desc())
            )
            return [
                Credential(t.jti, _principal(u), t.kind, t.name, t.created_at, t.expires_at) for t, u in rows
            ]

    def delete_token(self, jti: str) -> None:
        with self._session.begin() as s:
            s.execute(delete(TokenRow).where(TokenRow.jti == jti))

    def delete_expired_tokens(self, now: datetime) -> int:
        with self._session.begin() as s:
            result = s.execute(delete(TokenRow).where(TokenRow.expires_at <= now))
            return int(getattr(result, "rowcount", 0))

    def signing_keys(self) -> list[SigningKey]:
        with self._session() as s:
            rows = s.scalars(select(SigningKeyRow).order_by(SigningKeyRow.created_at))
            return [SigningKey(r.kid, r.private_pem, r.created_at, r.retired_at) for r in rows]

    def add_signing_key(self, key: SigningKey) -> None:
        with self._session.begin() as s:
            s.add(SigningKeyRow(kid=key.kid, private_pem=key.private_pem, created_at=key.created_at))

    def retire_signing_keys(self, keep: str, at: datetime) -> list[str]:
        """Retire every key but `keep` at once (after a suspected leak); return their ids."""
        with self._session.begin() as s:
            rows = list(
                s.scalars(
                    select(SigningKeyRow).where(SigningKeyRow.kid != keep, SigningKeyRow.retired_at.is_(None))
                )
            )
            for row in rows:
                row.retired_at = at
            return [r.kid for r in rows]

    # agreements and audit ------------------------------------------------------------------------

    def create_agreement(self, agreement: Agreement) -> Agreement:
        with self._session.begin() as s:
            for tenant in (agreement.provider, agreement.consumer):
                if s.get(TenantRow, tenant) is None:
                    raise InputError(f"tenant {tenant!r} does not exist")
            row = AgreementRow(
                provider=agreement.provider,
                consumer=agreement.consumer,
                name=agreement.name,
                scope=agreement.scope,
                kinds=sorted(k.value for k in agreement.kinds),
                purpose=agreement.purpose,
                framework=agreement.framework,
                valid_from=agreement.valid_from,
                valid_until=agreement.valid_until,
                created_at=agreement.created_at,
                created_by=agreement.created_by,
            )
            s.add(row)
            s.flush()
            return _agreement(row)

    def agreement(self, agreement_id: int) -> Agreement | None:
        with self._session() as s:
            row = s.get(AgreementRow, agreement_id)
            return _agreement(row) if row else None

    def agreements(self, tenant_id: str) -> list[Agreement]:
        """Agreements the tenant gave or received, newest first."""
        with self._session() as s:
            rows = s.scalars(
                select(AgreementRow)
                .where((AgreementRow.provider == tenant_id) | (AgreementRow.consumer == tenant_id))
                .order_by(AgreementRow.id.desc())
            )
            return [_agreement(r) for r in rows]

    def agreements_between(self, provider: str, consumer: str) -> list[Agreement]:
        with self._session() as s:
            rows = s.scalars(
                select(AgreementRow)
                .where(AgreementRow.provider == provider, AgreementRow.consumer == consumer)
                .order_by(AgreementRow.id)
            )
            return [_agreement(r) for r in rows]

    def revoke_agreement(self, agreement_id: int, by: str, at: datetime) -> Agreement | None:
        with self._session.begin() as s:
            row = s.get(AgreementRow, agreement_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at, row.revoked_by = at, by
            return _agreement(row)

    def append_audit(self, entries: list[AuditEntry]) -> None:
        with self._session.begin() as s:
            s.add_all(
                AuditRow(
                    at=e.at,
                    tenant=e.tenant,
                    actor_tenant=e.actor_tenant,
                    actor=e.actor,
                    action=e.action,
                    target=e.target,
                    detail=e.detail,
                    shared=e.tenant != e.actor_tenant,
                )
                for e in entries
            )

    def audit(
        self, tenant_id: str, limit: int = 100, action: str | None = None, shared: bool | None = None
    ) -> list[AuditEntry]:
        """What was done to or read from the tenant's data and accounts, newest first."""
        with self._session() as s:
            query = select(AuditRow).where(AuditRow.tenant == tenant_id)
            if action is not None:
                query = query.where(AuditRow.action == action)
            if shared is not None:
                query = query.where(AuditRow.shared == shared)
            rows = s.scalars(query.order_by(AuditRow.id.desc()).limit(limit))
            return [
                AuditEntry(r.at, r.tenant, r.actor_tenant, r.actor, r.action, r.target, r.detail)
                for r in rows
            ]

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
                    "state_mapping": _stored_mapping(model.state_mapping, asset),
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

    # connections ---------------------------------------------------------------------------------

    def save_connection(self, connection: StoredConnection) -> None:
        with self._lock, self._session.begin() as s:
            if s.get(TenantRow, connection.tenant) is None:
                raise InputError(f"tenant {connection.tenant!r} does not exist")
            if s.get(ConnectionRow, (connection.tenant, connection.name)) is not None:
                raise Conflict(f"tenant {connection.tenant!r} has a connection named {connection.name!r}")
            s.add(
                ConnectionRow(
                    tenant_id=connection.tenant,
                    name=connection.name,
                    protocol=connection.protocol,
                    doc=connection.doc,
                    created_at=connection.created_at,
                    created_by=connection.created_by,
                )
            )

    def connections(self, tenant_id: str | None = None) -> list[StoredConnection]:
        with self._session() as s:
            query = select(ConnectionRow).order_by(ConnectionRow.tenant_id, ConnectionRow.name)
            if tenant_id is not None:
                query = query.where(ConnectionRow.tenant_id == tenant_id)
            return [
                StoredConnection(r.tenant_id, r.name, r.protocol, dict(r.doc), r.created_at, r.created_by)
                for r in s.scalars(query)
            ]

    def delete_connection(self, tenant_id: str, name: str) -> bool:
        with self._lock, self._session.begin() as s:
            row = s.get(ConnectionRow, (tenant_id, name))
            if row is None:
                return False
            s.delete(row)
            return True

    def add_assets(
        self, tenant_id: str, assets: Sequence[Asset], signals: Sequence[tuple[str, Signal]]
    ) -> int:
        added = 0
        with self._lock, self._session.begin() as s:
            if s.get(TenantRow, tenant_id) is None:
                raise InputError(f"tenant {tenant_id!r} does not exist")
            for asset in assets:
                if s.get(AssetRow, (tenant_id, asset.id)) is None:
                    s.add(
                        AssetRow(
                            tenant_id=tenant_id,
                            id=asset.id,
                            level=asset.level.value,
                            name=asset.name,
                            parent_id=asset.parent_id,
                            path=asset.path,
                            machine_type=asset.machine_type,
                            timezone=asset.timezone,
                            ideal_cycle_s=asset.ideal_cycle_s,
                        )
                    )
                    s.flush()
                    added += 1
            for asset_id, signal in signals:
                if s.get(SignalRow, (tenant_id, asset_id, signal.name)) is None:
                    s.add(
                        SignalRow(
                            tenant_id=tenant_id,
                            asset_id=asset_id,
                            name=signal.name,
                            unit=signal.unit,
                            description=signal.description,
                        )
                    )
                    added += 1
        if added:
            for listener in list(self._listeners):
                listener(tenant_id)
        return added

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

    def state_mapping(self, tenant_id: str) -> StateMapping:
        with self._session() as s:
            rows = s.scalars(
                select(AssetRow).where(
                    AssetRow.tenant_id == tenant_id,
                    AssetRow.level.in_([AssetLevel.ENTERPRISE.value, AssetLevel.SITE.value]),
                    AssetRow.state_mapping.is_not(None),
                )
            )
            enterprise: dict[str, TimeCategory] = {}
            machine_types: dict[str, dict[str, TimeCategory]] = {}
            sites: dict[str, dict[str, TimeCategory]] = {}
            waiting: frozenset[str] = frozenset()
            for r in rows:
                stored = r.state_mapping
                if not stored:  # JSON null: this asset has no mapping of its own
                    continue
                if r.level == AssetLevel.SITE.value:
                    sites[r.id] = _categories(stored.get("states"))
                    continue
                enterprise.update(_categories(stored.get("states")))
                types = stored.get("machine_types")
                for name, codes in types.items() if isinstance(types, dict) else ():
                    machine_types[str(name)] = _categories(codes)
                codes = stored.get("waiting")
                waiting = frozenset(str(c) for c in codes) if isinstance(codes, list) else frozenset()
            return StateMapping(enterprise, machine_types, sites, waiting)

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


def _categories(codes: object) -> dict[str, TimeCategory]:
    return {str(k): TimeCategory(v) for k, v in codes.items()} if isinstance(codes, dict) else {}


def _stored_mapping(mapping: StateMapping, asset: Asset) -> dict[str, object] | None:
    """What of the model's state mapping an asset row keeps: the enterprise's and the machine types'
    on the enterprise row, a site's on the site row."""
    if asset.level is AssetLevel.ENTERPRISE and (
        mapping.enterprise or mapping.machine_types or mapping.waiting
    ):
        return {
            "states": {k: v.value for k, v in mapping.enterprise.items()},
            "machine_types": {
                t: {k: v.value for k, v in codes.items()} for t, codes in mapping.machine_types.items()
            },
            "waiting": sorted(mapping.waiting),
        }
    if asset.level is AssetLevel.SITE and asset.id in mapping.sites:
        return {"states": {k: v.value for k, v in mapping.sites[asset.id].items()}}
    return None


def _principal(row: UserRow) -> Principal:
    return Principal(
        tenant_id=row.tenant_id,
        user_id=row.id,
        username=row.username,
        role=Role(row.role),
        site=row.site_id,
        external=row.kind == "external",
    )


def _agreement(row: AgreementRow) -> Agreement:
    return Agreement(
        id=row.id,
        provider=row.provider,
        consumer=row.consumer,
        name=row.name,
        scope=row.scope,
        kinds=frozenset(DataKind(k) for k in row.kinds),
        purpose=row.purpose,
        framework=row.framework,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
