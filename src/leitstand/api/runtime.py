"""The composition root of one Leitstand process: stores, services and the writer, started and stopped."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from leitstand.access.identity import IdentityService
from leitstand.api.settings import Settings
from leitstand.domain.assets import AssetLevel
from leitstand.ingest.pipeline import IngestPipeline
from leitstand.ingest.validate import AssetCatalog, IngestPolicy
from leitstand.kpi.oee import OeeService
from leitstand.store.asset_cache import AssetCache
from leitstand.store.duckdb import DuckDBEventStore
from leitstand.store.sql import SqlMetadataStore

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a request handler, the simulator or the CLI needs, built from one Settings."""

    settings: Settings
    events: DuckDBEventStore
    metadata: SqlMetadataStore
    asset_cache: AssetCache
    identity: IdentityService
    pipeline: IngestPipeline
    oee: OeeService
    closed: bool = False

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        events = DuckDBEventStore(
            settings.events_path, memory_limit=settings.duckdb_memory_limit, threads=settings.duckdb_threads
        )
        metadata = SqlMetadataStore(settings.metadata_database_url)
        asset_cache = AssetCache(metadata)
        oee = OeeService(
            events,
            asset_cache,
            state_lookback=timedelta(seconds=settings.state_lookback_s),
            minor_stop_threshold=timedelta(seconds=settings.minor_stop_threshold_s),
        )

        def catalog(tenant: str) -> AssetCatalog:
            assets = asset_cache.assets(tenant)
            return AssetCatalog(
                asset_ids=frozenset(a.id for a in assets),
                signals=frozenset((a.id, s.name) for a in assets for s in a.signals),
            )

        pipeline = IngestPipeline(
            events,
            catalog,
            IngestPolicy(
                max_past=timedelta(seconds=settings.max_past_s),
                max_future=timedelta(seconds=settings.max_future_s),
            ),
            queue_records=settings.ingest_queue_records,
            block_timeout_s=settings.block_timeout_s if settings.backpressure == "block" else 0.0,
        )
        return cls(settings, events, metadata, asset_cache, IdentityService(metadata), pipeline, oee)

    def start(self) -> None:
        self.pipeline.start()

    def stop(self) -> None:
        """Drain the writer and close the stores; calling it again does nothing."""
        if self.closed:
            return
        self.closed = True
        self.pipeline.stop()
        self.events.close()
        self.metadata.close()

    def machine_ids(self, tenant: str) -> list[str]:
        return [a.id for a in self.asset_cache.assets(tenant) if a.level is AssetLevel.MACHINE]
