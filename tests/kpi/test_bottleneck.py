"""Bottlenecks by the active-period method: the machine whose active periods last longest on average
constrains its line, and the line's output is what it made."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from leitstand.kpi.bottleneck import bottlenecks
from leitstand.kpi.oee import OeeService
from leitstand.store.duckdb import DuckDBEventStore
from tests.kpi.test_oee import DAY, write_counts, write_states

MIN = timedelta(minutes=1)
MODEL = {
    "enterprise": {"id": "acme", "name": "ACME"},
    "sites": [
        {
            "id": "s",
            "timezone": "UTC",
            "areas": [
                {
                    "id": "a",
                    "lines": [
                        {
                            "id": "l",
                            "machines": [{"id": i, "ideal_cycle_s": 10.0} for i in ("up", "neck", "down")],
                        }
                    ],
                }
            ],
        }
    ],
}


@pytest.fixture
def oee(kpi_stores) -> tuple[DuckDBEventStore, OeeService]:
    events, service, _ = kpi_stores(MODEL)
    return events, service


def alternate(machine: str, active: str, wait: str, run_min: int, wait_min: int, until_min: int) -> list:
    rows, t = [], 0
    while t < until_min:
        rows.append((machine, DAY + t * MIN, active))
        rows.append((machine, DAY + (t + run_min) * MIN, wait))
        t += run_min + wait_min
    return rows


def test_the_machine_with_the_longest_active_periods_is_the_bottleneck(oee) -> None:
    events, service = oee
    rows = alternate("up", "RUNNING", "BLOCKED", 20, 10, 240)  # waits for space downstream
    rows += alternate("down", "RUNNING", "STARVED", 10, 20, 240)  # waits for parts
    # the neck never waits: running, a 10-minute breakdown (its own fault: still active), running
    rows += [
        ("neck", DAY, "RUNNING"),
        ("neck", DAY + 110 * MIN, "DOWN"),
        ("neck", DAY + 120 * MIN, "RUNNING"),
    ]
    rows += [(m, DAY + 240 * MIN, "PLANNED_MAINTENANCE") for m in ("up", "neck", "down")]
    write_states(events, rows)
    write_counts(events, [("neck", DAY + 239 * MIN, 1000, 10), ("up", DAY + 239 * MIN, 1100, 0)])
    _, _, lines = bottlenecks(service, "acme", DAY, DAY + 240 * MIN)
    (line,) = lines
    assert line["bottleneck"] == "neck"
    by_id = {m["id"]: m for m in line["machines"]}
    assert by_id["neck"]["active_periods"] == 1
    assert by_id["neck"]["avg_active_period_s"] == pytest.approx(240 * 60)
    assert by_id["up"]["avg_active_period_s"] == pytest.approx(20 * 60)
    assert by_id["down"]["avg_active_period_s"] == pytest.approx(10 * 60)
    assert by_id["down"]["active_share"] == pytest.approx(1 / 3)
    assert [m["id"] for m in line["machines"]] == ["neck", "up", "down"]
    assert line["output"] == {"good": 990, "good_per_hour": pytest.approx(990 / 4)}


def test_a_tenants_own_waiting_codes_count_as_waiting(kpi_stores) -> None:
    events, service, _ = kpi_stores({**MODEL, "waiting_states": ["WAIT_MAT", "WAIT_OUT"]})
    rows = alternate("up", "RUNNING", "WAIT_OUT", 20, 10, 240)
    rows += alternate("down", "RUNNING", "WAIT_MAT", 10, 20, 240)
    rows += [("neck", DAY, "RUNNING")]
    rows += [(m, DAY + 240 * MIN, "PLANNED_MAINTENANCE") for m in ("up", "neck", "down")]
    write_states(events, rows)
    _, _, (line,) = bottlenecks(service, "acme", DAY, DAY + 240 * MIN)
    assert [m["id"] for m in line["machines"]] == ["neck", "up", "down"]


def test_the_endpoint_answers_per_line(client: TestClient, admin: dict) -> None:
    answer = client.get("/api/v1/kpi/bottlenecks?hours=24", headers=admin).json()
    assert [line["id"] for line in answer["lines"]] == ["hh-press-l1"]
    assert answer["source"]["tenant"] == "acme"
