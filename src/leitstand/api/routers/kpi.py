"""KPI endpoints: OEE with its inputs per machine, line, area, site and enterprise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query

from leitstand.api.deps import principal, runtime
from leitstand.api.runtime import Runtime
from leitstand.domain.tenancy import Principal

router = APIRouter(prefix="/api/v1/kpi", tags=["kpi"])


def window(start: datetime | None, end: datetime | None, hours: float) -> tuple[datetime, datetime]:
    """The requested window; by default the `hours` before now."""
    end = end or datetime.now(UTC)
    start = start or end - timedelta(hours=hours)
    return start, end


@router.get("/oee")
def oee(
    start: datetime | None = Query(
        None, description="Window start (ISO 8601 with offset); default end - hours."
    ),
    end: datetime | None = Query(None, description="Window end (exclusive); default now."),
    hours: float = Query(24, gt=0, le=24 * 400, description="Window length when start is not given."),
    level: str | None = Query(
        None, description="Only rows of this level: machine, line, area, site, enterprise."
    ),
    within: str | None = Query(None, description="Only rows at or below this asset id."),
    who: Principal = Depends(principal),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """OEE = availability × performance × quality, each row with the times and quantities it comes from.
    A window reaching past now is answered up to now (`window.end` says so)."""
    lo, hi = window(start, end, hours)
    answer = rt.oee.compute(who.tenant_id, lo, hi, level=level, within=within)
    return {"window": {"start": answer.start.isoformat(), "end": answer.end.isoformat()}, "rows": answer.rows}


@router.get("/downtime")
def downtime(
    start: datetime | None = Query(None, description="Window start; default end - hours."),
    end: datetime | None = Query(None, description="Window end (exclusive); default now."),
    hours: float = Query(24, gt=0, le=24 * 400),
    within: str | None = Query(None, description="Only machines at or below this asset id."),
    top: int = Query(20, ge=1, le=500, description="How many rows, largest first."),
    who: Principal = Depends(principal),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Downtime Pareto: planned busy time lost by category, state and reason, largest first, with the
    number of stops that began in the window and how many machines had them."""
    lo, hi = window(start, end, hours)
    answer = rt.oee.downtime(who.tenant_id, lo, hi, within=within, top=top)
    running = 0.0
    for r in answer.rows:  # shares of all lost time, not only of the rows returned
        running += r["duration_s"]
        r["cumulative_share"] = running / r["total_lost_s"] if r["total_lost_s"] else None
    return {"window": {"start": answer.start.isoformat(), "end": answer.end.isoformat()}, "rows": answer.rows}
