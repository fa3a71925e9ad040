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
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()
        metadata.on_change(self.forget)

    def forget(self, tenant: str) -> None:
        with self._lock:
            self._assets.pop(tenant, None)
            self._versions[tenant] = self._versions.get(tenant, 0) + 1

    def assets(self, tenant: str) -> list[Asset]:
        with self._lock:
            cached = self._assets.get(tenant)
            version = self._versions.get(tenant, 0)
        if cached is None:
            cached = self._metadata.assets(tenant)
            with self._lock:
                # a change that landed while we read makes our copy stale: serve it once, keep nothing
                if self._versions.get(tenant, 0) == version:
                    self._assets[tenant] = cached
        return cached
