"""Shift calendars per site: shifts with breaks and holidays in the site's local time, expanded to UTC.

Windows and shifts are local (a 06:00 shift starts at 06:00 in the plant, summer or winter); storage and
computation are UTC. A site without a calendar is planned around the clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leitstand.domain.errors import InputError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAY = "all-day"  # the one shift of a site planned around the clock


@dataclass(frozen=True, slots=True)
class Break:
    """A break inside a shift, starting at a local time of day."""

    start: time
    minutes: int


@dataclass(frozen=True, slots=True)
class Shift:
    """A recurring shift: local start and end (end ≤ start means it ends the next day), weekdays, breaks."""

    name: str
    start: time
    end: time
    days: frozenset[int]
    breaks: tuple[Break, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedInterval:
    """A span of planned operation time in UTC, with the shift it belongs to and that shift's local date."""

    start: datetime
    end: datetime
    shift: str
    shift_date: date


@dataclass(frozen=True, slots=True)
class ShiftCalendar:
    """The planned operation time of one site."""

    timezone: str
    shifts: tuple[Shift, ...]
    holidays: frozenset[date] = frozenset()

    @property
    def around_the_clock(self) -> bool:
        return not self.shifts

    def planned_intervals(self, start: datetime, end: datetime) -> list[PlannedInterval]:
        """The planned operation time within [start, end), breaks removed, sorted, clipped to the window."""
        _require_utc(start, end)
        zone = ZoneInfo(self.timezone)
        if self.around_the_clock:
            return list(_local_days(start, end, zone))
        first = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date()
        out: list[PlannedInterval] = []
        day = first
        while day <= last:
            if day not in self.holidays:
                for shift in self.shifts:
                    if day.weekday() in shift.days:
                        out.extend(_shift_pieces(shift, day, zone, start, end))
            day += timedelta(days=1)
        out.sort(key=lambda p: p.start)
        return out


def _local_days(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[PlannedInterval]:
    """[start, end) cut at local midnights: a site planned around the clock works one "all-day" shift
    per local day (so that a day's figures do not depend on the window they were asked in)."""
    day = start.astimezone(zone).date()
    while (lo := max(start, _local(day, time(), zone))) < end:
        hi = min(end, _local(day + timedelta(days=1), time(), zone))
        if hi > lo:
            yield PlannedInterval(lo, hi, ALL_DAY, day)
        day += timedelta(days=1)


def _shift_pieces(
    shift: Shift, day: date, zone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[PlannedInterval]:
    begin = _local(day, shift.start, zone)
    finish = _local(day + timedelta(days=1) if shift.end <= shift.start else day, shift.end, zone)
    cuts: list[tuple[datetime, datetime]] = []
    for brk in shift.breaks:
        brk_day = day + timedelta(days=1) if brk.start < shift.start else day
        brk_start = _local(brk_day, brk.start, zone)
        cuts.append((brk_start, brk_start + timedelta(minutes=brk.minutes)))
    cuts.sort()
    cursor = begin
    for cut_start, cut_end in [*cuts, (finish, finish)]:
        piece_start, piece_end = max(cursor, start), min(cut_start, finish, end)
        if piece_end > piece_start:
            yield PlannedInterval(piece_start, piece_end, shift.name, day)
        cursor = max(cursor, cut_end)


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _require_utc(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None:
            raise InputError("calendar windows need timezone-aware datetimes (UTC)")


def parse_calendar(doc: dict[str, object] | None, timezone: str) -> ShiftCalendar:
    """Build a ShiftCalendar from its YAML/JSON form (see docs/data-model.md), or raise InputError."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone {timezone!r}: use an IANA name like Europe/Berlin") from exc
    if not doc:
        return ShiftCalendar(timezone=timezone, shifts=())
    shifts_doc = doc.get("shifts", [])
    holidays_doc = doc.get("holidays", [])
    if not isinstance(shifts_doc, list) or not isinstance(holidays_doc, list):
        raise InputError("calendar: 'shifts' and 'holidays' must be lists")
    shifts = tuple(_parse_shift(s, i) for i, s in enumerate(shifts_doc))
    try:
        holidays = frozenset(date.fromisoformat(str(h)) for h in holidays_doc)
    except ValueError as exc:
        raise InputError(f"calendar: holidays must be ISO dates (YYYY-MM-DD): {exc}") from exc
    return ShiftCalendar(timezone=timezone, shifts=shifts, holidays=holidays)


def _parse_shift(item: object, i: int) -> Shift:
    where = f"calendar.shifts[{i}]"
    if not isinstance(item, dict):
        raise InputError(f"{where} must be a mapping with name, start, end, days")
    name = item.get("name", f"shift-{i + 1}")
    days_doc = item.get("days", list(WEEKDAYS[:5]))
    breaks_doc = item.get("breaks", [])
    if not isinstance(name, str) or not isinstance(days_doc, list) or not isinstance(breaks_doc, list):
        raise InputError(f"{where}: 'name' must be a string, 'days' and 'breaks' lists")
    days: set[int] = set()
    for d in days_doc:
        if str(d).lower()[:3] not in WEEKDAYS:
            raise InputError(f"{where}.days: {d!r} is not a weekday (mon..sun)")
        days.add(WEEKDAYS.index(str(d).lower()[:3]))
    breaks = []
    for j, b in enumerate(breaks_doc):
        if not isinstance(b, dict):
            raise InputError(f"{where}.breaks[{j}] must be a mapping with start and minutes")
        minutes = b.get("minutes")
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not 0 < minutes < 24 * 60:
            raise InputError(f"{where}.breaks[{j}].minutes must be a whole number of minutes")
        breaks.append(Break(start=_time(b.get("start"), f"{where}.breaks[{j}].start"), minutes=minutes))
    return Shift(
        name=name,
        start=_time(item.get("start"), f"{where}.start"),
        end=_time(item.get("end"), f"{where}.end"),
        days=frozenset(days),
        breaks=tuple(breaks),
    )


def _time(value: object, where: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError as exc:
        raise InputError(f"{where} must be a local time of day like '06:00', not {value!r}") from exc
