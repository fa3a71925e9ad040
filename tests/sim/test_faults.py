"""Fault injection: every fault shows in the records exactly where the ground truth says, nowhere else."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from leitstand.domain.errors import InputError
from leitstand.domain.records import RecordKind
from leitstand.sim import Simulator, enterprise_model
from leitstand.sim.faults import Fault, FaultRates

ONE_PLANT = enterprise_model(plants=1)
START = datetime(2026, 3, 2, 3, tzinfo=UTC)  # a Monday, early shift in Berlin
END = START + timedelta(days=2)
# Frequent enough that every kind shows up many times in two days of one plant.
OFTEN = FaultRates(drift_per_day=0.6, tool_wear_per_day=0.6, stuck_sensor_per_day=0.6, bearing_share=1.0)
HOUR = 3600


@dataclass(frozen=True)
class Pair:
    """The same two days generated without and with faults."""

    clean: dict[RecordKind, pa.Table]
    faulty: dict[RecordKind, pa.Table]
    faults: list[Fault]
    sim: Simulator


@pytest.fixture(scope="module")
def pair() -> Pair:
    clean = Simulator(ONE_PLANT, seed=3).generate(START, END)
    sim = Simulator(ONE_PLANT, seed=3, faults=OFTEN)
    faulty = sim.generate(START, END)
    return Pair(clean, faulty, sim.faults(START, END), sim)


def _seconds(ts: pa.ChunkedArray) -> np.ndarray:
    seconds: np.ndarray = pc.cast(ts, pa.int64()).to_numpy() // 1_000_000
    return seconds


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _series(table: pa.Table, machine_id: str, signal: str) -> tuple[np.ndarray, np.ndarray]:
    own = table.filter(pc.and_(pc.equal(table["asset_id"], machine_id), pc.equal(table["signal"], signal)))
    return _seconds(own["ts"]), own["value"].to_numpy()


def _during(ts: np.ndarray, fault: Fault) -> np.ndarray:
    return (ts >= _epoch(fault.start)) & (ts < _epoch(fault.end))


def _of_kind(faults: list[Fault], kind: str) -> list[Fault]:
    found = [f for f in faults if f.kind == kind and f.start >= START and f.end <= END]
    assert len(found) >= 3, f"too few {kind} faults to test"
    return found


def test_every_kind_is_injected_with_its_signal(pair: Pair) -> None:
    kinds = Counter(f.kind for f in pair.faults)
    assert set(kinds) == {"drift", "bearing_wear", "tool_wear", "stuck_sensor"}
    signals: dict[str, set[str | None]] = {
        "drift": {"temperature"},
        "bearing_wear": {"vibration"},
        "tool_wear": {None},
        "stuck_sensor": {"temperature", "motor_current", "vibration"},
    }
    for fault in pair.faults:
        assert fault.signal in signals[fault.kind]
        assert (fault.breakdown_at is not None) == (fault.kind == "bearing_wear")
        assert fault.start < fault.end


def test_states_are_never_changed(pair: Pair) -> None:
    assert pair.faulty[RecordKind.STATES].equals(pair.clean[RecordKind.STATES])


def test_samples_outside_fault_windows_are_unchanged(pair: Pair) -> None:
    clean, faulty = pair.clean[RecordKind.SAMPLES], pair.faulty[RecordKind.SAMPLES]
    for column in ("asset_id", "signal", "ts", "quality"):
        assert faulty[column].equals(clean[column])
    inside = np.zeros(clean.num_rows, dtype=bool)
    assets, asset = np.unique(clean["asset_id"].to_numpy(zero_copy_only=False), return_inverse=True)
    signals, signal = np.unique(clean["signal"].to_numpy(zero_copy_only=False), return_inverse=True)
    ts = _seconds(clean["ts"])
    for fault in pair.faults:
        if fault.signal is not None:
            own = (asset == np.searchsorted(assets, fault.machine_id)) & (
                signal == np.searchsorted(signals, fault.signal)
            )
            inside |= own & _during(ts, fault)
    changed = clean["value"].to_numpy() != faulty["value"].to_numpy()

    assert not (changed & ~inside).any()
    assert changed[inside].mean() > 0.9


def test_counts_outside_tool_wear_are_unchanged(pair: Pair) -> None:
    clean, faulty = pair.clean[RecordKind.COUNTS], pair.faulty[RecordKind.COUNTS]
    for column in ("asset_id", "ts", "product_id", "produced"):
        assert faulty[column].equals(clean[column])
    asset = clean["asset_id"].to_numpy(zero_copy_only=False)
    ts = _seconds(clean["ts"])
    worn = np.zeros(clean.num_rows, dtype=bool)
    for fault in (f for f in pair.faults if f.kind == "tool_wear"):
        worn |= (asset == fault.machine_id) & (ts > _epoch(fault.start)) & (ts <= _epoch(fault.end))
    changed = clean["scrap"].to_numpy() != faulty["scrap"].to_numpy()

    assert not (changed & ~worn).any()
    assert changed[worn].any()


def test_drift_reads_high_by_an_offset_growing_linearly_until_recalibration(pair: Pair) -> None:
    for fault in _of_kind(pair.faults, "drift"):
        ts, clean = _series(pair.clean[RecordKind.SAMPLES], fault.machine_id, "temperature")
        _, faulty = _series(pair.faulty[RecordKind.SAMPLES], fault.machine_id, "temperature")
        during = _during(ts, fault)
        offset = (faulty - clean)[during]
        hours = (ts[during] - _epoch(fault.start)) / HOUR
        slope = offset[-1] / hours[-1]

        assert 1.5 <= slope <= 4.0
        np.testing.assert_allclose(offset, slope * hours, atol=1e-9)
        assert 3 <= (fault.end - fault.start).total_seconds() / HOUR <= 8
        after = ts >= _epoch(fault.end)
        assert after.any()
        assert (faulty[after][:5] == clean[after][:5]).all()


def test_bearing_wear_raises_vibration_until_a_breakdown(pair: Pair) -> None:
    states = pair.faulty[RecordKind.STATES]
    stuck = [f for f in pair.faults if f.kind == "stuck_sensor" and f.signal == "vibration"]
    for fault in _of_kind(pair.faults, "bearing_wear"):
        assert fault.breakdown_at == fault.end
        record = states.filter(
            pc.and_(pc.equal(states["asset_id"], fault.machine_id), pc.equal(states["ts"], fault.end))
        )
        assert record["state"].to_pylist() == ["DOWN"]
        before = states.filter(
            pc.and_(pc.equal(states["asset_id"], fault.machine_id), pc.less(states["ts"], fault.end))
        )
        assert before["state"][-1].as_py() not in ("OFF", "IDLE")  # a new breakdown, not a repair resumed
        assert 2 <= (fault.end - fault.start).total_seconds() / HOUR <= 6
        if any(
            s.machine_id == fault.machine_id and s.start < fault.end and s.end > fault.start for s in stuck
        ):
            continue  # a vibration sensor stuck meanwhile hides the wear
        ts, clean = _series(pair.clean[RecordKind.SAMPLES], fault.machine_id, "vibration")
        _, faulty = _series(pair.faulty[RecordKind.SAMPLES], fault.machine_id, "vibration")
        during = _during(ts, fault)
        factor = (faulty / clean)[during]
        x = (ts[during] - _epoch(fault.start)) / (fault.end - fault.start).total_seconds()
        gain = (factor[-1] - 1) / x[-1] ** 2

        assert 2.0 <= gain <= 4.0
        np.testing.assert_allclose(factor, 1 + gain * x**2, rtol=1e-9)
        assert (np.diff(factor) > 0).all()


def test_tool_wear_raises_the_scrap_share_until_the_tool_change(pair: Pair) -> None:
    clean, faulty = pair.clean[RecordKind.COUNTS], pair.faulty[RecordKind.COUNTS]
    asset = clean["asset_id"].to_numpy(zero_copy_only=False)
    ts = _seconds(clean["ts"])
    produced = clean["produced"].to_numpy()
    scrap_clean, scrap_faulty = clean["scrap"].to_numpy(), faulty["scrap"].to_numpy()
    late = np.zeros(len(ts), dtype=bool)
    for fault in _of_kind(pair.faults, "tool_wear"):
        start, end = _epoch(fault.start), _epoch(fault.end)
        assert 2 * HOUR <= end - start <= 5 * HOUR
        late |= (asset == fault.machine_id) & (ts > end - (end - start) // 3) & (ts <= end)

    # A worn tool scraps every unit a sharp one would, and more: ends near 10–25 %, from a few percent.
    assert (scrap_faulty >= scrap_clean).all()
    assert (scrap_faulty <= produced).all()
    assert scrap_faulty.dtype.kind == "i"
    share = scrap_faulty[late].sum() / produced[late].sum()
    assert 0.08 < share < 0.25
    assert share > 2.5 * scrap_clean[late].sum() / produced[late].sum()


def test_a_stuck_sensor_repeats_its_first_reading(pair: Pair) -> None:
    for fault in _of_kind(pair.faults, "stuck_sensor"):
        assert fault.signal is not None
        ts, clean = _series(pair.clean[RecordKind.SAMPLES], fault.machine_id, fault.signal)
        _, faulty = _series(pair.faulty[RecordKind.SAMPLES], fault.machine_id, fault.signal)
        during = _during(ts, fault)

        assert 1 <= (fault.end - fault.start).total_seconds() / HOUR <= 4
        assert len(set(faulty[during].tolist())) == 1
        assert len(set(clean[during].tolist())) > 1
        first = np.argmax(during)
        assert faulty[first] == clean[first] or fault.signal == "vibration"  # bearing wear may show in it


def test_ground_truth_lists_the_faults_overlapping_a_window_by_start(pair: Pair) -> None:
    window = (START + timedelta(hours=10), START + timedelta(hours=20))
    listed = pair.sim.faults(*window)

    assert listed == pair.sim.ground_truth.faults(*window)
    assert listed == sorted(listed, key=lambda f: f.start)
    assert listed == [f for f in pair.faults if f.start < window[1] and f.end > window[0]]
    assert pair.sim.faults(END + timedelta(hours=1), END + timedelta(days=1)) == []


def test_windows_cut_differently_give_the_same_records_and_faults() -> None:
    start, end = START, START + timedelta(days=1, hours=7)
    whole = Simulator(ONE_PLANT, seed=3, faults=OFTEN)
    expected = whole.generate(start, end)
    chunked = Simulator(ONE_PLANT, seed=3, faults=OFTEN)
    cuts = [
        start,
        start + timedelta(hours=2, seconds=17.5),
        start + timedelta(hours=9),
        start + timedelta(hours=18, minutes=30),  # breakdowns soon after need the next day's block
        START.replace(hour=0) + timedelta(days=1),  # a block boundary
        start + timedelta(days=1, hours=1),
        end,
    ]
    parts = [chunked.generate(a, b) for a, b in itertools.pairwise(cuts)]

    for kind in RecordKind:
        assert (
            pa.concat_tables([p[kind] for p in parts])
            .sort_by([("asset_id", "ascending"), ("ts", "ascending")])
            .equals(expected[kind].sort_by([("asset_id", "ascending"), ("ts", "ascending")]))
        )
    assert chunked.faults(start, end) == whole.faults(start, end) != []


def test_looking_further_ahead_changes_no_record() -> None:
    short = Simulator(ONE_PLANT, seed=3, faults=OFTEN).generate(START, END)
    long = Simulator(ONE_PLANT, seed=3, faults=OFTEN).generate(START, END + timedelta(days=2))

    for kind in RecordKind:
        ts = _seconds(long[kind]["ts"])
        inside = ts <= _epoch(END) if kind is RecordKind.COUNTS else ts < _epoch(END)
        assert long[kind].filter(pa.array(inside)).equals(short[kind])


def test_faults_are_determined_by_the_seed() -> None:
    day = (START, START + timedelta(days=1))
    a, b, c = (Simulator(ONE_PLANT, seed=s, faults=OFTEN) for s in (3, 3, 4))
    for sim in (a, b, c):
        sim.generate(*day)

    assert a.faults(*day) == b.faults(*day)
    assert a.faults(*day) != c.faults(*day)


def test_without_faults_nothing_is_injected() -> None:
    day = (START, START + timedelta(hours=6))
    default, explicit = Simulator(ONE_PLANT, seed=3), Simulator(ONE_PLANT, seed=3, faults=None)

    a, b = default.generate(*day), explicit.generate(*day)
    for kind in RecordKind:
        assert a[kind].equals(b[kind])
    assert default.faults(*day) == []


def test_default_rates_give_a_machine_a_fault_every_two_to_four_planned_days() -> None:
    weeks = (START, START + timedelta(weeks=2))
    sim = Simulator(ONE_PLANT, seed=3, sample_interval_s=HOUR, faults=FaultRates())
    sim.generate(*weeks)
    planned_days = sum(t["pot_s"] for t in sim.ground_truth.oee_times(*weeks).values()) / 86_400
    faults = sim.faults(*weeks)

    assert 2 <= planned_days / len(faults) <= 4
    assert {f.kind for f in faults} == {"drift", "bearing_wear", "tool_wear", "stuck_sensor"}


@pytest.mark.parametrize(
    "wrong",
    [{"bearing_share": 1.5}, {"drift_per_day": -1.0}, {"bearing_min_repair_s": -60}],
    ids=["share above one", "negative rate", "negative repair time"],
)
def test_rates_must_be_sensible(wrong: dict[str, float]) -> None:
    with pytest.raises(InputError):
        FaultRates(**wrong)  # type: ignore[arg-type]
