"""How simulated machines behave over four weeks of one plant: losses with realistic shapes and rates."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from leitstand.sim import Simulator, StateInterval, enterprise_model

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
END = START + timedelta(weeks=4)


@pytest.fixture(scope="module")
def month() -> Simulator:
    sim = Simulator(enterprise_model(plants=1), seed=5, sample_interval_s=3600)
    sim.generate(START, END)
    return sim


@pytest.fixture(scope="module")
def intervals(month: Simulator) -> dict[str, list[StateInterval]]:
    return {m.id: month.ground_truth.intervals(m.id, START, END) for m in month.fleet.machines}


def _durations(intervals: list[StateInterval], state: str) -> np.ndarray:
    return np.array([(i.end - i.start).total_seconds() for i in intervals if i.state == state])


def _cv(values: np.ndarray) -> float:
    return float(values.std() / values.mean())


def test_time_between_breakdowns_is_heavy_tailed(intervals: dict[str, list[StateInterval]]) -> None:
    gaps = []
    for machine_intervals in intervals.values():
        starts = [i.start.timestamp() for i in machine_intervals if i.state == "DOWN"]
        gaps.extend(np.diff(starts))
    gaps_s = np.array(gaps)

    assert len(gaps_s) > 500
    assert _cv(gaps_s) > 1.0


def test_repair_times_are_heavy_tailed(intervals: dict[str, list[StateInterval]]) -> None:
    repairs = np.concatenate([_durations(i, "DOWN") for i in intervals.values()])

    assert repairs.min() >= 1
    assert _cv(repairs) > 1.0
    assert repairs.mean() > 1.3 * np.median(repairs)
    assert repairs.max() > 2 * 3600


def test_microstops_are_frequent_and_last_10_to_120_seconds(
    intervals: dict[str, list[StateInterval]],
) -> None:
    stops = np.concatenate([_durations(i, "MICROSTOP") for i in intervals.values()])
    running = sum(_durations(i, "RUNNING").sum() for i in intervals.values())

    assert stops.max() <= 120
    # A few are cut short by the end of a shift or by a changeover.
    assert np.mean(stops >= 10) > 0.99
    assert len(stops) / (running / 3600) > 3  # several per running hour


def test_machines_are_sometimes_starved_or_blocked(intervals: dict[str, list[StateInterval]]) -> None:
    for state in ("STARVED", "BLOCKED"):
        per_machine = [len(_durations(i, state)) for i in intervals.values()]
        assert min(per_machine) >= 5, state


def test_lines_change_over_a_few_times_a_day_and_switch_product(
    month: Simulator, intervals: dict[str, list[StateInterval]]
) -> None:
    planned_days = 20  # four weeks of Monday to Friday
    per_line: dict[str, set[datetime]] = defaultdict(set)
    for machine in month.fleet.machines:
        line = month.fleet.lines[machine.line].id
        per_line[line].update(i.start for i in intervals[machine.id] if i.state == "SETUP")

    for line, starts in per_line.items():
        assert 1 <= len(starts) / planned_days <= 6, line
    made = month.ground_truth.production(START, END)
    assert all(len(products) >= 2 for products in made.values())


def test_each_line_gets_two_hours_of_planned_maintenance_a_week(
    month: Simulator, intervals: dict[str, list[StateInterval]]
) -> None:
    for machine in month.fleet.machines:
        maintenance = [i for i in intervals[machine.id] if i.state == "PLANNED_MAINTENANCE"]
        assert len(maintenance) == 4, machine.id
        assert {(i.end - i.start).total_seconds() for i in maintenance} == {7200.0}
        assert len({(i.start.weekday(), i.start.time()) for i in maintenance}) == 1


def test_scrap_is_a_few_percent(month: Simulator) -> None:
    truth = month.ground_truth.oee_times(START, END)
    produced = sum(t["produced"] for t in truth.values())
    scrap = sum(t["scrap"] for t in truth.values())

    assert 0.005 < scrap / produced < 0.05


def test_running_takes_most_of_the_planned_time(month: Simulator) -> None:
    truth = month.ground_truth.oee_times(START, END)
    shares = np.array([t["production_s"] / t["pot_s"] for t in truth.values()])

    assert np.median(shares) > 0.7
    assert shares.min() > 0.5


def test_presses_make_far_more_units_than_assembly_stations(month: Simulator) -> None:
    truth = month.ground_truth.oee_times(START, END)

    assert truth["p01-press-l1-m01"]["produced"] > 8 * truth["p01-assembly-l1-m01"]["produced"]
