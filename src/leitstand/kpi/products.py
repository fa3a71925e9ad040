"""Roll-ups by product: what each product made of the planned time, over a scope and a window.

Counts carry their product; states do not, so time cannot be split by product without guessing.
Per product the answer therefore holds quantities and ideal times (PQ, GQ, scrap, rework, PRI × PQ)
with the quality, scrap and rework ratios, and each product's share of the scope's ideal time: the
part of performance that product earned. Availability and OEE per product need states tagged with the
production order, which records do not carry yet.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from leitstand.domain.time_model import OeeTimes
from leitstand.kpi.oee import PIECES_SQL, KpiAnswer, OeeService

# the CTEs of pieces.sql, then the product query
PRODUCTS_SQL = (
    PIECES_SQL[: PIECES_SQL.rindex("SELECT * FROM machine_pieces")].rstrip().rstrip(",")
    + "\n"
    + (Path(__file__).parent / "products.sql").read_text()
)


def products(
    oee: OeeService, tenant: str, start: datetime, end: datetime, within: str | None = None
) -> KpiAnswer:
    """One row per product made at or below `within` in the planned time of [start, end)."""
    start, end = oee.window(start, end)
    minor_stop_s = oee.minor_stop_threshold.total_seconds()  # a parameter of the CTEs composed in
    table = oee.scoped_query(PRODUCTS_SQL, tenant, start, end, within, minor_stop_s=minor_stop_s)
    names = {p.id: p.name for p in oee.model(tenant).products}
    total_ideal = sum(r["ideal_s"] for r in table.to_pylist())
    rows: list[dict[str, Any]] = []
    for row in table.to_pylist():
        kpis = OeeTimes(
            pot_s=0.0,
            planned_down_s=0.0,
            production_s=0.0,
            ideal_s=row["ideal_s"],
            good_ideal_s=row["good_ideal_s"],
            produced=row["produced"],
            good=row["good"],
            rework=row["rework"],
        ).kpis()
        rows.append(
            {
                "product_id": row["product_id"],
                "name": names.get(row["product_id"], row["product_id"]) if row["product_id"] else None,
                "machines": row["machines"],
                "quality_ratio": kpis["quality_ratio"],
                "scrap_ratio": kpis["scrap_ratio"],
                "rework_ratio": kpis["rework_ratio"],
                "ideal_time_share": row["ideal_s"] / total_ideal if total_ideal else None,
                "inputs": {k: v for k, v in row.items() if k not in ("product_id", "machines")},
            }
        )
    return KpiAnswer(start, end, rows)
