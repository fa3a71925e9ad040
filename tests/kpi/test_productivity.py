"""Productivity: good units per machine hour against a baseline and a +30 % target, summed before
dividing, with its inputs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from leitstand.kpi.productivity import productivity
from tests.kpi.test_oee import DAY, stores, write_counts, write_states  # noqa: F401 (fixture)

NEXT = DAY + timedelta(days=1)


def test_plus_30_percent_is_the_whole_way_and_plants_are_summed_not_averaged(stores) -> None:  # noqa: F811
    events, oee = stores
    write_states(events, [("m9", DAY, "RUNNING"), ("m1", DAY, "RUNNING"), ("m2", DAY, "RUNNING")])
    write_counts(events, [("m9", DAY + timedelta(hours=12), 240, 0)])  # baseline day: 10 per hour
    write_counts(events, [("m9", NEXT + timedelta(hours=12), 312, 12)])  # 300 good: 12.5 per hour
    answer = productivity(oee, "acme", NEXT, NEXT + timedelta(days=1), DAY, NEXT)
    rows = {r["id"]: r for r in answer.rows}
    s2 = rows["s2"]
    assert s2["baseline_units_per_machine_hour"] == pytest.approx(10.0)
    assert s2["units_per_machine_hour"] == pytest.approx(12.5)
    assert s2["change"] == pytest.approx(0.25)
    assert s2["progress"] == pytest.approx(0.25 / 0.30)
    assert s2["inputs"] == {
        "good": 300,
        "machine_hours": 24.0,
        "coverage": 1.0,
        "baseline_good": 240,
        "baseline_machine_hours": 24.0,
        "baseline_coverage": 1.0,
    }
    # Site s1 (Wednesdays 06-14, one hour of breaks: 7 planned hours per machine) made nothing on the
    # baseline Wednesday and is not planned on Thursday: it has no figure now, and it dilutes the
    # enterprise's baseline (240 good over 24 + 2 x 7 machine hours), never averaged away.
    assert rows["s1"]["units_per_machine_hour"] is None
    assert rows["s1"]["change"] is None
    enterprise = rows["acme"]
    assert enterprise["baseline_units_per_machine_hour"] == pytest.approx(240 / 38)
    assert enterprise["units_per_machine_hour"] == pytest.approx(300 / 24)
    assert enterprise["change"] == pytest.approx((300 / 24) / (240 / 38) - 1)


def test_a_baseline_mostly_without_records_is_no_yardstick(stores) -> None:  # noqa: F811
    events, oee = stores
    write_states(events, [("m9", NEXT - timedelta(hours=2), "RUNNING")])  # records begin late on day one
    write_counts(
        events, [("m9", NEXT - timedelta(hours=1), 20, 0), ("m9", NEXT + timedelta(hours=12), 240, 0)]
    )
    s2 = next(
        r
        for r in productivity(oee, "acme", NEXT, NEXT + timedelta(days=1), DAY, NEXT).rows
        if r["id"] == "s2"
    )
    assert s2["inputs"]["baseline_coverage"] == pytest.approx(2 / 24)
    assert s2["units_per_machine_hour"] == pytest.approx(10.0)
    assert s2["change"] is None  # not +1,100 %: 20 units in 2 recorded hours of a 24-hour baseline
    assert s2["progress"] is None


def test_hours_without_records_neither_dilute_nor_inflate(stores) -> None:  # noqa: F811
    events, oee = stores
    write_states(events, [("m9", DAY + timedelta(hours=9.6), "RUNNING")])  # 60 % of the baseline day
    write_counts(
        events, [("m9", DAY + timedelta(hours=23), 144, 0), ("m9", NEXT + timedelta(hours=12), 240, 0)]
    )
    s2 = next(
        r
        for r in productivity(oee, "acme", NEXT, NEXT + timedelta(days=1), DAY, NEXT).rows
        if r["id"] == "s2"
    )
    assert s2["inputs"]["baseline_coverage"] == pytest.approx(0.6)
    assert s2["baseline_units_per_machine_hour"] == pytest.approx(10.0)  # 144 units in 14.4 recorded hours
    assert s2["change"] == pytest.approx(0.0)  # the same pace: no gain from missing records


def test_the_endpoint_defaults_to_the_previous_period_and_a_30_percent_target(
    client: TestClient, admin: dict
) -> None:
    answer = client.get("/api/v1/kpi/productivity?hours=24", headers=admin).json()
    assert answer["target"] == 0.30
    assert answer["baseline"]["end"] == answer["window"]["start"]
    assert {r["level"] for r in answer["rows"]} <= {"site", "enterprise"}
    assert answer["source"]["tenant"] == "acme"
    refused = client.get("/api/v1/kpi/productivity?target=0", headers=admin)
    assert refused.status_code == 422
    naive = client.get("/api/v1/kpi/productivity?start=2026-11-10T00:00:00", headers=admin)
    assert naive.status_code == 422
    assert "UTC offset" in naive.json()["detail"]
