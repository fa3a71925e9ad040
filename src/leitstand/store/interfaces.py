"""The storage interfaces every backend implements; tests/store runs one suite against each backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

from leitstand.domain.agreements import Agreement
from leitstand.domain.alarms import Alarm, AlarmEntry
from leitstand.domain.assets import Asset, AssetModel, Product, Signal
from leitstand.domain.records import RecordKind
from leitstand.domain.tenancy import Principal, Role, Tenant
from leitstand.domain.time_model import StateMapping

REJECTS_SCHEMA = pa.schema(
    [
        ("tenant", pa.string()),
        ("kind", pa.string()),
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("outcome", pa.string()),  # dead_letter | quarantine
        ("reason_code", pa.string()),
        ("reason", pa.string()),
        ("record", pa.string()),  # the record as JSON, as it arrived
    ]
)


# The OEE roll-up's grain (kpi/pieces.sql): a machine's additive time-model inputs in one planned piece
PIECES_SCHEMA = pa.schema(
    [
        ("asset_id", pa.string()),
        ("piece_start", pa.timestamp("us", tz="UTC")),
        ("shift", pa.string()),
        ("shift_date", pa.date32()),
        *[
            (name, pa.float64())
            for name in (
                *("pot_s", "planned_down_s", "production_s", "setup_s", "delay_s", "down_s"),
                *("unmapped_state_s", "minor_stop_s"),
            )
        ],
        ("failures", pa.int64()),
        ("produced", pa.int64()),
        ("good", pa.int64()),
        ("scrap", pa.int64()),
        ("rework", pa.int64()),
        ("ideal_s", pa.float64()),
        ("good_ideal_s", pa.float64()),
        ("units_without_ideal_cycle", pa.int64()),
    ]
)
PIECE_COLUMNS = ", ".join(PIECES_SCHEMA.names)


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """Validated records of one kind for one tenant, plus the rejects that came with them."""

    kind: RecordKind
    records: pa.Table
    rejects: pa.Table | None = None


class Reader(Protocol):
    def query(
        self, sql: str, params: Mapping[str, Any] | None = None, tables: Mapping[str, pa.Table] | None = None
    ) -> pa.Table:
        """Run a read-only SQL query; `tables` are registered as views for its duration."""
        ...


class EventStore(Protocol):
    """Time series and events. Writes are idempotent on each kind's key; one writer, many readers."""

    def write(self, batches: Sequence[WriteBatch]) -> list[int]:
        """Store all batches in one transaction; return how many new records each batch added."""
        ...

    def query(
        self, sql: str, params: Mapping[str, Any] | None = None, tables: Mapping[str, pa.Table] | None = None
    ) -> pa.Table:
        """Run a read-only SQL query; `tables` are registered as views for its duration."""
        ...

    def snapshot(self) -> AbstractContextManager[Reader]:
        """Queries that all see the store as it was when the first one ran (one read transaction)."""
        ...

    def rejects(self, tenant: str, limit: int = 100, outcome: str | None = None) -> pa.Table:
        """The newest dead-lettered or quarantined records of a tenant."""
        ...

    def record_count(self, kind: RecordKind, tenant: str) -> int:
        """How many records of a kind a tenant has stored."""
        ...

    def time_range(self, kind: RecordKind, tenant: str) -> tuple[datetime | None, datetime | None]:
        """The first and last `ts` stored for a kind and tenant."""
        ...

    def rollup_coverage(self, tenant: str) -> tuple[datetime, datetime, str] | None:
        """The OEE roll-up's hours [origin, watermark) of a tenant, and the fingerprint of its inputs."""
        ...

    def rollup_dirty(self, tenant: str) -> pa.Table:
        """What writes of states and counts touched since the roll-up caught up: id, kind, asset_id, lo,
        hi (the first and last `ts` of a machine's records in one write)."""
        ...

    def replace_pieces(
        self,
        tenant: str,
        lo: datetime,
        hi: datetime,
        pieces: pa.Table,
        coverage: tuple[datetime, datetime, str],
        machines: Sequence[str] | None = None,
        clear_dirty_upto: int | None = None,
    ) -> None:
        """In one transaction: replace the roll-up's pieces in [lo, hi) (of `machines`, or all), set the
        coverage, and drop the dirty marks up to an id. With a new fingerprint, all other pieces go."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Credential:
    """An issued login session or API key, by its token id (`jti`); deleting it revokes the token."""

    jti: str
    principal: Principal
    kind: str  # session | api
    name: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 token signing key (PKCS#8 PEM); a retired key no longer verifies anything."""

    kid: str
    private_pem: str
    created_at: datetime
    retired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An administrative change or a cross-tenant read; `tenant` is whose data or account it was."""

    at: datetime
    tenant: str
    actor_tenant: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredConnection:
    """A plant connection created through the API: its settings document and who created it when."""

    tenant: str
    name: str
    protocol: str
    doc: dict[str, Any]
    created_at: datetime
    created_by: str


class MetadataStore(Protocol):
    """Tenants, accounts, tokens, signing keys, agreements, audit, the asset model, products, calendars."""

    def ensure_tenant(self, tenant: Tenant) -> None: ...

    def tenant(self, tenant_id: str) -> Tenant | None: ...

    def tenants(self) -> list[Tenant]: ...

    def create_user(
        self,
        tenant_id: str,
        username: str,
        password_hash: str,
        role: Role,
        kind: str = "human",
        site: str | None = None,
    ) -> Principal: ...

    def user(self, user_id: int) -> Principal | None: ...

    def users(self, tenant_id: str) -> list[tuple[Principal, str]]: ...

    def user_by_name(self, username: str) -> tuple[Principal, str] | None:
        """The principal and its password hash."""
        ...

    def update_password_hash(self, user_id: int, password_hash: str) -> None: ...

    def set_role(self, user_id: int, role: Role) -> None: ...

    def delete_user(self, user_id: int) -> None: ...

    def set_mqtt_password_hash(self, user_id: int, password_hash: str, jti: str) -> None: ...

    def mqtt_gateways(self, now: datetime) -> list[tuple[Principal, str]]: ...

    def store_token(
        self, jti: str, user_id: int, kind: str, expires_at: datetime, name: str = ""
    ) -> None: ...

    def token(self, jti: str) -> Credential | None: ...

    def tokens(self, tenant_id: str) -> list[Credential]: ...

    def delete_token(self, jti: str) -> None: ...

    def delete_expired_tokens(self, now: datetime) -> int: ...

    def signing_keys(self) -> list[SigningKey]: ...

    def add_signing_key(self, key: SigningKey) -> None: ...

    def retire_signing_keys(self, keep: str, at: datetime) -> list[str]: ...

    def create_agreement(self, agreement: Agreement) -> Agreement: ...

    def agreement(self, agreement_id: int) -> Agreement | None: ...

    def agreements(self, tenant_id: str) -> list[Agreement]: ...

    def agreements_between(self, provider: str, consumer: str) -> list[Agreement]: ...

    def revoke_agreement(self, agreement_id: int, by: str, at: datetime) -> Agreement | None: ...

    def append_audit(self, entries: list[AuditEntry]) -> None: ...

    def audit(
        self, tenant_id: str, limit: int = 100, action: str | None = None, shared: bool | None = None
    ) -> list[AuditEntry]: ...

    def import_asset_model(self, tenant_id: str, model: AssetModel) -> dict[str, int]:
        """Upsert a model (idempotent); return counts of created and updated assets and products."""
        ...

    def save_connection(self, connection: StoredConnection) -> None:
        """Store a new connection; Conflict if the tenant has one of that name."""
        ...

    def connections(self, tenant_id: str | None = None) -> list[StoredConnection]:
        """The stored connections of a tenant (or of all tenants), by tenant and name."""
        ...

    def delete_connection(self, tenant_id: str, name: str) -> bool:
        """Remove a stored connection; False if there was none."""
        ...

    def add_assets(
        self, tenant_id: str, assets: Sequence[Asset], signals: Sequence[tuple[str, Signal]]
    ) -> int:
        """Insert the assets and (asset id, signal) pairs that do not exist yet, leaving existing ones
        as they are; return how many rows were new."""
        ...

    def assets(self, tenant_id: str) -> list[Asset]: ...

    def products(self, tenant_id: str) -> list[Product]: ...

    def state_mapping(self, tenant_id: str) -> StateMapping:
        """The tenant's own state codes (enterprise, machine types, sites) as imported."""
        ...

    def calendars(self, tenant_id: str) -> dict[str, dict[str, object]]:
        """Site id → calendar document as imported."""
        ...

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call `listener(tenant_id)` after the asset model of a tenant changes."""
        ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class AlarmStore(Protocol):
    """Alarms with their journal, and the detection rules created through the API."""

    def save_alarms(self, changes: Sequence[tuple[Alarm, Sequence[AlarmEntry]]]) -> None:
        """Insert or update each alarm (a new one gets its id) and append its entries, in one transaction."""
        ...

    def alarms(self, tenant_id: str) -> list[Alarm]: ...

    def entries(self, tenant_id: str, alarm_id: int, limit: int = 200) -> list[AlarmEntry]: ...

    def save_rule(self, tenant_id: str, doc: dict[str, object], by: str, at: datetime) -> None: ...

    def rules(self, tenant_id: str | None = None) -> list[tuple[str, dict[str, object]]]: ...

    def delete_rule(self, tenant_id: str, rule_id: str) -> bool: ...
