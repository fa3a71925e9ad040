"""The records the simulator generates: reproducible, window-independent, well-formed, inside planned time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from leitstand.domain.errors import InputError
from leitstand.domain.records import SPECS, RecordKind
from leitstand.sim import Simulator, enterprise_model

from .conftest import History

ONE_PLANT = enterprise_model(plants=1)
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def _sorted(table: pa.Table, kind: RecordKind) -> pa.Table:
    keys = [k for k in SPECS[kind].key if k != "tenant"]
    return table.sort_by([(k, "ascending") for k in keys])


def _seconds(ts: pa.ChunkedArray) -> np.ndarray:
    return pc.cast(ts, pa.int64()).to_numpy() // 1_000_000


def test_same_seed_gives_identical_records() -> None:
    a = Simulator(ONE_PLANT, seed=11).generate(MONDAY, MONDAY + timedelta(hours=12))
    b = Simulator(ONE_PLANT, seed=11).generate(MONDAY, MONDAY + timedelta(hours=12))

    for kind in RecordKind:
        assert a[kind].equals(b[kind])


def test_another_seed_gives_other_records() -> None:
    a = Simulator(ONE_PLANT, seed=11).generate(MONDAY, MONDAY + timedelta(hours=12))
    b = Simulator(ONE_PLANT, seed=12).generate(MONDAY, MONDAY + timedelta(hours=12))

    assert not a[RecordKind.STATES].equals(b[RecordKind.STATES])
    assert not a[RecordKind.SAMPLES].equals(b[RecordKind.SAMPLES])


def test_consecutive_windows_give_exactly_the_records_of_one_window() -> None:
    start, end = MONDAY + timedelta(hours=20), MONDAY + timedelta(days=2, hours=3)
    whole = Simulator(ONE_PLANT, count_interval_s=60).generate(start, end)
    chunked = Simulator(ONE_PLANT, count_interval_s=60)
    # Odd cuts: mid-shift, a fraction of a second apart, across UTC midnight (a block boundary), at a break.
    cuts = [
        start,
        start + timedelta(hours=1, seconds=17.25),
        start + timedelta(hours=1, seconds=17.75),
        start + timedelta(hours=1, minutes=5),
        MONDAY + timedelta(days=1),
        MONDAY + timedelta(days=1, hours=1, minutes=30),
        end,
    ]
    parts = [chunked.generate(a, b) for a, b in itertools.pairwise(cuts)]

    for kind in RecordKind:
        joined = pa.concat_tables([p[kind] for p in parts])
        assert joined.num_rows == whole[kind].num_rows > 0
        assert _sorted(joined, kind).equals(_sorted(whole[kind], kind))


def test_windows_cannot_reach_back_before_simulated_history() -> None:
    sim = Simulator(ONE_PLANT)
    sim.generate(MONDAY, MONDAY + timedelta(hours=1))

    with pytest.raises(InputError, match="before simulated history"):
        sim.generate(MONDAY - timedelta(minutes=1), MONDAY + timedelta(hours=2))


def test_every_table_has_its_record_schema_and_unique_keys(history: History) -> None:
    for kind, table in history.tables.items():
        spec = SPECS[kind]
        assert table.schema.equals(spec.schema)
        assert table.cast(spec.schema).num_rows == table.num_rows > 0
        assert table.column("tenant").null_count == table.num_rows
        for column in spec.required:
            assert table.column(column).null_count == 0
        keys = [k for k in spec.key if k != "tenant"]
        assert table.group_by(keys).aggregate([]).num_rows == table.num_rows


def test_records_lie_in_the_window(history: History) -> None:
    lo, hi = int(history.start.timestamp()), int(history.end.timestamp())
    for kind in (RecordKind.STATES, RecordKind.SAMPLES):
        ts = _seconds(history.tables[kind].column("ts"))
        assert lo <= ts.min()
        assert ts.max() < hi
    counts = _seconds(history.tables[RecordKind.COUNTS].column("ts"))
    assert lo < counts.min()
    assert counts.max() <= hi


def test_states_use_the_machine_state_vocabulary(history: History) -> None:
    states = history.tables[RecordKind.STATES]
    seen = set(pc.unique(states.column("state")).to_pylist())

    assert seen == {
        "RUNNING",
        "IDLE",
        "STARVED",
        "BLOCKED",
        "MICROSTOP",
        "DOWN",
        "SETUP",
        "PLANNED_MAINTENANCE",
        "OFF",
    }
    running = states.filter(pc.equal(states.column("state"), "RUNNING"))
    assert running.column("reason").null_count == running.num_rows
    idle = states.filter(pc.equal(states.column("state"), "IDLE"))
    assert set(idle.column("reason").to_pylist()) == {"break"}


def test_breakdown_reasons_fit_the_machine_type(history: History) -> None:
    states = history.tables[RecordKind.STATES]
    down = states.filter(pc.equal(states.column("state"), "DOWN"))
    presses = down.filter(pc.match_substring(down.column("asset_id"), "-press-"))
    welders = down.filter(pc.match_substring(down.column("asset_id"), "-body-"))

    assert set(presses.column("reason").to_pylist()) <= {
        "TOOL_BREAK",
        "FEEDER_JAM",
        "HYDRAULIC_LEAK",
        "DIE_CUSHION_FAULT",
        "LUBRICATION_FAULT",
    }
    assert "TOOL_BREAK" in presses.column("reason").to_pylist()
    assert {"WELD_GUN_FAULT", "ROBOT_FAULT"} <= set(welders.column("reason").to_pylist())


def test_counts_come_every_whole_minute_with_the_current_product(history: History) -> None:
    counts = history.tables[RecordKind.COUNTS]
    ts = _seconds(counts.column("ts"))
    produced = counts.column("produced").to_numpy()
    scrap = counts.column("scrap").to_numpy()

    assert (ts % 60 == 0).all()
    assert (produced > 0).all()
    assert ((scrap >= 0) & (scrap <= produced)).all()
    pairs = counts.group_by(["asset_id", "product_id"]).aggregate([]).to_pylist()
    assert all(p["product_id"].split("-")[0] == p["asset_id"].split("-")[0] for p in pairs)
    assert len(pairs) > len(history.sim.fleet.machines)  # changeovers: machines make more than one product


def test_samples_come_for_every_signal_of_every_machine_on_the_grid(history: History) -> None:
    samples = history.tables[RecordKind.SAMPLES]
    ts = _seconds(samples.column("ts"))
    machines = len(history.sim.fleet.machines)
    steps = int((history.end - history.start).total_seconds()) // 300

    assert (ts % 300 == 0).all()
    assert samples.num_rows == machines * 3 * steps
    quality = pc.value_counts(samples.column("quality")).to_pylist()
    shares = {q["values"]: q["counts"] / samples.num_rows for q in quality}
    assert shares["GOOD"] > 0.99
    assert 0 < shares.get("UNCERTAIN", 0) < 0.01


def test_machines_run_hot_and_draw_current_and_cool_down_when_off(history: History) -> None:
    samples = history.tables[RecordKind.SAMPLES]
    press = samples.filter(pc.equal(samples.column("asset_id"), "p01-press-l1-m01"))
    ts = _seconds(press.column("ts"))
    temperature = press.filter(pc.equal(press.column("signal"), "temperature")).column("value").to_numpy()
    current = press.filter(pc.equal(press.column("signal"), "motor_current")).column("value").to_numpy()
    grid = np.unique(ts)
    thursday_noon = int(datetime(2026, 3, 5, 11, tzinfo=UTC).timestamp())  # mid-shift in Berlin
    sunday_noon = int(datetime(2026, 3, 8, 11, tzinfo=UTC).timestamp())
    working = np.searchsorted(grid, thursday_noon)
    weekend = np.searchsorted(grid, sunday_noon)

    assert temperature[working] > temperature[weekend] + 10
    assert 20 < temperature[weekend] < 30
    assert current[weekend] < 5
    assert np.median(current[working - 6 : working + 6]) > 100


def test_no_unit_is_produced_outside_planned_time(history: History) -> None:
    counts = history.tables[RecordKind.COUNTS]
    for site in history.sim.fleet.sites:
        starts, ends = _planned(history, site.index)
        ids = [m.id for m in history.sim.fleet.machines[site.machines_lo : site.machines_hi]]
        ts = _seconds(counts.filter(pc.is_in(counts.column("asset_id"), pa.array(ids))).column("ts"))
        index = np.searchsorted(starts, ts, side="left") - 1
        assert len(ts) > 0
        assert ((index >= 0) & (ts <= ends[np.clip(index, 0, None)])).all(), site.id


def test_machines_are_off_or_on_break_exactly_outside_planned_time(history: History) -> None:
    states = history.tables[RecordKind.STATES]
    end = int(history.end.timestamp())
    for site in history.sim.fleet.sites:
        starts, ends = _planned(history, site.index)
        for machine in history.sim.fleet.machines[site.machines_lo : site.machines_hi : 7]:
            own = states.filter(pc.equal(states.column("asset_id"), machine.id)).sort_by("ts")
            lo = _seconds(own.column("ts"))
            hi = np.append(lo[1:], end)
            resting = np.isin(own.column("state").to_numpy(zero_copy_only=False), ["OFF", "IDLE"])
            index = np.searchsorted(starts, lo, side="right") - 1
            inside = (index >= 0) & (hi <= ends[np.clip(index, 0, None)])
            following = np.searchsorted(starts, lo, side="right")
            next_start = np.append(starts, np.iinfo(np.int64).max)[following]
            outside = ((index < 0) | (lo >= ends[np.clip(index, 0, None)])) & (hi <= next_start)
            assert (inside ^ outside).all(), f"{machine.id}: a state straddles a planned-time boundary"
            assert (resting == outside).all(), machine.id


def test_breaks_are_half_an_hour_of_idle(history: History) -> None:
    states = history.tables[RecordKind.STATES]
    own = states.filter(pc.equal(states.column("asset_id"), "p02-body-l2-m04")).sort_by("ts")
    ts = _seconds(own.column("ts"))
    idle = np.nonzero(own.column("state").to_numpy(zero_copy_only=False) == "IDLE")[0]

    assert len(idle) >= 9
    assert set((ts[idle + 1] - ts[idle]).tolist()) == {1800}


def _planned(history: History, site: int) -> tuple[np.ndarray, np.ndarray]:
    """Planned spans of a site as merged [start, end) epoch seconds around the history window."""
    calendar = history.sim.fleet.sites[site].calendar
    spans: list[list[int]] = []
    for p in calendar.planned_intervals(history.start - timedelta(days=1), history.end + timedelta(days=1)):
        lo, hi = int(p.start.timestamp()), int(p.end.timestamp())
        if spans and lo <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    array = np.array(spans, dtype=np.int64)
    return array[:, 0], array[:, 1]


def test_any_asset_model_runs_around_the_clock_without_calendar_or_products() -> None:
    doc = {
        "enterprise": {"id": "acme", "name": "Acme"},
        "sites": [
            {
                "id": "s1",
                "timezone": "Asia/Kolkata",
                "areas": [
                    {
                        "id": "a1",
                        "lines": [
                            {
                                "id": "l1",
                                "machines": [
                                    {"id": "m1", "type": "lathe", "signals": ["spindle_speed"]},
                                    {"id": "m2", "ideal_cycle_s": 30},
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    sim = Simulator(doc)

    tables = sim.generate(MONDAY, MONDAY + timedelta(days=2))

    states = tables[RecordKind.STATES]
    assert "OFF" not in states.column("state").to_pylist()
    counts = tables[RecordKind.COUNTS]
    assert counts.column("product_id").null_count == counts.num_rows > 0
    samples = tables[RecordKind.SAMPLES]
    assert set(samples.column("signal").to_pylist()) == {"spindle_speed"}
    truth = sim.ground_truth.oee_times(MONDAY, MONDAY + timedelta(days=2))
    assert truth["m1"]["pot_s"] == 2 * 86_400
    assert (
        truth["m2"]["produced"]
        == pc.sum(counts.filter(pc.equal(counts.column("asset_id"), "m2")).column("produced")).as_py()
    )
