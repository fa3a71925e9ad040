"""OEE per machine, line, area, site and enterprise for any window, computed by `oee.sql` in the engine.

Each answer carries its inputs (the ISO 22400 times and quantities), so a user can see why OEE is 61%.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from leitstand.domain.assets import Asset, AssetLevel, descendants
from leitstand.domain.calendar import ShiftCalendar, parse_calendar
from leitstand.domain.errors import InputError, NotFound
from leitstand.domain.time_model import DEFAULT_STATE_CATEGORIES, OeeTimes, StateMapping, TimeCategory
from leitstand.store.asset_cache import AssetCache
from leitstand.store.interfaces import EventStore

_SQL = Path(__file__).parent
SPANS_SQL = (_SQL / "spans.sql").read_text()
OEE_SQL = "WITH\n" + SPANS_SQL + (_SQL / "oee.sql").read_text()
DOWNTIME_SQL = "WITH\n" + SPANS_SQL + (_SQL / "downtime.sql").read_text()
LEVELS = [level.value for level in AssetLevel]

_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class OeeInputs:
    """The dimension tables the OEE query joins: machines, planned time, ideal cycles, state mapping."""

    enterprise_id: str
    machines: pa.Table
    planned: pa.Table
    ideal_cycle: pa.Table
    state_map: pa.Table

    def as_tables(self) -> dict[str, pa.Table]:
        return {
            "machines": self.machines,
            "planned": self.planned,
            "ideal_cycle": self.ideal_cycle,
            "state_map": self.state_map,
        }


@dataclass(frozen=True, slots=True)
class KpiAnswer:
    """Rows for the window [start, end) in UTC; `end` is the requested end, or now if that came first."""

    start: datetime
    end: datetime
    rows: list[dict[str, Any]]


class OeeService:
    """Computes OEE for a tenant from raw state changes and counts."""

    def __init__(
        self,
        events: EventStore,
        asset_cache: AssetCache,
        state_categories: Mapping[str, TimeCategory] | None = None,
        state_lookback: timedelta = timedelta(days=7),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        minor_stop_threshold: timedelta = timedelta(minutes=5),
        max_window: timedelta = timedelta(days=400),
    ) -> None:
        self._events = events
        categories = state_categories or DEFAULT_STATE_CATEGORIES
        self._base_categories = {state: TimeCategory(c) for state, c in categories.items()}
        self._lookback = state_lookback
        self._minor_stop_s = minor_stop_threshold.total_seconds()
        self._clock = clock
        self._max_window = max_window
        self.assets = asset_cache.assets
        self._model = asset_cache.model

    def inputs(self, tenant: str, start: datetime, end: datetime) -> OeeInputs:
        """Build the dimension tables for one tenant and window."""
        assets = self.assets(tenant)
        by_id = {a.id: a for a in assets}
        enterprise = next((a.id for a in assets if a.level is AssetLevel.ENTERPRISE), tenant)
        rows: dict[str, list[Any]] = {
            k: [] for k in ("asset_id", "site_id", "area_id", "line_id", "ideal_cycle_s", "map_key")
        }
        mapping = self._model(tenant).state_mapping
        # each distinct mapping once: machines name theirs by key (a few per tenant, not one per machine)
        maps: dict[tuple[tuple[str, TimeCategory], ...], int] = {}
        for asset in assets:
            if asset.level is not AssetLevel.MACHINE:
                continue
            chain = _ancestors(asset, by_id)
            site_id = chain.get(AssetLevel.SITE)
            merged = mapping.for_machine(site_id, asset.machine_type, self._base_categories)
            rows["asset_id"].append(asset.id)
            rows["site_id"].append(site_id)
            rows["area_id"].append(chain.get(AssetLevel.AREA))
            rows["line_id"].append(chain.get(AssetLevel.LINE))
            rows["ideal_cycle_s"].append(asset.ideal_cycle_s)
            rows["map_key"].append(maps.setdefault(tuple(sorted(merged.items())), len(maps)))
        machines = pa.table(
            rows,
            schema=pa.schema(
                [(k, pa.string()) for k in ("asset_id", "site_id", "area_id", "line_id")]
                + [("ideal_cycle_s", pa.float64()), ("map_key", pa.int32())]
            ),
        )
        state_map = pa.table(
            {
                "map_key": pa.array([key for items, key in maps.items() for _ in items], pa.int32()),
                "state": [state for items in maps for state, _ in items],
                "category": [category.value for items in maps for _, category in items],
            }
        )
        planned: dict[str, list[Any]] = {"site_id": [], "day": [], "start_ts": [], "end_ts": []}
        for site in (a for a in assets if a.level is AssetLevel.SITE):
            calendar = self.calendar(tenant, site)
            for lo, hi in _by_utc_day(
                _union((i.start, i.end) for i in calendar.planned_intervals(start, end))
            ):
                planned["site_id"].append(site.id)
                planned["day"].append(lo.date())
                planned["start_ts"].append(lo)
                planned["end_ts"].append(hi)
        cycles: dict[str, list[Any]] = {"asset_id": [], "product_id": [], "ideal_cycle_s": []}
        for product in self._model(tenant).products:
            for asset_id, seconds in product.ideal_cycle_s.items():
                cycles["asset_id"].append(asset_id)
                cycles["product_id"].append(product.id)
                cycles["ideal_cycle_s"].append(seconds)
        return OeeInputs(
            enterprise_id=enterprise,
            machines=machines,
            planned=pa.table(
                planned,
                schema=pa.schema(
                    [("site_id", pa.string()), ("day", pa.date32()), ("start_ts", _TS), ("end_ts", _TS)]
                ),
            ),
            ideal_cycle=pa.table(
                cycles,
                schema=pa.schema(
                    [("asset_id", pa.string()), ("product_id", pa.string()), ("ideal_cycle_s", pa.float64())]
                ),
            ),
            state_map=state_map,
        )

    def state_mapping(self, tenant: str) -> StateMapping:
        return self._model(tenant).state_mapping

    def calendar(self, tenant: str, site: Asset) -> ShiftCalendar:
        """The site's shift calendar (around the clock when it has none)."""
        return parse_calendar(self._model(tenant).calendars.get(site.id), site.timezone or "UTC")

    def check_within(self, tenant: str, within: str | None) -> None:
        """NotFound unless `within` is None or an asset of the tenant (foreign ids look like missing ones)."""
        if within is not None and within not in {a.id for a in self.assets(tenant)}:
            raise NotFound(f"asset {within!r} not found")

    def window(self, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        """The window checked, in UTC (planned pieces are cut at UTC midnights), ending now at the latest."""
        check_window(start, end, self._max_window)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        return start, max(start, min(end, self._clock()))

    def _params(self, tenant: str, start: datetime, end: datetime) -> dict[str, Any]:
        return {
            "tenant": tenant,
            "start": start,
            "end": end,
            "lookback": start - self._lookback,
            "lookahead": end + self._lookback,
            "now": self._clock(),
        }

    def downtime(
        self, tenant: str, start: datetime, end: datetime, within: str | None = None, top: int = 20
    ) -> KpiAnswer:
        """The largest losses of planned busy time by category, state and reason (a downtime Pareto),
        over the machines at or below `within`."""
        start, end = self.window(start, end)
        table = self.scoped_query(DOWNTIME_SQL, tenant, start, end, within, top=top)
        return KpiAnswer(start, end, table.to_pylist())

    def scoped_query(
        self,
        sql: str,
        tenant: str,
        start: datetime,
        end: datetime,
        within: str | None,
        extra_tables: Mapping[str, pa.Table] | None = None,
        **params: Any,
    ) -> pa.Table:
        """Run a query composed after spans.sql over the machines at or below `within`, with the
        dimension tables of the window (which `start` and `end` must already be, see `window`)."""
        self.check_within(tenant, within)
        inputs = self.inputs(tenant, start, end)
        machines = inputs.machines
        if within is not None:
            keep = descendants(self.assets(tenant), within)
            machines = machines.filter(pc.is_in(machines["asset_id"], value_set=pa.array(sorted(keep))))
        tables = {**inputs.as_tables(), "machines": machines, **(extra_tables or {})}
        return self._events.query(sql, {**self._params(tenant, start, end), **params}, tables)

    def compute(
        self,
        tenant: str,
        start: datetime,
        end: datetime,
        level: str | None = None,
        within: str | None = None,
    ) -> KpiAnswer:
        """OEE rows for the window [start, end), optionally only one level and only below `within`.

        A window reaching past now ends now: time that has not happened is neither planned nor lost.
        """
        start, end = self.window(start, end)
        if level is not None and level not in LEVELS:
            raise InputError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        self.check_within(tenant, within)
        assets = self.assets(tenant)
        by_id = {a.id: a for a in assets}
        inputs = self.inputs(tenant, start, end)
        table = self._events.query(
            OEE_SQL,
            {
                **self._params(tenant, start, end),
                "enterprise": inputs.enterprise_id,
                "minor_stop_s": self._minor_stop_s,
            },
            inputs.as_tables(),
        )
        keep = descendants(assets, within) if within else None
        rows = []
        for row in table.to_pylist():
            if level is not None and row["level"] != level:
                continue
            if keep is not None and row["id"] not in keep:
                continue
            asset = by_id.get(row["id"])
            rows.append(_shape(row, asset))
        return KpiAnswer(start, end, rows)


def check_window(start: datetime, end: datetime, longest: timedelta) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InputError("window bounds need a UTC offset, e.g. 2026-11-20T06:00:00Z")
    if end <= start:
        raise InputError("window end must be after its start")
    if end - start > longest:
        raise InputError(
            f"the window spans {(end - start) / timedelta(days=1):g} days; queries may span at most "
            f"{longest / timedelta(days=1):g} days (setting max_query_days)"
        )


_INPUTS = (
    "pot_s",
    "planned_down_s",
    "pbt_s",
    "production_s",
    "setup_s",
    "delay_s",
    "down_s",
    "unknown_s",
    "unmapped_state_s",
    "produced",
    "good",
    "scrap",
    "ideal_s",
    "good_ideal_s",
    "units_without_ideal_cycle",
    "minor_stop_s",
    "failures",
    "calendar_s",
)


def _shape(row: dict[str, Any], asset: Asset | None) -> dict[str, Any]:
    times = OeeTimes(**{f.name: row[f.name] for f in fields(OeeTimes)})
    return {
        "level": row["level"],
        "id": row["id"],
        "name": asset.name if asset else row["id"],
        "path": asset.path if asset else row["id"],
        "parent_id": asset.parent_id if asset else None,
        "machines": row["machines"],
        "oee": times.oee,
        "availability": times.availability,
        "performance": times.performance,
        "quality": times.quality,
        "inputs": {k: row[k] for k in _INPUTS},
        "kpis": times.kpis(),
        "losses": times.losses(),
    }


def _union(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Merge overlapping or touching intervals: overlapping shifts must not count planned time twice."""
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _by_utc_day(intervals: Iterable[tuple[datetime, datetime]]) -> Iterator[tuple[datetime, datetime]]:
    """Cut intervals at every UTC midnight, so that each piece lies within one UTC date."""
    for lo, hi in ((a.astimezone(UTC), b.astimezone(UTC)) for a, b in intervals):
        while lo.date() != hi.date() and hi != datetime.combine(lo.date(), time(), UTC) + timedelta(days=1):
            midnight = datetime.combine(lo.date(), time(), UTC) + timedelta(days=1)
            yield lo, midnight
            lo = midnight
        yield lo, hi


def _ancestors(asset: Asset, by_id: dict[str, Asset]) -> dict[AssetLevel, str]:
    chain: dict[AssetLevel, str] = {}
    current: Asset | None = asset
    while current is not None:
        chain[current.level] = current.id
        current = by_id.get(current.parent_id) if current.parent_id else None
    return chain
