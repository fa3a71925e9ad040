"""The ground truth: ISO 22400 times that add up, counts that match the records, plausible OEE."""

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import pyarrow.compute as pc

from leitstand.domain.records import RecordKind
from leitstand.domain.time_model import OeeTimes
from leitstand.sim import Simulator, enterprise_model

from .conftest import START, History

CATEGORIES = ("planned_down_s", "production_s", "setup_s", "delay_s", "down_s")


def _oee(times: dict[str, float]) -> OeeTimes:
    return OeeTimes(
        pot_s=times["pot_s"],
        planned_down_s=times["planned_down_s"],
        production_s=times["production_s"],
        ideal_s=times["ideal_s"],
        good_ideal_s=times["good_ideal_s"],
    )


def test_category_times_add_up_to_planned_operation_time(history: History) -> None:
    truth = history.sim.ground_truth.oee_times(history.start, history.end)

    for machine_id, times in truth.items():
        assert times["unknown_s"] == 0, machine_id
        assert sum(times[c] for c in CATEGORIES) == times["pot_s"], machine_id
        assert times["production_s"] > 0


def test_planned_operation_time_is_the_calendars(history: History) -> None:
    truth = history.sim.ground_truth.oee_times(history.start, history.end)

    for site in history.sim.fleet.sites:
        planned = site.calendar.planned_intervals(history.start, history.end)
        pot_s = sum((p.end - p.start).total_seconds() for p in planned)
        for machine in history.sim.fleet.machines[site.machines_lo : site.machines_hi]:
            assert truth[machine.id]["pot_s"] == pot_s


def test_produced_and_scrap_equal_the_generated_counts(history: History) -> None:
    truth = history.sim.ground_truth.oee_times(history.start, history.end)
    counts = history.tables[RecordKind.COUNTS]
    sums = counts.group_by("asset_id").aggregate([("produced", "sum"), ("scrap", "sum")]).to_pylist()

    assert len(sums) == len(truth)
    for row in sums:
        assert truth[row["asset_id"]]["produced"] == row["produced_sum"]
        assert truth[row["asset_id"]]["scrap"] == row["scrap_sum"]


def test_production_per_product_equals_the_generated_counts(history: History) -> None:
    per_product = history.sim.ground_truth.production(history.start, history.end)
    counts = history.tables[RecordKind.COUNTS]
    sums = counts.group_by(["asset_id", "product_id"]).aggregate([("produced", "sum"), ("scrap", "sum")])

    for row in sums.to_pylist():
        assert per_product[row["asset_id"]][row["product_id"]] == (row["produced_sum"], row["scrap_sum"])
    assert sum(len(v) for v in per_product.values()) == sums.num_rows


def test_ideal_time_uses_the_ideal_cycle_of_each_product(history: History) -> None:
    machine = "p03-paint-l1-m02"
    truth = history.sim.ground_truth.oee_times(history.start, history.end)[machine]
    cycles = {
        p.id: p.ideal_cycle_s[machine] for p in history.sim.fleet.model.products if machine in p.ideal_cycle_s
    }
    made = history.sim.ground_truth.production(history.start, history.end)[machine]

    expected = sum(units * cycles[str(product)] for product, (units, _) in made.items())
    assert abs(truth["ideal_s"] - expected) < 1e-6 * expected
    good = sum((units - bad) * cycles[str(product)] for product, (units, bad) in made.items())
    assert abs(truth["good_ideal_s"] - good) < 1e-6 * good


def test_oee_is_plausible_for_every_machine(history: History) -> None:
    truth = history.sim.ground_truth.oee_times(history.start, history.end)
    oee = np.array([_oee(t).oee for t in truth.values()], dtype=float)
    performance = np.array([_oee(t).performance for t in truth.values()], dtype=float)
    quality = np.array([_oee(t).quality for t in truth.values()], dtype=float)

    assert 0.65 < np.median(oee) < 0.80
    assert oee.min() > 0.45
    assert oee.max() < 0.92
    # Speed loss: never faster than ideal, at worst about 15 % slower.
    assert (performance <= 1.0).all()
    assert (performance > 0.85).all()
    assert (quality > 0.94).all()
    assert (quality < 0.999).all()


def test_a_sub_window_holds_its_share_of_the_times(history: History) -> None:
    whole = history.sim.ground_truth.oee_times(history.start, history.end)
    middle = START + timedelta(days=1, hours=7, minutes=13)
    first = history.sim.ground_truth.oee_times(history.start, middle)
    second = history.sim.ground_truth.oee_times(middle, history.end)

    for machine_id, times in whole.items():
        for key in ("pot_s", *CATEGORIES, "ideal_s"):
            assert abs(first[machine_id][key] + second[machine_id][key] - times[key]) < 1e-6, (
                machine_id,
                key,
            )
        assert first[machine_id]["produced"] + second[machine_id]["produced"] == times["produced"]


def test_time_not_yet_generated_is_unknown() -> None:
    sim = Simulator(enterprise_model(plants=1))
    sim.generate(START, START + timedelta(hours=12))

    truth = sim.ground_truth.oee_times(START, START + timedelta(days=1))
    press = truth["p01-press-l1-m01"]
    assert press["unknown_s"] > 0
    assert abs(sum(press[c] for c in CATEGORIES) + press["unknown_s"] - press["pot_s"]) < 1e-6


def test_state_intervals_match_the_state_records(history: History) -> None:
    machine = "p04-assembly-l2-m07"
    intervals = history.sim.ground_truth.intervals(machine, history.start, history.end)
    states = history.tables[RecordKind.STATES]
    own = states.filter(pc.equal(states.column("asset_id"), machine)).sort_by("ts")

    assert [i.start for i in intervals] == own.column("ts").to_pylist()
    assert [i.state for i in intervals] == own.column("state").to_pylist()
    assert [i.reason for i in intervals] == own.column("reason").to_pylist()
    assert all(a.end == b.start for a, b in itertools.pairwise(intervals))
    assert intervals[-1].end == history.end
