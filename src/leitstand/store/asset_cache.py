"""A per-tenant cache of the asset model, dropped whenever the metadata store reports a change."""

from __future__ import annotations

import threading

from leitstand.domain.assets import Asset
from leitstand.store.interfaces import MetadataStore


class AssetCache:
    """Reads the asset model of a tenant once and serves it until it changes."""

    def __init__(self, metadata: MetadataStore) -> None:
        self._metadata = metadata
        self._assets: dict[str, list[Asset]] = {}
        self._lock = threading.Lock()
        metadata.on_change(self.forget)

    def forget(self, tenant: str) -> None:
        with self._lock:
            self._assets.pop(tenant, None)

    def assets(self, tenant: str) -> list[Asset]:
        with self._lock:
            cached = self._assets.get(tenant)
        if cached is None:
            cached = self._metadata.assets(tenant)
            with self._lock:
                self._assets[tenant] = cached
        return cached
