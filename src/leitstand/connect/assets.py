"""Creating assets and signals from what a connection sees (the `unknown_assets: create` policy)."""

from __future__ import annotations

import threading

from leitstand.connect.base import SeenAsset
from leitstand.domain.assets import Asset, AssetLevel, Signal
from leitstand.store.asset_cache import AssetCache
from leitstand.store.interfaces import MetadataStore

_LEVELS = list(AssetLevel)


class ModelRegistrar:
    """Adds what a topic path names and the tenant's model lacks: each missing level of the path as an
    asset of the ISA-95 level its depth gives (enterprise, site, area, line, machine), and missing
    signals. Existing assets are never changed, so a connection cannot move or rename them."""

    def __init__(self, metadata: MetadataStore, cache: AssetCache) -> None:
        self._metadata = metadata
        self._cache = cache
        self._known: set[tuple[str, SeenAsset]] = set()
        self._lock = threading.Lock()

    def ensure(self, tenant: str, seen: set[SeenAsset]) -> None:
        with self._lock:
            new = {s for s in seen if (tenant, s) not in self._known}
            if not new:
                return
            existing = {a.id: a for a in self._cache.assets(tenant)}
            signals = {(a.id, s.name) for a in existing.values() for s in a.signals}
            assets: dict[str, Asset] = {}
            add_signals: dict[tuple[str, str], Signal] = {}
            for path, signal in sorted(new, key=lambda s: (s[0], s[1] or "")):
                for depth in range(1, len(path) + 1):
                    asset_id = path[depth - 1]
                    if asset_id not in existing and asset_id not in assets:
                        assets[asset_id] = Asset(
                            id=asset_id,
                            level=_LEVELS[depth - 1],
                            name=asset_id,
                            parent_id=path[depth - 2] if depth > 1 else None,
                            path="/".join(path[:depth]),
                        )
                if signal is not None and (path[-1], signal) not in signals:
                    add_signals[(path[-1], signal)] = Signal(signal)
            if assets or add_signals:
                self._metadata.add_assets(
                    tenant, list(assets.values()), [(a, s) for (a, _), s in add_signals.items()]
                )
            self._known.update((tenant, s) for s in new)
