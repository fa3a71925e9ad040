"""Shift calendars: local shifts and breaks become UTC planned time, across midnight and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leitstand.domain.calendar import parse_calendar
from leitstand.domain.errors import InputError

THREE_SHIFTS = {
    "shifts": [
        {
            "name": "early",
            "start": "06:00",
            "end": "14:00",
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "breaks": [{"start": "10:00", "minutes": 30}],
        },
        {
            "name": "night",
            "start": "22:00",
            "end": "06:00",
            "days": ["sun", "mon", "tue", "wed", "thu"],
            "breaks": [{"start": "02:00", "minutes": 30}],
        },
    ],
    "holidays": ["2026-12-25"],
}


def total(intervals: list) -> timedelta:
    return sum((i.end - i.start for i in intervals), timedelta())


def test_a_shift_with_a_break_is_planned_for_its_length_minus_the_break() -> None:
    calendar = parse_calendar(THREE_SHIFTS, "Europe/Berlin")
    day = datetime(2026, 11, 18, tzinfo=UTC)  # a Wednesday, CET = UTC+1
    early = [i for i in calendar.planned_intervals(day, day + timedelta(days=1)) if i.shift == "early"]
    assert [(i.start.hour, i.end.hour, i.end.minute) for i in early] == [(5, 9, 0), (9, 13, 0)]
    assert early[1].start == datetime(2026, 11, 18, 9, 30, tzinfo=UTC)
    assert total(early) == timedelta(hours=7, minutes=30)


def test_a_night_shift_runs_into_the_next_day_and_its_break_falls_after_midnight() -> None:
    calendar = parse_calendar(THREE_SHIFTS, "Europe/Berlin")
    start = datetime(2026, 11, 18, 20, tzinfo=UTC)
    night = [i for i in calendar.planned_intervals(start, start + timedelta(hours=12)) if i.shift == "night"]
    assert night[0].start == datetime(2026, 11, 18, 21, tzinfo=UTC)
    assert night[-1].end == datetime(2026, 11, 19, 5, tzinfo=UTC)
    assert total(night) == timedelta(hours=7, minutes=30)
    assert {i.shift_date.isoformat() for i in night} == {"2026-11-18"}


def test_the_night_shift_over_the_autumn_clock_change_lasts_nine_hours() -> None:
    calendar = parse_calendar(
        {"shifts": [{"start": "22:00", "end": "06:00", "days": ["sat"]}]}, "Europe/Berlin"
    )
    start = datetime(2026, 10, 24, 12, tzinfo=UTC)  # DST ends on Sunday 2026-10-25 at 03:00 local
    intervals = calendar.planned_intervals(start, start + timedelta(days=1))
    assert total(intervals) == timedelta(hours=9)


def test_the_spring_clock_change_shortens_a_night_shift_to_seven_hours() -> None:
    calendar = parse_calendar(
        {"shifts": [{"start": "22:00", "end": "06:00", "days": ["sat"]}]}, "Europe/Berlin"
    )
    start = datetime(2026, 3, 28, 12, tzinfo=UTC)  # DST starts on Sunday 2026-03-29
    assert total(calendar.planned_intervals(start, start + timedelta(days=1))) == timedelta(hours=7)


def test_a_holiday_cancels_the_shifts_that_start_on_it() -> None:
    calendar = parse_calendar(THREE_SHIFTS, "Europe/Berlin")
    christmas = datetime(2026, 12, 25, tzinfo=UTC)  # a Friday
    planned = calendar.planned_intervals(christmas, christmas + timedelta(days=1))
    # only the night shift that began on the 24th runs into the holiday
    assert {(i.shift, i.shift_date.isoformat()) for i in planned} == {("night", "2026-12-24")}
    assert planned[-1].end == datetime(2026, 12, 25, 5, tzinfo=UTC)


def test_intervals_are_clipped_to_the_window() -> None:
    calendar = parse_calendar(THREE_SHIFTS, "Europe/Berlin")
    start = datetime(2026, 11, 18, 6, tzinfo=UTC)
    planned = calendar.planned_intervals(start, start + timedelta(hours=1))
    assert total(planned) == timedelta(hours=1)


def test_a_site_without_shifts_is_planned_around_the_clock() -> None:
    calendar = parse_calendar(None, "Asia/Shanghai")
    start = datetime(2026, 11, 18, tzinfo=UTC)
    assert total(calendar.planned_intervals(start, start + timedelta(days=2))) == timedelta(days=2)


@pytest.mark.parametrize(
    ("doc", "tz", "message"),
    [
        ({"shifts": [{"start": "6am", "end": "14:00"}]}, "UTC", "local time of day"),
        ({"shifts": [{"start": "06:00", "end": "14:00", "days": ["funday"]}]}, "UTC", "not a weekday"),
        (
            {"shifts": [{"start": "06:00", "end": "14:00", "breaks": [{"start": "09:00", "minutes": -5}]}]},
            "UTC",
            "whole number of minutes",
        ),
        ({"holidays": ["25.12.2026"]}, "UTC", "ISO dates"),
        (None, "Mars/Olympus", "unknown time zone"),
    ],
)
def test_invalid_calendars_are_refused_with_a_specific_message(doc: object, tz: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_calendar(doc, tz)  # type: ignore[arg-type]
