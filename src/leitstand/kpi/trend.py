"""KPI trends: OEE, its factors and its losses per hour or per day over a window.

Each bucket is computed like any window (so the buckets add up to the whole, exactly). Days are
calendar days in the time zone of the plant the scope lies in, or UTC for a scope of several plants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo

from leitstand.domain.assets import AssetLevel
from leitstand.domain.errors import InputError
from leitstand.kpi.oee import OeeService

Bucket = Literal["hour", "day"]
MAX_BUCKETS = 400
DEFAULT_LEVELS = (AssetLevel.ENTERPRISE.value, AssetLevel.SITE.value)


@dataclass(frozen=True, slots=True)
class Trend:
    timezone: str
    buckets: list[tuple[datetime, datetime]]
    series: list[dict[str, Any]]


def bucket_edges(
    start: datetime, end: datetime, bucket: Bucket, zone: str
) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at every hour (UTC) or every local midnight of `zone`; the first and last
    buckets may be partial."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    edges = [start]
    if bucket == "hour":
        edge = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        while edge < end:
            edges.append(edge)
            edge += timedelta(hours=1)
    else:
        tz = ZoneInfo(zone)
        day = start.astimezone(tz).date() + timedelta(days=1)
        while (edge := datetime.combine(day, time(), tz).astimezone(UTC)) < end:
            edges.append(edge)
            day += timedelta(days=1)
    edges.append(end)
    if len(edges) - 1 > MAX_BUCKETS:
        raise InputError(f"a trend has at most {MAX_BUCKETS} buckets; choose a shorter window or days")
    return list(pairwise(edges))


def trend(
    oee: OeeService,
    tenant: str,
    start: datetime,
    end: datetime,
    bucket: Bucket,
    within: str | None = None,
    level: str | None = None,
) -> Trend:
    """One series per asset (by default the enterprise and its plants, or the scope and what is one
    level below it), one value per bucket: OEE, availability, performance, quality and the losses."""
    assets = {a.id: a for a in oee.assets(tenant)}
    scope = assets.get(within) if within else None
    zone = scope.timezone if scope is not None and scope.level is not AssetLevel.ENTERPRISE else "UTC"
    start, end = oee.window(start, end)
    buckets = bucket_edges(start, end, bucket, zone or "UTC")
    if level is not None:
        levels: tuple[str, ...] = (level,)
    elif scope is not None:
        child = scope.level.child
        levels = (scope.level.value,) + ((child.value,) if child else ())
    else:
        levels = DEFAULT_LEVELS
    series: dict[str, dict[str, Any]] = {}
    for index, (lo, hi) in enumerate(buckets):
        for row in oee.compute(tenant, lo, hi, within=within).rows:
            if row["level"] not in levels:
                continue
            entry = series.setdefault(
                row["id"],
                {
                    "id": row["id"],
                    "name": row["name"],
                    "level": row["level"],
                    "values": [None] * len(buckets),
                },
            )
            entry["values"][index] = {
                "oee": row["oee"],
                "availability": row["availability"],
                "performance": row["performance"],
                "quality": row["quality"],
                "losses": row["losses"],
            }
    return Trend(zone or "UTC", buckets, list(series.values()))
