"""OEE per machine, line, area, site and enterprise for any window, computed in the engine.

`pieces.sql` turns raw state changes and counts into the additive time-model inputs of every machine in
every planned piece (planned time within one UTC hour and one shift); `levels.sql` sums pieces per
bucket and machine and rolls them up. Where the roll-up (`kpi/rollup.py`) keeps a window's whole hours,
only the partial hours at its edges are computed from raw records.

Each answer carries its inputs (the ISO 22400 times and quantities), so a user can see why OEE is 61%.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from leitstand.domain.assets import Asset, AssetLevel, descendants
from leitstand.domain.calendar import PlannedInterval, ShiftCalendar, parse_calendar
from leitstand.domain.errors import InputError, NotFound
from leitstand.domain.time_model import DEFAULT_STATE_CATEGORIES, OeeTimes, StateMapping, TimeCategory
from leitstand.store.asset_cache import AssetCache, TenantModel
from leitstand.store.interfaces import PIECE_COLUMNS, PIECES_SCHEMA, EventStore, Reader

_SQL = Path(__file__).parent
SPANS_SQL = (_SQL / "spans.sql").read_text()
PIECES_SQL = "WITH\n" + SPANS_SQL + (_SQL / "pieces.sql").read_text()
DOWNTIME_SQL = "WITH\n" + SPANS_SQL + (_SQL / "downtime.sql").read_text()
STOPS_SQL = "WITH\n" + SPANS_SQL + (_SQL / "stops.sql").read_text()
_LEVELS_SQL = (_SQL / "levels.sql").read_text()
LEVELS = [level.value for level in AssetLevel]
HOUR = timedelta(hours=1)

_TS = pa.timestamp("us", tz="UTC")
BUCKETS_SCHEMA = pa.schema(
    [("bucket", pa.int32()), ("lo", _TS), ("hi", _TS), ("shift", pa.string()), ("shift_date", pa.date32())]
)
_PLANNED_SCHEMA = pa.schema(
    [
        ("site_id", pa.string()),
        ("hour_no", pa.int64()),
        ("start_ts", _TS),
        ("end_ts", _TS),
        ("shift", pa.string()),
        ("shift_date", pa.date32()),
    ]
)


def levels_sql(by_shift: bool, rollup: bool) -> str:
    """The levels query over raw pieces (registered as `raw_pieces`) and, with `rollup`, the roll-up's
    pieces in [$roll_lo, $roll_hi); buckets are matched by time, or `by_shift` by shift and local date."""
    stored = (
        f"UNION ALL SELECT {PIECE_COLUMNS} FROM oee_pieces "
        "WHERE tenant = $tenant AND piece_start >= $roll_lo AND piece_start < $roll_hi"
        if rollup
        else ""
    )
    match = (
        "b.shift = p.shift AND b.shift_date = p.shift_date"
        if by_shift
        else "p.piece_start >= b.lo AND p.piece_start < b.hi"
    )
    return (
        f"WITH pieces AS (SELECT {PIECE_COLUMNS} FROM raw_pieces {stored}),\n"
        f"bucketed AS (SELECT b.bucket, p.* FROM pieces p JOIN buckets b ON {match}),\n" + _LEVELS_SQL
    )


@dataclass(frozen=True, slots=True)
class OeeInputs:
    """The dimension tables the OEE queries join: machines, planned time, ideal cycles, state mapping."""

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


class PieceSource(Protocol):
    """Where whole hours of pieces are kept (the roll-up)."""

    def prepare(self, tenant: str) -> str | None:
        """Bring the tenant's pieces up to date; the fingerprint they must carry, or None if they
        cannot be used now."""
        ...


class OeeService:
    """Computes OEE for a tenant from raw state changes and counts, or from the roll-up where it can."""

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
        self.events = events
        categories = state_categories or DEFAULT_STATE_CATEGORIES
        self._base_categories = {state: TimeCategory(c) for state, c in categories.items()}
        self.state_lookback = state_lookback
        self.minor_stop_threshold = minor_stop_threshold
        self.clock = clock
        self._max_window = max_window
        self.assets = asset_cache.assets
        self.model = asset_cache.model
        self.rollup: PieceSource | None = None  # set by kpi.rollup.PieceRollup
        self._dimensions: dict[str, tuple[TenantModel, OeeInputs]] = {}

    def inputs(self, tenant: str, start: datetime, end: datetime) -> OeeInputs:
        """The dimension tables for one tenant, with the planned pieces of [start, end)."""
        model = self.model(tenant)
        cached = self._dimensions.get(tenant)
        if cached is None or cached[0] is not model:  # built once per asset model
            cached = (model, self._build_dimensions(tenant))
            self._dimensions[tenant] = cached
        return replace(cached[1], planned=self.planned(tenant, start, end))

    def _build_dimensions(self, tenant: str) -> OeeInputs:
        assets = self.assets(tenant)
        by_id = {a.id: a for a in assets}
        enterprise = next((a.id for a in assets if a.level is AssetLevel.ENTERPRISE), tenant)
        rows: dict[str, list[Any]] = {
            k: [] for k in ("asset_id", "site_id", "area_id", "line_id", "ideal_cycle_s", "map_key")
        }
        mapping = self.model(tenant).state_mapping
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
        cycles: dict[str, list[Any]] = {"asset_id": [], "product_id": [], "ideal_cycle_s": []}
        for product in self.model(tenant).products:
            for asset_id, seconds in product.ideal_cycle_s.items():
                cycles["asset_id"].append(asset_id)
                cycles["product_id"].append(product.id)
                cycles["ideal_cycle_s"].append(seconds)
        return OeeInputs(
            enterprise_id=enterprise,
            machines=machines,
            planned=_PLANNED_SCHEMA.empty_table(),
            ideal_cycle=pa.table(
                cycles,
                schema=pa.schema(
                    [("asset_id", pa.string()), ("product_id", pa.string()), ("ideal_cycle_s", pa.float64())]
                ),
            ),
            state_map=state_map,
        )

    def planned(self, tenant: str, start: datetime, end: datetime) -> pa.Table:
        """The planned pieces of every site in [start, end): planned time cut at each UTC hour, labelled
        with its shift and the shift's local date. Where shifts overlap, the time belongs to the shift
        that began first (planned time is never counted twice)."""
        out: dict[str, list[Any]] = {name: [] for name in _PLANNED_SCHEMA.names}
        for site in (a for a in self.assets(tenant) if a.level is AssetLevel.SITE):
            # whole shifts around the window, so that who owns an overlap never depends on the window
            intervals = self.calendar(tenant, site).planned_intervals(start - _PAD, end + _PAD)
            for lo, hi, shift, shift_date in _hourly(_first_shift_wins(intervals), start, end):
                out["site_id"].append(site.id)
                out["hour_no"].append(int(lo.timestamp()) // 3600)
                out["start_ts"].append(lo)
                out["end_ts"].append(hi)
                out["shift"].append(shift)
                out["shift_date"].append(shift_date)
        return pa.table(out, schema=_PLANNED_SCHEMA)

    def state_mapping(self, tenant: str) -> StateMapping:
        return self.model(tenant).state_mapping

    def calendar(self, tenant: str, site: Asset) -> ShiftCalendar:
        """The site's shift calendar (around the clock when it has none)."""
        return parse_calendar(self.model(tenant).calendars.get(site.id), site.timezone or "UTC")

    def check_within(self, tenant: str, within: str | None) -> None:
        """NotFound unless `within` is None or an asset of the tenant (foreign ids look like missing ones)."""
        if within is not None and within not in {a.id for a in self.assets(tenant)}:
            raise NotFound(f"asset {within!r} not found")

    def window(self, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        """The window checked, in UTC, ending now at the latest."""
        check_window(start, end, self._max_window)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        return start, max(start, min(end, self.clock()))

    def params(self, tenant: str, start: datetime, end: datetime) -> dict[str, Any]:
        """The parameters of the queries composed after spans.sql."""
        return {
            "tenant": tenant,
            "start": start,
            "end": end,
            "lookback": start - self.state_lookback,
            "lookahead": end + self.state_lookback,
            "hold_us": self.state_lookback // timedelta(microseconds=1),
            "now": self.clock(),
        }

    def downtime(
        self, tenant: str, start: datetime, end: datetime, within: str | None = None, top: int = 20
    ) -> KpiAnswer:
        """The largest losses of planned busy time by category, state and reason (a downtime Pareto),
        over the machines at or below `within`."""
        start, end = self.window(start, end)
        table = self.scoped_query(DOWNTIME_SQL, tenant, start, end, within, top=top)
        return KpiAnswer(start, end, table.to_pylist())

    def stops(
        self, tenant: str, start: datetime, end: datetime, within: str | None = None, top: int = 20
    ) -> KpiAnswer:
        """The longest stops that took planned busy time in [start, end), over the machines at or
        below `within`: each with its machine, state, reason, start, end and the planned time lost."""
        start, end = self.window(start, end)
        table = self.scoped_query(STOPS_SQL, tenant, start, end, within, top=top)
        names = {a.id: a.name for a in self.assets(tenant)}
        rows = [{**row, "name": names.get(row["asset_id"], row["asset_id"])} for row in table.to_pylist()]
        return KpiAnswer(start, end, rows)

    def scoped_query(
        self,
        sql: str,
        tenant: str,
        start: datetime,
        end: datetime,
        within: str | None,
        extra_tables: Mapping[str, pa.Table] | None = None,
        machines: Iterable[str] | None = None,
        **params: Any,
    ) -> pa.Table:
        """Run a query composed after spans.sql over the machines at or below `within` (and among
        `machines`, if given), with the dimension tables of the window (which `start` and `end` must
        already be, see `window`)."""
        self.check_within(tenant, within)
        inputs = self.inputs(tenant, start, end)
        keep = set(machines) if machines is not None else None
        if within is not None:
            below = descendants(self.assets(tenant), within)
            keep = below if keep is None else keep & below
        table = inputs.machines
        if keep is not None:
            table = table.filter(pc.is_in(table["asset_id"], value_set=pa.array(sorted(keep), pa.string())))
        tables = {**inputs.as_tables(), "machines": table, **(extra_tables or {})}
        return self.events.query(sql, {**self.params(tenant, start, end), **params}, tables)

    def raw_pieces(
        self, tenant: str, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> pa.Table:
        """The pieces of [start, end) computed from raw records (the roll-up keeps these)."""
        if end <= start:
            return PIECES_SCHEMA.empty_table()
        return self.scoped_query(
            PIECES_SQL,
            tenant,
            start,
            end,
            None,
            machines=machines,
            minor_stop_s=self.minor_stop_threshold.total_seconds(),
        ).cast(PIECES_SCHEMA)

    def measure(
        self,
        tenant: str,
        start: datetime,
        end: datetime,
        buckets: pa.Table,
        by_shift: bool = False,
    ) -> pa.Table:
        """Level rows per bucket of [start, end). Whole hours the roll-up covers come from it and the
        rest from raw records; either way each piece is counted once, so the answers are the same.
        Buckets match pieces by start time (then their bounds must be whole UTC hours, or inside
        the raw part) or `by_shift`."""
        inputs = self.inputs(tenant, start, start)
        with self.pieces(tenant, start, end) as (reader, raw, covered):
            params = {"tenant": tenant, "roll_lo": covered[0], "roll_hi": covered[1]} if covered else {}
            return reader.query(
                levels_sql(by_shift, covered is not None),
                {"enterprise": inputs.enterprise_id, **params},
                {"raw_pieces": raw, "machines": inputs.machines, "buckets": buckets.cast(BUCKETS_SCHEMA)},
            )

    @contextmanager
    def pieces(
        self, tenant: str, start: datetime, end: datetime
    ) -> Iterator[tuple[Reader, pa.Table, tuple[datetime, datetime] | None]]:
        """The pieces of [start, end): a reader on one snapshot of the store, the hours [lo, hi) whose
        pieces the roll-up holds in that snapshot (None: none), and the rest computed from raw
        records. The snapshot keeps a rebuild or a catch-up that lands meanwhile out of the answer."""
        fingerprint = self.rollup.prepare(tenant) if self.rollup is not None else None
        with self.events.snapshot() as reader:
            covered = None
            if fingerprint is not None:
                coverage = reader.query(
                    "SELECT origin, watermark FROM rollup_coverage WHERE tenant = $t AND fingerprint = $fp",
                    {"t": tenant, "fp": fingerprint},
                ).to_pylist()
                if coverage:
                    lo = max(ceil_hour(start), coverage[0]["origin"])
                    hi = min(floor_hour(end), coverage[0]["watermark"])
                    covered = (lo, hi) if lo < hi else None
            edges = [(start, end)] if covered is None else [(start, covered[0]), (covered[1], end)]
            parts = [self.raw_pieces(tenant, a, b) for a, b in edges if b > a]
            yield reader, pa.concat_tables(parts) if parts else PIECES_SCHEMA.empty_table(), covered

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
        table = self.measure(tenant, start, end, time_buckets([(start, end)]))
        return KpiAnswer(start, end, self.shape(tenant, table, level, within)[0])

    def shape(
        self, tenant: str, table: pa.Table, level: str | None = None, within: str | None = None
    ) -> dict[int, list[dict[str, Any]]]:
        """The rows of `measure` per bucket, with names, ratios and losses, at `level` and below `within`."""
        assets = self.assets(tenant)
        by_id = {a.id: a for a in assets}
        keep = descendants(assets, within) if within else None
        out: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in table.to_pylist():
            if level is not None and row["level"] != level:
                continue
            if keep is not None and row["id"] not in keep:
                continue
            out[row["bucket"]].append(_shape(row, by_id.get(row["id"])))
        return out


def time_buckets(edges: Iterable[tuple[datetime, datetime]]) -> pa.Table:
    """Buckets [lo, hi) numbered in order, matched to pieces by their start."""
    spans = list(edges)
    return pa.table(
        {
            "bucket": list(range(len(spans))),
            "lo": [lo for lo, _ in spans],
            "hi": [hi for _, hi in spans],
            "shift": [None] * len(spans),
            "shift_date": [None] * len(spans),
        },
        schema=BUCKETS_SCHEMA,
    )


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
    "rework",
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


_PAD = timedelta(days=2)  # longer than any shift


def _first_shift_wins(intervals: Iterable[PlannedInterval]) -> list[PlannedInterval]:
    """Planned time without overlaps: each shift (a shift on a local date), in the order the shifts
    begin, keeps what no shift that began earlier holds — its breaks included, so a later shift does
    not take over the earlier one's time after its break."""
    shifts: dict[tuple[str, date], list[PlannedInterval]] = defaultdict(list)
    for interval in intervals:
        shifts[(interval.shift, interval.shift_date)].append(interval)
    claimed: list[tuple[datetime, datetime]] = []  # disjoint, sorted: the time earlier shifts hold
    out: list[PlannedInterval] = []
    for key, pieces in sorted(shifts.items(), key=lambda item: (min(p.start for p in item[1]), item[0])):
        begins = min(p.start for p in pieces)
        claimed = [c for c in claimed if c[1] > begins]  # no later shift can reach back before it
        for piece in pieces:
            out.extend(
                PlannedInterval(lo, hi, *key) for lo, hi in _subtract((piece.start, piece.end), claimed)
            )
        claimed = _union([*claimed, *((p.start, p.end) for p in pieces)])
    return sorted(out, key=lambda i: i.start)


def _subtract(
    interval: tuple[datetime, datetime], taken: list[tuple[datetime, datetime]]
) -> Iterator[tuple[datetime, datetime]]:
    """The parts of `interval` outside the disjoint, sorted intervals `taken`."""
    lo, hi = interval
    for a, b in taken:
        if b <= lo or a >= hi:
            continue
        if a > lo:
            yield lo, a
        lo = max(lo, b)
    if lo < hi:
        yield lo, hi


def _union(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def _hourly(
    intervals: Iterable[PlannedInterval], start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime, str, date]]:
    """Disjoint planned intervals clipped to [start, end) and cut at every UTC hour, so that each piece
    lies within one hour and one shift."""
    for interval in intervals:
        lo, hi = max(interval.start, start).astimezone(UTC), min(interval.end, end).astimezone(UTC)
        while lo < hi:
            cut = min(hi, lo.replace(minute=0, second=0, microsecond=0) + HOUR)
            yield lo, cut, interval.shift, interval.shift_date
            lo = cut


def _ancestors(asset: Asset, by_id: dict[str, Asset]) -> dict[AssetLevel, str]:
    chain: dict[AssetLevel, str] = {}
    current: Asset | None = asset
    while current is not None:
        chain[current.level] = current.id
        current = by_id.get(current.parent_id) if current.parent_id else None
    return chain
