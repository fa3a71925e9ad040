"""The audit log: every administrative change and every cross-tenant read, queryable by the tenant
whose data or accounts it concerns."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from leitstand.domain.tenancy import Principal
from leitstand.store.interfaces import AuditEntry, MetadataStore


class AuditLog:
    def __init__(
        self, metadata: MetadataStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._metadata = metadata
        self._clock = clock

    def record(self, who: Principal, action: str, tenant: str, target: str, **detail: Any) -> None:
        """Write one entry before the change or read is answered: what is not logged does not happen."""
        entry = AuditEntry(self._clock(), tenant, who.tenant_id, who.username, action, target, detail)
        self._metadata.append_audit([entry])

    def entries(
        self, tenant: str, limit: int = 100, action: str | None = None, shared: bool | None = None
    ) -> list[dict[str, Any]]:
        return [
            {
                "at": e.at.isoformat(),
                "tenant": e.tenant,
                "actor_tenant": e.actor_tenant,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "detail": e.detail,
            }
            for e in self._metadata.audit(tenant, limit, action, shared)
        ]
