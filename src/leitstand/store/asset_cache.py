"""A per-tenant cache of the asset model, dropped whenever the metadata store reports a change."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from leitstand.domain.assets import Asset, Product
from leitstand.domain.time_model import StateMapping
from leitstand.store.interfaces import MetadataStore


@dataclass(frozen=True, slots=True)
class TenantModel:
    """A tenant's assets, site calendars (as imported) and products, read together."""

    assets: list[Asset]
    calendars: dict[str, dict[str, object]]
    products: list[Product]
    state_mapping: StateMapping


class AssetCache:
    """Reads the asset model of a tenant once and serves it until it changes."""

    def __init__(self, metadata: MetadataStore) -> None:
        self._metadata = metadata
        self._models: dict[str, TenantModel] = {}
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()
        metadata.on_change(self.forget)

    def forget(self, tenant: str) -> None:
        with self._lock:
            self._models.pop(tenant, None)
            self._versions[tenant] = self._versions.get(tenant, 0) + 1

    def model(self, tenant: str) -> TenantModel:
        with self._lock:
            cached = self._models.get(tenant)
            version = self._versions.get(tenant, 0)
        if cached is None:
            cached = TenantModel(
                self._metadata.assets(tenant),
                self._metadata.calendars(tenant),
                self._metadata.products(tenant),
                self._metadata.state_mapping(tenant),
            )
            with self._lock:
                # a change that landed while we read makes our copy stale: serve it once, keep nothing
                if self._versions.get(tenant, 0) == version:
                    self._models[tenant] = cached
        return cached

    def assets(self, tenant: str) -> list[Asset]:
        return self.model(tenant).assets

    def state_mapping(self, tenant: str) -> StateMapping:
        return self.model(tenant).state_mapping
