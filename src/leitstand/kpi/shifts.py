"""Shift reports: OEE per machine per shift over a window, the figures a shift leader signs off.

Shifts the roll-up holds whole come from its sums per machine and shift (`oee_shifts`); the others —
cut by the window's edges, not settled yet, not built yet — are summed from pieces, the roll-up's or
raw records'. The ratios are computed in the engine from the sums with the formulas of `OeeTimes`
(a test holds them equal): a year of a fleet is a million rows, never Python objects one by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from leitstand.domain.assets import descendants
from leitstand.kpi.oee import OeeService
from leitstand.store.interfaces import PIECE_COLUMNS

_KEY = "asset_id, shift, shift_date"
_SUMS = PIECE_COLUMNS.split(", ")[4:]


def _ratio(numerator: str, denominator: str) -> str:
    """`OeeTimes`' ratio: none where the denominator is not positive."""
    return f"CASE WHEN {denominator} > 0 THEN {numerator} / ({denominator}) END"


_COUNTS = {"failures", "produced", "good", "scrap", "rework", "units_without_ideal_cycle"}
# a shift lasts less than this, so the pieces of a shift cut by an edge lie this close to it
_LONGEST_SHIFT = "INTERVAL 2 DAY"

SHIFTS_SQL = f"""
WITH whole AS (
    -- shifts whose every piece in the window is in the roll-up's covered hours
    SELECT s.asset_id, s.shift, s.shift_date, s.first_start, s.last_start,
           {", ".join(f"s.{c}" for c in _SUMS)}
    FROM oee_shifts s
    WHERE s.tenant = $tenant AND s.first_start >= $roll_lo AND s.last_start < $roll_hi
      AND NOT EXISTS (SELECT 1 FROM raw_pieces r
                      WHERE r.asset_id = s.asset_id AND r.shift = s.shift AND r.shift_date = s.shift_date)
),
cut AS (
    SELECT {PIECE_COLUMNS} FROM raw_pieces
    UNION ALL
    SELECT {PIECE_COLUMNS} FROM oee_pieces
    WHERE tenant = $tenant AND piece_start >= $roll_lo AND piece_start < $roll_hi
      AND (piece_start < $roll_lo + {_LONGEST_SHIFT} OR piece_start >= $roll_hi - {_LONGEST_SHIFT})
),
-- a whole shift with pieces in `cut` begins or ends in its bands: only those need excluding there
whole_in_bands AS (
    SELECT asset_id, shift, shift_date FROM whole
    WHERE first_start < $roll_lo + {_LONGEST_SHIFT} OR last_start >= $roll_hi - {_LONGEST_SHIFT}
),
summed AS (
    SELECT asset_id, shift, shift_date, min(piece_start) AS first_start,
           {", ".join(f"sum({c})::{'BIGINT' if c in _COUNTS else 'DOUBLE'} AS {c}" for c in _SUMS)}
    FROM cut c
    WHERE NOT EXISTS (SELECT 1 FROM whole_in_bands w
                      WHERE w.asset_id = c.asset_id AND w.shift = c.shift AND w.shift_date = c.shift_date)
    GROUP BY {_KEY}
),
report AS (
    SELECT *, pot_s - planned_down_s AS pbt_s,
           pot_s - production_s - setup_s - delay_s - down_s - planned_down_s AS unknown_s,
           {_ratio("good_ideal_s", "pot_s - planned_down_s")} AS oee,
           {_ratio("production_s", "pot_s - planned_down_s")} AS availability,
           {_ratio("ideal_s", "production_s")} AS performance,
           {_ratio("good_ideal_s", "ideal_s")} AS quality
    FROM (SELECT * EXCLUDE (last_start) FROM whole UNION ALL SELECT * FROM summed)
    WHERE $everywhere OR asset_id IN (SELECT asset_id FROM machines)
)
"""


def machine_shifts(
    oee: OeeService,
    tenant: str,
    start: datetime,
    end: datetime,
    within: str | None = None,
    limit: int | None = None,
) -> tuple[pa.Table, int]:
    """One row per machine and shift worked in [start, end) (at or below `within`): the shift, its
    local date, its first planned minute in the window, the time-model sums and the ratios; and how
    many rows there are. With a `limit`, the oldest shifts first and at most that many; without, in
    no particular order (sorting a fleet's year is left to whoever needs it sorted)."""
    start, end = oee.window(start, end)
    oee.check_within(tenant, within)
    machines = oee.inputs(tenant, start, start).machines.select(["asset_id"])
    if within is not None:
        keep = pa.array(sorted(descendants(oee.assets(tenant), within)), pa.string())
        machines = machines.filter(pc.is_in(machines["asset_id"], value_set=keep))
    sql = SHIFTS_SQL + "SELECT * FROM report"
    params: dict[str, Any] = {"tenant": tenant, "everywhere": within is None}
    if limit is not None:
        sql = (
            SHIFTS_SQL + "SELECT *, (SELECT count(*) FROM report) AS total FROM report "
            "ORDER BY first_start, asset_id, shift LIMIT $limit"
        )
        params["limit"] = limit
    with oee.pieces(tenant, start, end) as (reader, raw, covered):
        lo, hi = covered or (start, start)  # an empty span: nothing from the roll-up
        params |= {"roll_lo": lo, "roll_hi": hi}
        table = reader.query(sql, params, {"raw_pieces": raw, "machines": machines})
    if limit is None:
        total = table.num_rows
    else:
        total = int(table["total"][0].as_py()) if table.num_rows else 0
        table = table.drop_columns(["total"])
    return table, total


def rows(table: pa.Table, names: dict[str, str], limit: int) -> Iterable[dict[str, Any]]:
    """The first `limit` rows as the API shows them: ratios, then the inputs they come from."""
    inputs = [c for c in table.column_names if c not in _SHOWN]
    for row in table.slice(0, limit).to_pylist():
        yield {
            "id": row["asset_id"],
            "name": names.get(row["asset_id"], row["asset_id"]),
            "shift": row["shift"],
            "shift_date": row["shift_date"].isoformat(),
            "first_start": row["first_start"].isoformat(),
            "oee": row["oee"],
            "availability": row["availability"],
            "performance": row["performance"],
            "quality": row["quality"],
            "inputs": {k: row[k] for k in inputs},
        }


_SHOWN = {"asset_id", "shift", "shift_date", "first_start", "oee", "availability", "performance", "quality"}
