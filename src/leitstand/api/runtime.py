"""The composition root of one Leitstand process: stores, services and the writer, started and stopped."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from leitstand.access.audit import AuditLog
from leitstand.access.identity import IdentityService
from leitstand.access.limits import RateLimiter
from leitstand.access.oidc import OidcProvider, OidcVerifier
from leitstand.access.policy import AccessService
from leitstand.access.tokens import KeyRing
from leitstand.api.settings import Settings
from leitstand.connect.assets import ModelRegistrar
from leitstand.connect.registry import Connections
from leitstand.domain.assets import AssetLevel
from leitstand.domain.errors import InputError
from leitstand.domain.tenancy import PLATFORM_TENANT, Tenant
from leitstand.ingest.pipeline import IngestPipeline
from leitstand.ingest.validate import AssetCatalog, IngestPolicy
from leitstand.kpi.oee import OeeService
from leitstand.kpi.rollup import PieceRollup, RollupKeeper
from leitstand.store.asset_cache import AssetCache
from leitstand.store.duckdb import DuckDBEventStore
from leitstand.store.sql import SqlMetadataStore
from leitstand.store.sql.alarms import SqlAlarmStore
from leitstand.watch.alarms import AlarmPolicy
from leitstand.watch.notify import Notifier
from leitstand.watch.service import WatchService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Rate limits and quotas, per tenant, and per user name and client address for logins."""

    requests: RateLimiter
    ingest_records: RateLimiter
    logins: RateLimiter  # attempts per client address
    failed_logins: RateLimiter  # failures per user name and client address

    @classmethod
    def build(cls, settings: Settings) -> Limits:
        per_min = settings.login_attempts_per_min
        return cls(
            RateLimiter(settings.tenant_requests_per_s, settings.tenant_request_burst, "request rate"),
            RateLimiter(
                settings.tenant_ingest_records_per_s, settings.tenant_ingest_burst_records, "ingest quota"
            ),
            RateLimiter(per_min / 60, max(1.0, per_min), "login attempt"),
            RateLimiter(per_min / 60, max(1.0, per_min), "failed login"),
        )


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
    access: AccessService
    limits: Limits
    watch: WatchService
    notifier: Notifier
    connections: Connections | None = None
    rollup: RollupKeeper | None = None
    closed: bool = False

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        try:
            providers = [OidcProvider(**p) for p in settings.oidc_providers]
        except TypeError as exc:
            raise InputError(f"invalid oidc_providers setting: {exc}") from exc
        oidc = OidcVerifier(providers) if providers else None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        events = DuckDBEventStore(
            settings.events_path,
            memory_limit=settings.duckdb_memory_limit,
            threads=settings.duckdb_threads,
            rollup=settings.rollup_interval_s > 0,
        )
        metadata = SqlMetadataStore(settings.metadata_database_url)
        if metadata.tenant(PLATFORM_TENANT) is None:  # where platform admins live; it holds no data
            metadata.ensure_tenant(Tenant(PLATFORM_TENANT, "Platform operator"))
        asset_cache = AssetCache(metadata)
        oee = OeeService(
            events,
            asset_cache,
            state_lookback=timedelta(seconds=settings.state_lookback_s),
            minor_stop_threshold=timedelta(seconds=settings.minor_stop_threshold_s),
            max_window=timedelta(days=settings.max_query_days),
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
        audit = AuditLog(metadata)
        identity = IdentityService(
            metadata,
            KeyRing(metadata, settings.token_issuer),
            audit,
            oidc,
        )
        access = AccessService(metadata, asset_cache, audit)
        rollup = None
        if settings.rollup_interval_s > 0:
            tenants = lambda: [t.id for t in metadata.tenants() if t.id != PLATFORM_TENANT]  # noqa: E731
            rollup = RollupKeeper(PieceRollup(oee), tenants, settings.rollup_interval_s)
        watch = WatchService(
            SqlAlarmStore(metadata.engine),
            asset_cache,
            settings.watch_rules,
            AlarmPolicy(
                area_level=AssetLevel(settings.alarm_area_level),
                flood_cap=settings.alarm_flood_cap,
                chatter_count=settings.alarm_chatter_count,
                chatter_window_s=settings.alarm_chatter_window_s,
                consequential_window_s=settings.alarm_consequential_window_s,
            ),
        )
        pipeline.on_stored(watch.stored)
        metadata.on_change(watch.model_changed)
        notifier = Notifier.from_config(settings.notifications)
        watch.on_notice(notifier.notify)
        connections = Connections(
            pipeline,
            ModelRegistrar(metadata, asset_cache),
            metadata,
            settings.connections,
            settings.connection_allowed_hosts,
        )
        return cls(
            settings,
            events,
            metadata,
            asset_cache,
            identity,
            pipeline,
            oee,
            access,
            Limits.build(settings),
            watch,
            notifier,
            connections,
            rollup,
        )

    def start(self) -> None:
        self.notifier.start()
        self.watch.start()
        self.pipeline.start()
        if self.connections is not None:
            self.connections.start()
        if self.rollup is not None:
            self.rollup.start()

    def stop(self) -> None:
        """Drain the writer and close the stores; calling it again does nothing."""
        if self.closed:
            return
        self.closed = True
        if self.rollup is not None:
            self.rollup.stop()
        if self.connections is not None:  # before the writer: what they received is still stored
            self.connections.stop()
        self.pipeline.stop()
        self.watch.stop()  # evaluates what the writer handed over
        self.notifier.stop()
        self.events.close()
        self.metadata.close()

    def machine_ids(self, tenant: str) -> list[str]:
        return [a.id for a in self.asset_cache.assets(tenant) if a.level is AssetLevel.MACHINE]
