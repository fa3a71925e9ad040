"""OEE per machine per shift for a whole year: from raw records, from the roll-up, and on PostgreSQL.

Synthetic fleet: machines in plants of 50, each plant in its own time zone with three 8-hour shifts
(30-minute breaks) Monday to Friday; 200 state changes per machine per day (PackML states: production,
delays, breakdowns, setups) and a count every 30 minutes. Records are written straight into the event
store's tables in time order (as ingest would leave them), so the figures are about the queries.
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from leitstand.domain.assets import parse_asset_model
from leitstand.domain.records import STATES as STATE_SPEC
from leitstand.domain.records import RecordKind
from leitstand.domain.tenancy import Tenant
from leitstand.kpi.oee import BUCKETS_SCHEMA, OeeService
from leitstand.kpi.rollup import PieceRollup
from leitstand.kpi.shifts import machine_shifts
from leitstand.store.asset_cache import AssetCache
from leitstand.store.duckdb import DuckDBEventStore
from leitstand.store.interfaces import WriteBatch
from leitstand.store.sql import SqlMetadataStore

TENANT = "fleet"
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)
STATES_PER_DAY = 200
COUNTS_PER_DAY = 48
PER_PLANT = 50
ZONES = ["Europe/Berlin", "Europe/Lisbon", "America/Chicago", "Asia/Shanghai", "America/Sao_Paulo"]
# weights: mostly producing, then delays (minor stops), breakdowns, setup
STATES = ["EXECUTE"] * 12 + ["SUSPENDED", "STARVED", "BLOCKED", "HELD", "STOPPED", "ABORTED", "RESETTING"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
SHIFTS = [
    ("early", "06:00", "14:00", "10:00"),
    ("late", "14:00", "22:00", "18:00"),
    ("night", "22:00", "06:00", "02:00"),
]


def fleet_model(machines: int) -> dict[str, Any]:
    plants = max(1, (machines + PER_PLANT - 1) // PER_PLANT)
    sites = []
    for p in range(plants):
        ids = [f"m{p:03d}-{i:02d}" for i in range(min(PER_PLANT, machines - p * PER_PLANT))]
        sites.append(
            {
                "id": f"p{p:03d}",
                "timezone": ZONES[p % len(ZONES)],
                "calendar": {
                    "shifts": [
                        {
                            "name": name,
                            "start": begin,
                            "end": end,
                            "days": WEEKDAYS,
                            "breaks": [{"start": pause, "minutes": 30}],
                        }
                        for name, begin, end, pause in SHIFTS
                    ]
                },
                "areas": [
                    {
                        "id": f"p{p:03d}-a",
                        "lines": [
                            {
                                "id": f"p{p:03d}-l{k}",
                                "machines": [
                                    {"id": m, "ideal_cycle_s": 1.5 + (j % 5) * 0.5}
                                    for j, m in enumerate(ids[k::5])
                                ],
                            }
                            for k in range(5)
                            if ids[k::5]
                        ],
                    }
                ],
            }
        )
    return {"enterprise": {"id": TENANT, "name": "Fleet"}, "sites": sites}


def generate(events: DuckDBEventStore, machine_ids: list[str]) -> dict[str, int]:
    """A year of states and counts per machine, inserted in time order."""
    con = events._con  # the benchmark writes the tables directly, like a bulk import would
    con.register("bench_machines", pa.table({"k": list(range(len(machine_ids))), "asset_id": machine_ids}))
    days = (END - START).days
    state_gap_us = 86_400_000_000 // STATES_PER_DAY
    count_gap_us = 86_400_000_000 // COUNTS_PER_DAY
    con.execute(
        f"""
        INSERT INTO states
        SELECT '{TENANT}', m.asset_id,
               $start + to_microseconds(i * {state_gap_us} + (hash(i, m.k) % {state_gap_us // 2})::BIGINT),
               ($states)[(1 + hash(m.k, i, 7) % {len(STATES)})::BIGINT], NULL
        FROM range({days * STATES_PER_DAY}) t(i) CROSS JOIN bench_machines m
        ORDER BY i, m.k
        """,
        {"start": START.replace(tzinfo=None), "states": STATES},
    )
    con.execute(
        f"""
        INSERT INTO counts (tenant, asset_id, ts, product_id, produced, scrap)
        SELECT '{TENANT}', m.asset_id, $start + to_microseconds((i + 1) * {count_gap_us}), NULL,
               (900 + hash(m.k, i) % 200)::BIGINT, (hash(i, m.k, 3) % 20)::BIGINT
        FROM range({days * COUNTS_PER_DAY}) t(i) CROSS JOIN bench_machines m
        ORDER BY i, m.k
        """,
        {"start": START.replace(tzinfo=None)},
    )
    con.unregister("bench_machines")
    con.execute("CHECKPOINT")
    return {
        "states": events.record_count("states", TENANT),  # type: ignore[arg-type]
        "counts": events.record_count("counts", TENANT),  # type: ignore[arg-type]
    }


def shift_buckets() -> pa.Table:
    """Every (shift, local date) of the year: the buckets of 'OEE per machine per shift'."""
    keys = [
        (name, START.date() + timedelta(days=d)) for d in range(-1, (END - START).days) for name, *_ in SHIFTS
    ]
    return pa.table(
        {
            "bucket": list(range(len(keys))),
            "lo": [datetime.combine(day, datetime.min.time(), UTC) for _, day in keys],
            "hi": [datetime.combine(day, datetime.min.time(), UTC) + timedelta(days=1) for _, day in keys],
            "shift": [name for name, _ in keys],
            "shift_date": [day for _, day in keys],
        },
        schema=BUCKETS_SCHEMA,
    )


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    timings, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        timings.append(time.perf_counter() - t)
    return statistics.median(timings), result


def scan_bandwidth_gb_s() -> float:
    """Single-core read bandwidth: summing a 1 GiB array of int64 (what scanning a column costs at best)."""
    data = np.ones(2**27, dtype=np.int64)
    data.sum()
    t = time.perf_counter()
    for _ in range(3):
        data.sum()
    return 3 * data.nbytes / (time.perf_counter() - t) / 1e9


def machine_shift_totals(rows: pa.Table) -> dict[str, float]:
    return {
        "rows": rows.num_rows,
        "production_s": float(pa.compute.sum(rows["production_s"]).as_py() or 0),
        "produced": float(pa.compute.sum(rows["produced"]).as_py() or 0),
    }


def bench_scale(machines: int, pg_url: str | None, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        events = DuckDBEventStore(Path(tmp) / "events.duckdb")
        metadata = SqlMetadataStore(f"sqlite:///{Path(tmp) / 'meta.sqlite'}")
        metadata.ensure_tenant(Tenant(TENANT, "Fleet"))
        model = fleet_model(machines)
        metadata.import_asset_model(TENANT, parse_asset_model(model))
        cache = AssetCache(metadata)
        now = END + timedelta(days=1)
        raw = OeeService(events, cache, clock=lambda: now)
        rolled = OeeService(events, cache, clock=lambda: now)
        rollup = PieceRollup(rolled, chunk=timedelta(days=7), query_catch_up=timedelta(0))
        ids = [
            m["id"]
            for s in model["sites"]
            for a in s["areas"]
            for line in a["lines"]
            for m in line["machines"]
        ]
        t = time.perf_counter()
        records = generate(events, ids)
        generate_s = time.perf_counter() - t
        planned_s, _ = best_of(lambda: raw.planned(TENANT, START, END), 1)
        raw_s, (raw_table, _) = best_of(lambda: machine_shifts(raw, TENANT, START, END), 1)
        t = time.perf_counter()
        rollup.catch_up(TENANT)
        build_s = time.perf_counter() - t
        rolled_s, (rolled_table, _) = best_of(lambda: machine_shifts(rolled, TENANT, START, END), repeats)
        buckets = shift_buckets()
        levels_s, _ = best_of(lambda: rolled.measure(TENANT, START, END, buckets, by_shift=True), repeats)
        raw_totals, rolled_totals = machine_shift_totals(raw_table), machine_shift_totals(rolled_table)
        assert rolled_totals["rows"] == raw_totals["rows"]
        assert (
            abs(rolled_totals["production_s"] - raw_totals["production_s"])
            <= 1e-6 * raw_totals["production_s"]
        )
        # late records: a breakdown every 7 minutes for an hour on every machine, half a year back,
        # then the refresh that folds them in
        extra = [START + timedelta(days=200, hours=9, minutes=m) for m in range(0, 60, 7)]
        n = len(ids) * len(extra)
        late = pa.table(
            {
                "tenant": [TENANT] * n,
                "asset_id": [m for m in ids for _ in extra],
                "ts": pa.array([t for _ in ids for t in extra], STATE_SPEC.schema.field("ts").type),
                "state": ["STOPPED"] * n,
                "reason": pa.array([None] * n, pa.string()),
            },
            schema=STATE_SPEC.schema,
        )
        events.write([WriteBatch(RecordKind.STATES, late)])
        t = time.perf_counter()
        refreshed = rollup.refresh(TENANT)
        refresh_s = time.perf_counter() - t
        # columns a scan must read once: ts (8 bytes), machine and state as dictionary codes (4 + 1) for
        # states; ts, machine, produced and scrap (8 + 4 + 8 + 8) for counts
        column_bytes = records["states"] * 13 + records["counts"] * 28
        result: dict[str, Any] = {
            "machines": machines,
            "plants": len(model["sites"]),
            "records": records,
            "generate_s": round(generate_s, 1),
            "machine_shift_rows": raw_totals["rows"],
            "raw_s": round(raw_s, 3),
            "raw_planned_pieces_python_s": round(planned_s, 3),
            "rollup_build_s": round(build_s, 2),
            "rollup_query_ms": round(rolled_s * 1000, 1),
            "raw_over_rollup": round(raw_s / rolled_s, 1),
            "rollup_all_levels_per_shift_ms": round(levels_s * 1000, 1),
            "late_hour_for_every_machine": {
                "states": late.num_rows,
                "refresh_ms": round(refresh_s * 1000, 1),
                "spans_recomputed": refreshed.recomputed,
            },
            "column_bytes": column_bytes,
        }
        if pg_url:
            result["postgresql"] = bench_postgres(pg_url, events, raw, raw_totals, repeats=1)
            result["postgresql_over_duckdb_raw"] = round(result["postgresql"]["query_s"] / raw_s, 1)
        events.close()
        metadata.close()
    return result


PG_SQL = """
WITH spans AS (
    SELECT s.asset_id, s.ts, coalesce(sm.category, 'unknown') AS category,
           least(lead(s.ts, 1, %(now)s) OVER w, s.ts + interval '7 days') AS t1,
           lag(coalesce(sm.category, 'unknown')) OVER w AS prev_category
    FROM b_states s LEFT JOIN b_state_map sm USING (state)
    WINDOW w AS (PARTITION BY s.asset_id ORDER BY s.ts)
),
span_hours AS (
    SELECT sp.*, h.hour_no
    FROM spans sp,
         LATERAL generate_series(floor(extract(epoch FROM sp.ts) / 3600)::bigint,
                                 floor((extract(epoch FROM sp.t1) - 0.000001) / 3600)::bigint) AS h(hour_no)
    WHERE sp.t1 > sp.ts
),
pieces AS (
    SELECT sh.asset_id, p.shift, p.shift_date, sh.category, sh.ts, sh.t1, sh.prev_category,
           p.start_ts, p.end_ts,
           extract(epoch FROM least(sh.t1, p.end_ts) - greatest(sh.ts, p.start_ts)) AS dur_s
    FROM span_hours sh
    JOIN b_machines m USING (asset_id)
    JOIN b_planned p ON p.site_id = m.site_id AND p.hour_no = sh.hour_no
                    AND sh.ts < p.end_ts AND sh.t1 > p.start_ts
),
times AS (
    SELECT asset_id, shift, shift_date,
           sum(dur_s) FILTER (WHERE category = 'production') AS production_s,
           sum(dur_s) FILTER (WHERE category = 'setup') AS setup_s,
           sum(dur_s) FILTER (WHERE category = 'delay') AS delay_s,
           sum(dur_s) FILTER (WHERE category = 'down') AS down_s,
           sum(dur_s) FILTER (WHERE category = 'delay' AND extract(epoch FROM t1 - ts) < 300) AS minor_stop_s,
           count(*) FILTER (WHERE category = 'down' AND prev_category IS DISTINCT FROM category
                            AND ts >= start_ts AND ts < end_ts) AS failures
    FROM pieces GROUP BY 1, 2, 3
),
quantities AS (
    SELECT c.asset_id, p.shift, p.shift_date, sum(c.produced) AS produced, sum(c.scrap) AS scrap,
           sum(c.produced * m.ideal_cycle_s) AS ideal_s
    FROM b_counts c
    JOIN b_machines m USING (asset_id)
    JOIN b_planned p ON p.site_id = m.site_id
                    AND p.hour_no = floor((extract(epoch FROM c.ts) - 0.000001) / 3600)::bigint
                    AND c.ts > p.start_ts AND c.ts <= p.end_ts
    GROUP BY 1, 2, 3
),
pot AS (
    SELECT m.asset_id, p.shift, p.shift_date, sum(extract(epoch FROM p.end_ts - p.start_ts)) AS pot_s
    FROM b_machines m JOIN b_planned p USING (site_id) GROUP BY 1, 2, 3
)
SELECT count(*) AS rows, sum(coalesce(t.production_s, 0)) AS production_s,
       sum(coalesce(q.produced, 0)) AS produced,
       -- OEE per machine and shift (ideal time of good units over planned time), so it is computed
       sum(coalesce(q.ideal_s, 0) * (1 - coalesce(q.scrap, 0)::float / nullif(q.produced, 0))
           / nullif(pot_s, 0)) AS oee_sum
FROM pot
LEFT JOIN times t USING (asset_id, shift, shift_date)
LEFT JOIN quantities q USING (asset_id, shift, shift_date)
"""


def bench_postgres(
    url: str, events: DuckDBEventStore, raw: OeeService, totals: dict[str, float], repeats: int
) -> dict[str, Any]:
    """The same per-machine, per-shift time model in one SQL statement on PostgreSQL, same records."""
    import psycopg

    inputs = raw.inputs(TENANT, START, END)
    tables = {
        "b_states": events.query("SELECT asset_id, ts, state FROM states WHERE tenant = $t", {"t": TENANT}),
        "b_counts": events.query(
            "SELECT asset_id, ts, produced, scrap FROM counts WHERE tenant = $t", {"t": TENANT}
        ),
        "b_machines": inputs.machines.select(["asset_id", "site_id", "ideal_cycle_s"]),
        "b_planned": inputs.planned,
        "b_state_map": inputs.state_map.filter(pa.compute.equal(inputs.state_map["map_key"], 0)).select(
            ["state", "category"]
        ),
    }
    ddl = {
        "b_states": "asset_id text, ts timestamp, state text",
        "b_counts": "asset_id text, ts timestamp, produced bigint, scrap bigint",
        "b_machines": "asset_id text, site_id text, ideal_cycle_s double precision",
        "b_planned": "site_id text, hour_no bigint, start_ts timestamp, end_ts timestamp, shift text, "
        "shift_date date",
        "b_state_map": "state text, category text",
    }
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as pg:
        t = time.perf_counter()
        for name, table in tables.items():
            pg.execute(f"DROP TABLE IF EXISTS {name}")
            pg.execute(f"CREATE UNLOGGED TABLE {name} ({ddl[name]})")
            for i, field in enumerate(table.schema):  # naive UTC timestamps, like the columns
                if pa.types.is_timestamp(field.type):
                    table = table.set_column(i, field.name, table.column(i).cast(pa.timestamp("us")))
            buffer = io.BytesIO()
            pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
            with pg.cursor().copy(f"COPY {name} FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buffer.getvalue())
        for name in tables:
            pg.execute(f"ANALYZE {name}")
        load_s = time.perf_counter() - t
        timings, row = [], None
        for _ in range(repeats):
            t = time.perf_counter()
            row = pg.execute(PG_SQL, {"now": (END + timedelta(days=1)).replace(tzinfo=None)}).fetchone()
            timings.append(time.perf_counter() - t)
        for name in tables:
            pg.execute(f"DROP TABLE IF EXISTS {name}")
    assert row is not None
    return {
        "load_s": round(load_s, 1),
        "query_s": round(statistics.median(timings), 2),
        "rows": row[0],
        "rows_match_duckdb": row[0] == totals["rows"],
        "production_s_matches_duckdb": abs(float(row[1] or 0) - totals["production_s"])
        <= 1e-6 * max(1.0, totals["production_s"]),
        "produced_matches_duckdb": float(row[2] or 0) == totals["produced"],
    }


def bench_kpi_year(scales: list[int], pg_url: str | None, pg_max: int, repeats: int) -> dict[str, Any]:
    bandwidth = scan_bandwidth_gb_s()
    out: dict[str, Any] = {"scan_bandwidth_gb_s_one_core": round(bandwidth, 2), "scales": []}
    for machines in scales:
        print(f"  {machines} machine-years …", flush=True)
        result = bench_scale(machines, pg_url if machines <= pg_max else None, repeats)
        floor_s = result["column_bytes"] / (bandwidth * 1e9)
        result["bandwidth_floor_s"] = round(floor_s, 4)
        result["raw_over_floor"] = round(result["raw_s"] / floor_s, 1)
        out["scales"].append(result)
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(bench_kpi_year([int(a) for a in sys.argv[1:]] or [1, 10], None, 0, 3), indent=2))
