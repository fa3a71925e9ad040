"""KPI endpoints: OEE with its inputs per machine, line, area, site and enterprise."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BeforeValidator

from leitstand.access.policy import ReadScope
from leitstand.api.deps import reading, runtime
from leitstand.api.errors import AUTHENTICATED
from leitstand.api.runtime import Runtime
from leitstand.domain.agreements import DataKind
from leitstand.domain.assets import AssetLevel
from leitstand.kpi.bottleneck import bottlenecks
from leitstand.kpi.oee import KpiAnswer
from leitstand.kpi.productivity import DEFAULT_TARGET, productivity
from leitstand.kpi.products import products
from leitstand.kpi.shifts import machine_shifts
from leitstand.kpi.shifts import rows as shift_rows
from leitstand.kpi.trend import Bucket, trend


def _iso_only(value: object) -> object:
    """Refuse bare numbers (which pydantic would read as Unix times): windows are ISO 8601."""
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("give an ISO 8601 date-time with a UTC offset, e.g. 2026-11-20T06:00:00Z")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]

router = APIRouter(prefix="/api/v1/kpi", tags=["kpi"], responses=AUTHENTICATED)


Window = tuple[datetime, datetime]


def window_of(default_hours: float) -> Callable[..., Window]:
    """The query parameters of a KPI window, as a dependency: start, end, or the `hours` before end
    (`default_hours` unless given)."""

    def requested(
        start: IsoDatetime | None = Query(
            None, description="Window start (ISO 8601 with offset); default end - hours."
        ),
        end: IsoDatetime | None = Query(None, description="Window end (exclusive); default now."),
        hours: float = Query(
            default_hours, ge=0.001, le=24 * 400, description="Window length when start is not given."
        ),
    ) -> Window:
        end = end or datetime.now(UTC)
        return start or end - timedelta(hours=hours), end

    return requested


DAY = Depends(window_of(24))
WEEK = Depends(window_of(24 * 7))


@router.get("/oee")
def oee(
    requested: Window = DAY,
    level: AssetLevel | None = Query(None, description="Only rows of this level."),
    scope: ReadScope = Depends(reading(DataKind.KPI)),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """OEE = availability × performance × quality, each row with the times and quantities it comes from.
    A window reaching past now is answered up to now (`window.end` says so)."""
    lo, hi = requested
    answer = rt.oee.compute(scope.tenant, lo, hi, level=level.value if level else None, within=scope.within)
    return _answer(scope, answer)


@router.get("/downtime")
def downtime(
    requested: Window = DAY,
    top: int = Query(20, ge=1, le=500, description="How many rows, largest first."),
    scope: ReadScope = Depends(reading(DataKind.KPI)),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Downtime Pareto: planned busy time lost by category, state and reason, largest first, with the
    number of stops that began in the window and how many machines had them."""
    lo, hi = requested
    answer = rt.oee.downtime(scope.tenant, lo, hi, within=scope.within, top=top)
    running = 0.0
    for r in answer.rows:  # shares of all lost time, not only of the rows returned
        running += r["duration_s"]
        r["cumulative_share"] = running / r["total_lost_s"] if r["total_lost_s"] else None
    return _answer(scope, answer)


@router.get("/stops")
def stops(
    requested: Window = DAY,
    top: int = Query(20, ge=1, le=500, description="How many stops, longest first."),
    scope: ReadScope = Depends(reading(DataKind.KPI)),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """The longest stops: spans of a delay, setup, breakdown or unknown state that took planned busy
    time in the window, ranked by the planned time they took, each with its machine, state, reason,
    start and end (also outside the window) and whether it is still going on."""
    lo, hi = requested
    answer = rt.oee.stops(scope.tenant, lo, hi, within=scope.within, top=top)
    for row in answer.rows:
        row["started"], row["ended"] = row["started"].isoformat(), row["ended"].isoformat()
    return _answer(scope, answer)


def _answer(scope: ReadScope, answer: KpiAnswer) -> dict[str, Any]:
    return {
        "source": scope.source(),
        "window": {"start": answer.start.isoformat(), "end": answer.end.isoformat()},
        "rows": answer.rows,
    }


@router.get("/productivity")
def productivity_endpoint(
    requested: Window = WEEK,
    baseline_start: IsoDatetime | None = Query(
        None, description="Start of the baseline; default: the period of the same length before."
    ),
    baseline_end: IsoDatetime | None = Query(None, description="End of the baseline; default: start."),
    target: float = Query(DEFAULT_TARGET, gt=0, le=10, description="Target change over the baseline."),
    scope: ReadScope = Depends(reading(DataKind.KPI)),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Good units per machine hour (planned busy time) per plant and for the enterprise, against a
    baseline period, with the change and the progress toward the target (+30 % by default)."""
    lo, hi = rt.oee.window(*requested)  # checked (offsets, length) before any arithmetic
    base_hi = baseline_end or lo
    base_lo = baseline_start or base_hi - (hi - lo)
    answer = productivity(rt.oee, scope.tenant, lo, hi, base_lo, base_hi, within=scope.within, target=target)
    return {
        "source": scope.source(),
        "window": {"start": answer.current.start.isoformat(), "end": answer.current.end.isoformat()},
        "baseline": {"start": answer.baseline.start.isoformat(), "end": answer.baseline.end.isoformat()},
        "target": target,
        "rows": answer.rows,
    }


@router.get("/trend")
def trend_endpoint(
    bucket: Bucket = Query(
        "day", description="hour (UTC hours), day (the plant's local days) or shift (one plant's shifts)."
    ),
    requested: Window = WEEK,
    level: AssetLevel | None = Query(
        None, description="Only this level; default the scope and one level below (enterprise: its plants)."
    ),
    scope: ReadScope = Depends(reading(DataKind.KPI)),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """OEE, availability, performance, quality and the loss waterfall per hour or day, one series per
    asset; every bucket is computed like a window of its own, so the buckets add up to the whole."""
    lo, hi = requested
    answer = trend(rt.oee, scope.tenant, lo, hi, bucket, scope.within, level.value if level else None)
    return {
        "source": scope.source(),
        "bucket": answer.bucket,
        "timezone": answer.timezone,
        "buckets": [
            {"start": a.isoformat(), "end": b.isoformat(), "label": label}
            for (a, b), label in zip(answer.buckets, answer.labels, strict=True)
        ],
        "series": answer.series,
    }


@router.get("/shifts")
def shifts_endpoint(
    requested: Window = WEEK,
    limit: int = Query(10_000, ge=1, le=100_000, description="At most this many rows, oldest shifts first."),
    scope: ReadScope = Depends(reading(DataKind.KPI)),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """The shift report: OEE, availability, performance and quality per machine and shift worked in the
    window (shifts of the plants' calendars, by local date), each row with the times and quantities it
    comes from. Shifts cut by the window count only their part inside it."""
    lo, hi = rt.oee.window(*requested)
    table, total = machine_shifts(rt.oee, scope.tenant, lo, hi, scope.within, limit=limit)
    names = {a.id: a.name for a in rt.oee.assets(scope.tenant)}
    return {
        "source": scope.source(),
        "window": {"start": lo.isoformat(), "end": hi.isoformat()},
        "total": total,
        "truncated": total > table.num_rows,
        "rows": list(shift_rows(table, names, limit)),
    }


@router.get("/products")
def products_endpoint(
    requested: Window = DAY,
    scope: ReadScope = Depends(reading(DataKind.KPI)),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Per product made in the planned time of the window: produced, good, scrap and rework, the ideal
    time they stand for, the quality, scrap and rework ratios, and the product's share of the ideal
    time. (Counts carry their product, states do not: availability per product needs orders.)"""
    lo, hi = requested
    return _answer(scope, products(rt.oee, scope.tenant, lo, hi, scope.within))


@router.get("/bottlenecks")
def bottlenecks_endpoint(
    requested: Window = DAY,
    scope: ReadScope = Depends(reading(DataKind.KPI)),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Per line: each machine's active share and average active period, the bottleneck (the longest
    average active period: the active-period method) and the line's output at it."""
    lo, hi = requested
    first, last, lines = bottlenecks(rt.oee, scope.tenant, lo, hi, scope.within)
    return {
        "source": scope.source(),
        "window": {"start": first.isoformat(), "end": last.isoformat()},
        "lines": lines,
    }
