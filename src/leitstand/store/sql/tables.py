"""ORM tables of the metadata store. Alembic migrations in `migrations/` create them; a test compares."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class Base(DeclarativeBase):
    pass


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, stored in UTC and read back with its UTC offset on every database. (SQLite would
    keep the wall-clock time of any offset and drop the offset.) Naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("datetimes stored in the metadata store need a UTC offset")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class TenantRow(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    bpn: Mapped[str | None] = mapped_column(String(16), nullable=True, unique=True)


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(400))
    role: Mapped[str] = mapped_column(String(32))
    # human: logs in with a password; service: a gateway or script, API keys only; external: from an
    # OpenID Connect provider, no password here.
    kind: Mapped[str] = mapped_column(String(16), default="human")
    site_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mqtt_password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The API key the MQTT password is: when that key is revoked or expires, so is the password.
    mqtt_jti: Mapped[str | None] = mapped_column(String(64), nullable=True)


class TokenRow(Base):
    """An issued token, by its JWT id: a token whose row is gone is revoked (logout, key deleted)."""

    __tablename__ = "tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SigningKeyRow(Base):
    """The token signing keys: the newest active one signs, every key not retired verifies."""

    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AgreementRow(Base):
    __tablename__ = "agreements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    consumer: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(64))
    kinds: Mapped[list[str]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(200))
    framework: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class AuditRow(Base):
    """One administrative change or cross-tenant read. `tenant` is whose data or account it touched."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    actor_tenant: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(400))
    detail: Mapped[dict[str, object]] = mapped_column(JSON)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)


class AssetRow(Base):
    __tablename__ = "assets"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    path: Mapped[str] = mapped_column(String(400))
    machine_type: Mapped[str] = mapped_column(String(64), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    ideal_cycle_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    calendar: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    # state codes -> time categories: on the enterprise {"states", "machine_types"}, on a site {"states"}
    state_mapping: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)


class SignalRow(Base):
    __tablename__ = "signals"
    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    asset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit: Mapped[str] = mapped_column(String(32), default="")
    description: Mapped[str] = mapped_column(String(400), default="")


class ProductRow(Base):
    __tablename__ = "products"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class IdealCycleRow(Base):
    __tablename__ = "ideal_cycle_times"
    __table_args__ = (UniqueConstraint("tenant_id", "product_id", "asset_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str] = mapped_column(String(64))
    asset_id: Mapped[str] = mapped_column(String(64))
    ideal_cycle_s: Mapped[float] = mapped_column(Float)


class ConnectionRow(Base):
    """A plant connection created through the API (those of the config file are not stored)."""

    __tablename__ = "connections"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    protocol: Mapped[str] = mapped_column(String(32))
    doc: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class WatchRuleRow(Base):
    """A detection rule created through the API (those of the config file are not stored)."""

    __tablename__ = "watch_rules"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    doc: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class AlarmRow(Base):
    """One alarm (a rule on one asset) and its current ISA-18.2 state."""

    __tablename__ = "alarms"
    __table_args__ = (UniqueConstraint("tenant_id", "rule_id", "asset_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    asset_id: Mapped[str] = mapped_column(String(64))
    asset_path: Mapped[str] = mapped_column(String(1000))
    area: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean)
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    explanation: Mapped[dict[str, object]] = mapped_column(JSON)
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_detection_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    activations: Mapped[int] = mapped_column(Integer)
    suppressed: Mapped[str | None] = mapped_column(String(32), nullable=True)
    group_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    shelved_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AlarmEntryRow(Base):
    """The journal of an alarm: every activation, clearance and operator action, with who and why."""

    __tablename__ = "alarm_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[dict[str, object]] = mapped_column(JSON)
