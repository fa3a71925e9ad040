"""The one place that decides what a principal may read: its own tenant's data, or a data set another
tenant shares with it under an agreement in force. Every read endpoint asks here and queries only the
scope it gets back; none filters by tenant on its own.

A foreign object and a missing one get the same answer (404 with the same words), so ids cannot be
probed. A shared read is written to the provider's audit log before it is answered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leitstand.access.audit import AuditLog
from leitstand.domain.agreements import Agreement, DataKind
from leitstand.domain.assets import Asset, descendants
from leitstand.domain.errors import Forbidden, InputError, NotFound
from leitstand.domain.tenancy import READERS, Principal, Role
from leitstand.store.asset_cache import AssetCache
from leitstand.store.interfaces import MetadataStore

# A platform admin reads its own (empty) platform tenant, and other tenants' data only under an agreement.
_MAY_READ = READERS | {Role.PLATFORM_ADMIN}


@dataclass(frozen=True, slots=True)
class ReadScope:
    """Whose data a read may touch (`tenant`) and how much of it (`within`: an asset and what is below
    it, or None for all); `agreement` is set when the data is shared by another tenant."""

    tenant: str
    within: str | None
    agreement: Agreement | None = None

    def visible(self, assets: list[Asset]) -> list[Asset]:
        """The assets of `assets` (the scope tenant's) that the scope covers."""
        if self.within is None:
            return assets
        keep = descendants(assets, self.within)
        return [a for a in assets if a.id in keep]

    def source(self) -> dict[str, Any]:
        """How a response marks its data: whose it is, and under which agreement it is shared."""
        return {
            "tenant": self.tenant,
            "shared": self.agreement is not None,
            "agreement": self.agreement.id if self.agreement else None,
            "agreement_name": self.agreement.name if self.agreement else None,
        }


class AccessService:
    def __init__(
        self,
        metadata: MetadataStore,
        assets: AssetCache,
        audit: AuditLog,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._metadata = metadata
        self._assets = assets
        self.audit = audit
        self._clock = clock

    def own(self, who: Principal) -> ReadScope:
        """The caller's own tenant, for reads that are never shared (rejects, accounts, audit)."""
        _check_reader(who)
        return ReadScope(who.tenant_id, None)

    def read(
        self,
        who: Principal,
        kind: DataKind,
        provider: str | None,
        within: str | None,
        target: str,
        audit: bool = True,
    ) -> ReadScope:
        """The scope of a read of `kind` data, of the caller's own tenant or of `provider`'s."""
        _check_reader(who)
        if provider is None or provider == who.tenant_id:
            if within is not None and within not in self._asset_ids(who.tenant_id):
                raise NotFound(f"asset {within!r} not found")
            return ReadScope(who.tenant_id, within)
        agreement = self._agreement_for(who, kind, provider, within)
        scope = ReadScope(provider, within or agreement.scope, agreement)
        if audit:
            self.audit.record(
                who,
                "shared_read",
                provider,
                target,
                kind=kind.value,
                agreement=agreement.id,
                within=scope.within,
            )
        return scope

    def _agreement_for(self, who: Principal, kind: DataKind, provider: str, within: str | None) -> Agreement:
        now = self._clock()
        in_force = [
            a
            for a in self._metadata.agreements_between(provider, who.tenant_id)
            if a.in_force(now) and kind in a.kinds
        ]
        if not in_force:  # the same words as for a tenant that does not exist
            raise NotFound(f"no data of tenant {provider!r} is shared with you")
        if within is None:
            roots = {a.scope for a in in_force}
            if len(roots) > 1:
                raise InputError(
                    f"tenant {provider!r} shares several parts with you; choose one with `within`: "
                    + ", ".join(sorted(roots))
                )
            return in_force[0]
        assets = self._assets.assets(provider)
        for agreement in in_force:
            if within in descendants(assets, agreement.scope):
                return agreement
        raise NotFound(f"asset {within!r} not found")

    def _asset_ids(self, tenant: str) -> set[str]:
        return {a.id for a in self._assets.assets(tenant)}


def _check_reader(who: Principal) -> None:
    if who.role not in _MAY_READ:
        raise Forbidden(f"a {who.role.value} account publishes data and reads nothing")
