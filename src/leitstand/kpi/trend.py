"""KPI trends: OEE, its factors and its losses per hour or per day over a window.

All buckets come from one query over the window's pieces (`OeeService.measure`), each piece in
exactly one bucket, so the buckets add up to the whole window. Days are calendar days in the time zone
of the plant the scope lies in, or UTC for a scope of several plants; in a zone whose midnights are not
whole UTC hours, each day is computed as a window of its own. Shifts are the shifts of the plant's
calendar, each from its start to its end (breaks included), named by the shift and its local date;
they need a scope within one plant. Where a plant's shifts overlap, the overlap counts in the shift
that began first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pyarrow as pa

from leitstand.domain.assets import Asset, AssetLevel
from leitstand.domain.calendar import ShiftCalendar
from leitstand.domain.errors import InputError
from leitstand.kpi.oee import BUCKETS_SCHEMA, OeeService, time_buckets

Bucket = Literal["hour", "day", "shift"]
# A chart shows no more: a week of hours is the most a request may ask for.
MAX_BUCKETS = 200
DEFAULT_LEVELS = (AssetLevel.ENTERPRISE.value, AssetLevel.SITE.value)


@dataclass(frozen=True, slots=True)
class Trend:
    timezone: str
    buckets: list[tuple[datetime, datetime]]
    series: list[dict[str, Any]]
    labels: list[str | None]
    bucket: Bucket  # the one used: a plant without shifts gets days


def shift_buckets(
    calendar: ShiftCalendar, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, str, date]]:
    """One bucket per shift worked in [start, end): from its first to its last planned minute, with the
    shift's name and local date."""
    spans: dict[tuple[str, date], tuple[datetime, datetime]] = {}
    for piece in calendar.planned_intervals(start.astimezone(UTC), end.astimezone(UTC)):
        key = (piece.shift, piece.shift_date)
        lo, hi = spans.get(key, (piece.start, piece.end))
        spans[key] = (min(lo, piece.start), max(hi, piece.end))
    buckets = sorted((lo, hi, name, day) for (name, day), (lo, hi) in spans.items())
    if len(buckets) > MAX_BUCKETS:
        raise InputError(f"a trend has at most {MAX_BUCKETS} buckets; choose a shorter window")
    return buckets


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
    site = _site_of(scope, assets)
    zone = site.timezone if site is not None else "UTC"  # a plant's zone is checked at import
    start, end = oee.window(start, end)
    labels: list[str | None]
    if start == end:  # the window lies in the future: nothing has happened in it yet
        return Trend(zone, [], [], [], bucket)
    if bucket == "shift" and (site is None or oee.calendar(tenant, site).around_the_clock):
        if site is None:
            raise InputError("shift buckets need one plant: give `within` a plant or something in it")
        bucket = "day"  # a plant working around the clock has no shifts to tell apart
    if bucket == "shift":
        assert site is not None
        named = shift_buckets(oee.calendar(tenant, site), start, end)
        buckets = [(lo, hi) for lo, hi, _, _ in named]
        labels = [f"{name} {day.isoformat()}" for _, _, name, day in named]
        table = pa.table(
            {
                "bucket": list(range(len(named))),
                "lo": [lo for lo, _, _, _ in named],
                "hi": [hi for _, hi, _, _ in named],
                "shift": [name for _, _, name, _ in named],
                "shift_date": [day for _, _, _, day in named],
            },
            schema=BUCKETS_SCHEMA,
        )
        rows = oee.shape(tenant, oee.measure(tenant, start, end, table, by_shift=True), within=within)
    else:
        buckets = bucket_edges(start, end, bucket, zone)
        labels = [None] * len(buckets)
        if all(_whole_hour(lo) for lo, _ in buckets[1:]):
            rows = oee.shape(tenant, oee.measure(tenant, start, end, time_buckets(buckets)), within=within)
        else:  # local midnights between UTC hours: pieces would straddle the buckets
            rows = {
                index: oee.compute(tenant, lo, hi, within=within).rows
                for index, (lo, hi) in enumerate(buckets)
            }
    if level is not None:
        levels: tuple[str, ...] = (level,)
    elif scope is not None:
        child = scope.level.child
        levels = (scope.level.value,) + ((child.value,) if child else ())
    else:
        levels = DEFAULT_LEVELS
    series: dict[str, dict[str, Any]] = {}
    for index in range(len(buckets)):
        for row in rows.get(index, []):
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
    return Trend(zone, buckets, list(series.values()), labels, bucket)


def _whole_hour(moment: datetime) -> bool:
    return moment.minute == moment.second == moment.microsecond == 0


def _site_of(asset: Asset | None, assets: dict[str, Asset]) -> Asset | None:
    """The plant an asset lies in (itself, if it is one); None above plants."""
    while asset is not None and asset.level is not AssetLevel.SITE:
        asset = assets.get(asset.parent_id) if asset.parent_id else None
    return asset
