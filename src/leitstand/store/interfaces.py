"""The storage interfaces every backend implements; tests/store runs one suite against each backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

from leitstand.domain.assets import Asset, AssetModel, Product
from leitstand.domain.records import RecordKind
from leitstand.domain.tenancy import Principal, Role, Tenant

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


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """Validated records of one kind for one tenant, plus the rejects that came with them."""

    kind: RecordKind
    records: pa.Table
    rejects: pa.Table | None = None


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

    def rejects(self, tenant: str, limit: int = 100, outcome: str | None = None) -> pa.Table:
        """The newest dead-lettered or quarantined records of a tenant."""
        ...

    def record_count(self, kind: RecordKind, tenant: str) -> int:
        """How many records of a kind a tenant has stored."""
        ...

    def time_range(self, kind: RecordKind, tenant: str) -> tuple[datetime | None, datetime | None]:
        """The first and last `ts` stored for a kind and tenant."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Credential:
    """A stored login session or API token, found by the hash of its secret."""

    principal: Principal
    kind: str  # session | api
    expires_at: datetime | None


class MetadataStore(Protocol):
    """Tenants, users, credentials, the asset model, products and calendars."""

    def ensure_tenant(self, tenant: Tenant) -> None: ...

    def tenant(self, tenant_id: str) -> Tenant | None: ...

    def create_user(self, tenant_id: str, username: str, password_hash: str, role: Role) -> Principal: ...

    def user_by_name(self, username: str) -> tuple[Principal, str] | None:
        """The principal and its password hash."""
        ...

    def update_password_hash(self, user_id: int, password_hash: str) -> None: ...

    def store_credential(
        self, secret_hash: str, user_id: int, kind: str, expires_at: datetime | None, name: str = ""
    ) -> None: ...

    def credential(self, secret_hash: str) -> Credential | None: ...

    def delete_credential(self, secret_hash: str) -> None: ...

    def import_asset_model(self, tenant_id: str, model: AssetModel) -> dict[str, int]:
        """Upsert a model (idempotent); return counts of created and updated assets and products."""
        ...

    def assets(self, tenant_id: str) -> list[Asset]: ...

    def products(self, tenant_id: str) -> list[Product]: ...

    def calendars(self, tenant_id: str) -> dict[str, dict[str, object]]:
        """Site id → calendar document as imported."""
        ...

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call `listener(tenant_id)` after the asset model of a tenant changes."""
        ...

    def ping(self) -> None: ...

    def close(self) -> None: ...
