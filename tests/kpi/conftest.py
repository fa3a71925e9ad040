"""KPI test stores: an in-memory event store and a metadata store holding one tenant's model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from leitstand.domain.assets import parse_asset_model
from leitstand.domain.tenancy import Tenant
from leitstand.kpi.oee import OeeService
from leitstand.store.asset_cache import AssetCache
from leitstand.store.duckdb import DuckDBEventStore
from leitstand.store.sql import SqlMetadataStore

KpiStores = tuple[DuckDBEventStore, OeeService, SqlMetadataStore]


@pytest.fixture
def kpi_stores(tmp_path: Path) -> Iterator[Callable[..., KpiStores]]:
    """`kpi_stores(model, **oee_options)`: stores with `model` imported for tenant acme, closed after."""
    opened: list[KpiStores] = []

    def build(model: dict[str, Any], **options: Any) -> KpiStores:
        events = DuckDBEventStore(None)
        metadata = SqlMetadataStore(f"sqlite:///{tmp_path / f'm{len(opened)}.sqlite'}")
        metadata.ensure_tenant(Tenant("acme", "ACME"))
        metadata.import_asset_model("acme", parse_asset_model(model))
        opened.append((events, OeeService(events, AssetCache(metadata), **options), metadata))
        return opened[-1]

    yield build
    for events, _, metadata in opened:
        events.close()
        metadata.close()
