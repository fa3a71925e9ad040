"""KPI trends: buckets cut at hours or at the plant's local midnights, adding up to the whole window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from leitstand.domain.errors import InputError
from leitstand.kpi.trend import bucket_edges, trend
from tests.kpi.test_oee import DAY, stores, write_counts, write_states  # noqa: F401 (fixture)


def test_days_are_the_plants_local_days_and_hours_are_whole_hours() -> None:
    start = datetime(2026, 11, 18, 10, 30, tzinfo=UTC)
    days = bucket_edges(start, start + timedelta(days=2), "day", "Asia/Shanghai")  # UTC+8
    assert [lo.isoformat() for lo, _ in days] == [
        "2026-11-18T10:30:00+00:00",
        "2026-11-18T16:00:00+00:00",  # midnight in Shanghai
        "2026-11-19T16:00:00+00:00",
    ]
    assert days[-1][1] == start + timedelta(days=2)
    hours = bucket_edges(start, start + timedelta(hours=3), "hour", "UTC")
    assert [lo.minute for lo, _ in hours] == [30, 0, 0, 0]
    with pytest.raises(InputError, match="at most 200 buckets"):
        bucket_edges(start, start + timedelta(days=20), "hour", "UTC")


def test_the_buckets_add_up_to_the_whole_window(stores) -> None:  # noqa: F811
    events, oee = stores
    write_states(
        events,
        [
            ("m9", DAY, "RUNNING"),
            ("m9", DAY + timedelta(hours=5, minutes=10), "DOWN"),
            ("m9", DAY + timedelta(hours=7), "RUNNING"),
        ],
    )
    write_counts(events, [("m9", DAY + timedelta(hours=h), 100, 3) for h in range(1, 24)])
    start, end = DAY, DAY + timedelta(days=1)
    series = trend(oee, "acme", start, end, "hour", within="s2")
    s2 = next(s for s in series.series if s["id"] == "s2")
    assert len(s2["values"]) == 24
    whole = next(r for r in oee.compute("acme", start, end, within="s2").rows if r["id"] == "s2")
    for key in ("production_s", "breakdowns_s", "quality_loss_s", "fully_productive_s"):
        assert sum(v["losses"][key] for v in s2["values"]) == pytest.approx(whole["losses"][key])
    assert series.timezone == "Asia/Shanghai"
    assert {s["level"] for s in series.series} == {"site", "area"}  # the scope and one level below


def test_the_trend_endpoint_answers_series_per_plant(client: TestClient, admin: dict) -> None:
    answer = client.get("/api/v1/kpi/trend?bucket=day&hours=72", headers=admin).json()
    assert answer["timezone"] == "UTC"
    assert 3 <= len(answer["buckets"]) <= 4
    assert {s["level"] for s in answer["series"]} <= {"enterprise", "site"}
    assert client.get("/api/v1/kpi/trend?bucket=week", headers=admin).status_code == 422


def test_shift_buckets_follow_the_plants_calendar(stores) -> None:  # noqa: F811
    events, oee = stores
    write_states(
        events, [("m1", DAY + timedelta(hours=6), "RUNNING"), ("m1", DAY + timedelta(hours=9), "DOWN")]
    )
    answer = trend(oee, "acme", DAY, DAY + timedelta(days=2), "shift", within="s1")
    assert answer.labels == ["day 2026-11-18"]  # Wednesdays only
    assert answer.buckets == [(DAY + timedelta(hours=6), DAY + timedelta(hours=14))]  # breaks included
    m1 = next(
        s
        for s in trend(oee, "acme", DAY, DAY + timedelta(days=2), "shift", within="l1").series
        if s["id"] == "m1"
    )
    whole = next(
        r for r in oee.compute("acme", DAY, DAY + timedelta(days=2), within="m1").rows if r["id"] == "m1"
    )
    assert m1["values"][0]["oee"] == whole["oee"]
    with pytest.raises(InputError, match="need one plant"):
        trend(oee, "acme", DAY, DAY + timedelta(days=1), "shift")
    around_the_clock = trend(oee, "acme", DAY, DAY + timedelta(days=1), "shift", within="s2")
    assert around_the_clock.labels == [None, None]  # no shifts to tell apart: local days


def test_a_window_in_the_future_has_no_buckets_and_days_follow_the_plant(stores) -> None:  # noqa: F811
    _, oee = stores
    future = trend(oee, "acme", DAY + timedelta(days=3650), DAY + timedelta(days=3651), "day")
    assert (future.buckets, future.series) == ([], [])
    inside = trend(oee, "acme", DAY, DAY + timedelta(days=1), "day", within="a2")  # an area of s2
    assert inside.timezone == "Asia/Shanghai"
    assert inside.buckets[0][1] == DAY + timedelta(hours=16)  # midnight in Shanghai
