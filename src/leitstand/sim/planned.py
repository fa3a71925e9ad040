"""Planned time as the simulator walks it: calendar pieces in epoch seconds, with what lies between them.

Pieces keep their true (unclipped) start and end, whatever window asks for them, so that everything
the simulator derives from a piece is the same however time is cut into windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum

from leitstand.domain.calendar import ALL_DAY, PlannedInterval, ShiftCalendar

DAY_S = 86_400
_MARGIN = timedelta(days=2)  # longer than any shift, so pieces near the window are never clipped


class Gap(IntEnum):
    """What follows a piece: the next piece at once, a break within the shift, or time off."""

    JOIN = 0
    BREAK = 1
    OFF = 2


@dataclass(frozen=True, slots=True)
class PlannedPiece:
    """Planned time [start, end) in epoch seconds, from one shift with breaks removed."""

    start: int
    end: int
    shift: str
    weekday: int  # of the shift's local date, Monday = 0
    first_of_shift: bool  # the shift begins here rather than after a break
    joined_before: bool  # the previous piece ends exactly at `start`
    after: Gap


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(moment: datetime) -> int:
    """Epoch microseconds of an aware datetime, exactly."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def epoch_s(moment: datetime) -> int:
    """Whole epoch seconds of an aware datetime (rounded down)."""
    return (moment - EPOCH) // timedelta(seconds=1)


def to_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def planned_pieces(calendar: ShiftCalendar, lo: int, hi: int) -> list[PlannedPiece]:
    """The pieces of planned time overlapping [lo, hi), sorted; overlapping shifts are merged."""
    raw = _raw_pieces(calendar, lo, hi)
    out = []
    for i, (start, end, shift, shift_date) in enumerate(raw):
        if end <= lo or start >= hi:
            continue
        before = raw[i - 1] if i > 0 else None
        after = raw[i + 1] if i + 1 < len(raw) else None
        if after is None or after[0] > end:
            gap = Gap.BREAK if after is not None and (after[2], after[3]) == (shift, shift_date) else Gap.OFF
        else:
            gap = Gap.JOIN
        out.append(
            PlannedPiece(
                start=start,
                end=end,
                shift=shift,
                weekday=shift_date.weekday(),
                first_of_shift=before is None or (before[2], before[3]) != (shift, shift_date),
                joined_before=before is not None and before[1] == start,
                after=gap,
            )
        )
    return out


def gap_at(calendar: ShiftCalendar, t: int) -> Gap | None:
    """None if `t` lies in planned time, else the kind of gap it lies in."""
    pieces = planned_pieces(calendar, t - 2 * DAY_S, t + 1)
    for piece in pieces:
        if piece.start <= t < piece.end:
            return None
    before = [p for p in pieces if p.end <= t]
    return before[-1].after if before and before[-1].after is not Gap.JOIN else Gap.OFF


def _raw_pieces(calendar: ShiftCalendar, lo: int, hi: int) -> list[tuple[int, int, str, date]]:
    if calendar.around_the_clock:
        first_day = lo // DAY_S - 1
        days = range(first_day, hi // DAY_S + 2)
        return [(d * DAY_S, (d + 1) * DAY_S, ALL_DAY, to_datetime(d * DAY_S).date()) for d in days]
    intervals = calendar.planned_intervals(to_datetime(lo) - _MARGIN, to_datetime(hi) + _MARGIN)
    return _merge(intervals)


def _merge(intervals: list[PlannedInterval]) -> list[tuple[int, int, str, date]]:
    merged: list[tuple[int, int, str, date]] = []
    for interval in intervals:
        start, end = epoch_s(interval.start), epoch_s(interval.end)
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2], last[3])
        else:
            merged.append((start, end, interval.shift, interval.shift_date))
    return merged
