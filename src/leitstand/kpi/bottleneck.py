"""Line bottlenecks by the active-period method, and each line's output at its bottleneck.

A machine waits when it is starved, blocked or idle (`WAITING_STATES`); otherwise, in planned time and
not planned down, it is active — producing, set up, or down for its own reasons. The machine of a line
whose active periods last longest on average constrains the line the most (Roser, Nakano and Tanaka,
"A practical bottleneck detection method", 2001). Ties go to the larger share of active time. The
line's output is what its bottleneck produced: the line can make no more than that machine.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from leitstand.domain.time_model import WAITING_STATES
from leitstand.kpi.oee import SPANS_SQL, OeeService

BOTTLENECK_SQL = "WITH\n" + SPANS_SQL + (Path(__file__).parent / "bottleneck.sql").read_text()


def bottlenecks(
    oee: OeeService, tenant: str, start: datetime, end: datetime, within: str | None = None
) -> tuple[datetime, datetime, list[dict[str, Any]]]:
    """Per line at or below `within`: its machines with their active share and average active period,
    the bottleneck, and the line's output at it."""
    start, end = oee.window(start, end)
    waiting = pa.table({"state": sorted(WAITING_STATES | oee.state_mapping(tenant).waiting)})
    table = oee.scoped_query(BOTTLENECK_SQL, tenant, start, end, within, {"waiting": waiting})
    kpis = {r["id"]: r for r in oee.compute(tenant, start, end, level=None, within=within).rows}
    names = {a.id: a.name for a in oee.assets(tenant)}
    lines: dict[str, dict[str, Any]] = {}
    for row in table.to_pylist():
        line_id = row["line_id"]
        line = lines.setdefault(line_id, {"id": line_id, "name": names.get(line_id, line_id), "machines": []})
        machine = kpis.get(row["asset_id"], {})
        periods = row["periods"]
        line["machines"].append(
            {
                "id": row["asset_id"],
                "name": machine.get("name", row["asset_id"]),
                "active_s": row["active_s"],
                "observed_s": row["observed_s"],
                "active_share": row["active_s"] / row["observed_s"] if row["observed_s"] else None,
                "active_periods": periods,
                "avg_active_period_s": row["active_s"] / periods if periods else None,
                "produced": machine.get("inputs", {}).get("produced", 0),
                "good": machine.get("inputs", {}).get("good", 0),
            }
        )
    hours = (end - start).total_seconds() / 3600
    for line in lines.values():
        ranked = sorted(
            line["machines"],
            key=lambda m: (m["avg_active_period_s"] or 0.0, m["active_share"] or 0.0),
            reverse=True,
        )
        line["machines"] = ranked
        top = ranked[0] if ranked and ranked[0]["avg_active_period_s"] else None
        line["bottleneck"] = top["id"] if top else None
        line["output"] = (
            {"good": top["good"], "good_per_hour": top["good"] / hours if hours else None} if top else None
        )
    return start, end, list(lines.values())
