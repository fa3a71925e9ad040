"""Streaming evaluation: what fires when, the same however batches are cut, and never twice."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from leitstand.domain.records import RecordKind
from leitstand.watch.engine import TenantWatch, _ewma
from leitstand.watch.rules import bind_rules, parse_rules

from .conftest import at, counts, plant, samples, states

SAMPLES, STATES, COUNTS = RecordKind.SAMPLES, RecordKind.STATES, RecordKind.COUNTS
KNOWN = frozenset({"RUNNING", "DOWN", "IDLE"})


def watch(*docs: dict) -> TenantWatch:
    return TenantWatch("acme", bind_rules(parse_rules(list(docs)), plant(), KNOWN))


def rule(kind: str, rule_id: str = "r", **fields: object) -> dict:
    return {
        "id": rule_id,
        "kind": kind,
        "targets": {"assets": ["m0", "m1"]},
        "signal": "temperature",
    } | fields


def events(found: list) -> list[tuple[str, float, bool]]:
    """(asset, minute, active) of each detection."""
    return [(d.asset_id, (d.at - at(0)).total_seconds() / 60, d.active) for d in found]


def test_threshold_with_hysteresis_and_delays() -> None:
    w = watch(rule("threshold", above=80, hysteresis=5, on_delay_s=120, off_delay_s=60))
    values = [70, 81, 82, 79, 84, 85, 86, 78, 74, 73, 76, 72, 70]
    found = w.evaluate(SAMPLES, samples("m0", "temperature", values))
    # above 80 from minute 1 (79 is within the dead band, so it still holds), active 2 min later; at or
    # below 75 from minute 8, cleared once that held for a minute; 76 at 10 is inside the band again
    assert events(found) == [("m0", 3, True), ("m0", 9, False)]
    assert found[0].value == 79


def test_an_expression_rule() -> None:
    w = watch(rule("threshold", when="value > 50 and rate > 5"))
    found = w.evaluate(SAMPLES, samples("m0", "temperature", [40, 42, 60, 61, 70, 30]))
    assert events(found) == [("m0", 2, True), ("m0", 3, False), ("m0", 4, True), ("m0", 5, False)]


def test_a_replay_fires_nothing_and_an_overlap_only_what_is_new() -> None:
    w = watch(rule("threshold", above=80))
    batch = samples("m0", "temperature", [70, 90, 70, 90])
    assert len(w.evaluate(SAMPLES, batch)) == 3
    assert w.evaluate(SAMPLES, batch) == []
    more = samples("m0", "temperature", [90, 70, 70], start_min=3)  # minute 3 again, then new
    assert events(w.evaluate(SAMPLES, more)) == [("m0", 4, False)]


def test_nan_and_bad_quality_neither_fire_nor_clear() -> None:
    w = watch(rule("threshold", above=80))
    values = [90, float("nan"), 70, 90, 90]
    quality = ["GOOD", "GOOD", "BAD", "GOOD", "UNCERTAIN"]
    found = w.evaluate(SAMPLES, samples("m0", "temperature", values, quality=quality))
    assert events(found) == [("m0", 0, True)]


def test_a_delay_does_not_bridge_a_gap_in_the_data() -> None:
    w = watch(rule("threshold", above=80, on_delay_s=300, max_gap_s=120))
    first = samples("m0", "temperature", [90, 90, 90])  # minutes 0-2
    later = samples("m0", "temperature", [90, 90, 90, 90, 90, 90], start_min=30)  # after a 28-min gap
    assert w.evaluate(SAMPLES, first) == []
    assert events(w.evaluate(SAMPLES, later)) == [("m0", 35, True)]


def test_rate_of_change() -> None:
    w = watch(rule("rate_of_change", rise_per_min=5))
    found = w.evaluate(SAMPLES, samples("m0", "temperature", [20, 21, 30, 31, 32], step_s=60))
    assert events(found) == [("m0", 2, True), ("m0", 3, False)]
    assert found[0].explanation["rate_per_min"] == 9


def test_flatline_finds_a_stuck_sensor() -> None:
    w = watch(rule("flatline", min_duration_s=300, tolerance=0.0))
    values = [20.1, 20.3, 20.2, *[20.5] * 8, 20.7]
    assert events(w.evaluate(SAMPLES, samples("m0", "temperature", values))) == [
        ("m0", 9, True),
        ("m0", 11, False),
    ]


def test_stale_data_in_a_batch_at_its_end_and_from_a_machine_never_heard() -> None:
    w = watch(rule("stale", max_age_s=300))
    m0 = samples("m0", "temperature", [1, 1, 1])  # minutes 0-2
    m0_late = samples("m0", "temperature", [1], start_min=20)
    found = w.evaluate(SAMPLES, pa.concat_tables([m0, m0_late]))
    # m0: silent from minute 2 to 20, stale from minute 7; m1 never sent: stale 5 min after data time began
    assert sorted(events(found)) == [("m0", 7, True), ("m0", 20, False), ("m1", 5, True)]


def test_stale_ends_when_data_comes_back() -> None:
    w = watch(rule("stale", max_age_s=300, targets={"assets": ["m0"]}))
    w.evaluate(SAMPLES, samples("m0", "temperature", [1, 1]))
    w.evaluate(SAMPLES, samples("m1", "temperature", [1], start_min=10))  # data time moves on
    assert events(w.advance(0)) == []  # nothing new: m0 went stale at minute 6 during the last batch
    back = w.evaluate(SAMPLES, samples("m0", "temperature", [1], start_min=12))
    assert events(back) == [("m0", 12, False)]


def test_state_duration_fires_at_the_limit_and_clears_when_the_state_ends() -> None:
    doc = {
        "id": "down",
        "kind": "state_duration",
        "targets": {"assets": ["m0"]},
        "states": ["DOWN"],
        "longer_than_s": 900,
    }
    w = watch(doc)
    found = w.evaluate(STATES, states("m0", [(0, "RUNNING"), (10, "DOWN"), (20, "RUNNING"), (30, "DOWN")]))
    assert events(found) == []  # ten minutes down is within the limit; the second stop is ongoing
    found = w.evaluate(SAMPLES, samples("m1", "temperature", [1], start_min=50))  # data time: minute 50
    assert events(found) == [("m0", 45, True)]
    assert events(w.evaluate(STATES, states("m0", [(60, "RUNNING")]))) == [("m0", 60, False)]


def test_scrap_rate_over_a_window() -> None:
    doc = {
        "id": "scrap",
        "kind": "scrap_rate",
        "targets": {"assets": ["m0"]},
        "window_s": 600,
        "above": 0.1,
        "min_produced": 20,
    }
    w = watch(doc)
    rows = [(m, 10, 0) for m in range(1, 11)] + [(m, 10, 3) for m in range(11, 21)]
    rows += [(m, 10, 0) for m in range(21, 41)]
    found = []
    for part in (rows[:13], rows[13:27], rows[27:]):  # the window spans batches
        found += w.evaluate(COUNTS, counts("m0", part))
    # 10-minute window: scrap exceeds 10 % once 4 bad minutes are in it (12 of 100 at minute 14)
    assert events(found) == [("m0", 14, True), ("m0", 27, False)]
    assert found[0].explanation["produced_in_window"] == 100


def _noise(n: int, seed: int = 1) -> np.ndarray:
    return 50 + np.random.default_rng(seed).normal(0, 1, n)


def test_anomaly_detectors_learn_normal_and_flag_a_shift_with_the_reason() -> None:
    values = _noise(900)
    values[700:] += 3.0  # a shift of three sigma from sample 700 on
    for method, latest in (("robust_z", 760), ("ewma", 720), ("cusum", 720)):
        w = watch(
            rule(
                "anomaly",
                method=method,
                side="high",
                baseline_samples=300,
                targets={"assets": ["m0"]},
                on_delay_s=120 if method == "robust_z" else 0,
            )
        )
        found = w.evaluate(SAMPLES, samples("m0", "temperature", values))
        firsts = [round((d.at - at(0)).total_seconds() / 60) for d in found if d.active]
        assert firsts, method
        assert 700 <= firsts[0] <= latest, (method, firsts)
        assert all(f >= 700 for f in firsts), (method, firsts)  # nothing in the 400 normal samples
        why = found[0].explanation
        assert abs(why["baseline"] - 50) < 0.3
        assert 0.8 < why["sigma"] < 1.2
        assert "σ from its normal" in found[0].message


def test_multivariate_names_the_signal_that_breaks_the_pattern() -> None:
    rng = np.random.default_rng(3)
    load = rng.uniform(0.2, 1.0, 800)
    current = 20 * load + rng.normal(0, 0.3, 800)
    temperature = 40 + 30 * load + rng.normal(0, 0.5, 800)
    temperature[600:] += 4  # hotter than the load explains: small on its own, far off the pattern
    doc = {
        "id": "mv",
        "kind": "multivariate",
        "targets": {"assets": ["m0"]},
        "signals": ["temperature", "motor_current"],
        "baseline_samples": 400,
        "on_delay_s": 120,
    }
    w = watch(doc)
    table = pa.concat_tables(
        [samples("m0", "temperature", temperature), samples("m0", "motor_current", current)]
    )
    found = w.evaluate(SAMPLES, table)
    active = [d for d in found if d.active]
    assert active
    assert 600 <= (active[0].at - at(0)).total_seconds() / 60 <= 620
    assert all((d.at - at(0)).total_seconds() / 60 >= 600 for d in active)
    assert active[0].explanation["top_signal"] == "temperature"


def test_while_state_evaluates_only_in_those_states() -> None:
    w = watch(rule("threshold", below=30, while_state=["RUNNING"], targets={"assets": ["m0"]}))
    assert w.evaluate(SAMPLES, samples("m1", "temperature", [10, 10])) == []  # not watched: no rows
    w.evaluate(STATES, states("m0", [(0, "RUNNING"), (3, "IDLE"), (6, "RUNNING")]))
    found = w.evaluate(SAMPLES, samples("m0", "temperature", [50, 50, 50, 10, 10, 10, 50, 10]))
    assert events(found) == [("m0", 7, True)]


DOCS = [
    rule("threshold", "t", above=0.5, hysteresis=0.3, on_delay_s=120, off_delay_s=60),
    rule("rate_of_change", "r", rise_per_min=1.5, on_delay_s=60),
    rule("flatline", "f", min_duration_s=180, tolerance=0.05),
    rule("anomaly", "a", method="cusum", baseline_samples=30),
    rule("anomaly", "z", method="ewma", baseline_samples=30, side="both"),
    rule("stale", "s", max_age_s=240),
]


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(st.floats(-2, 2).map(lambda v: round(v, 1)), min_size=40, max_size=120),
    gaps=st.lists(st.integers(0, 119), max_size=6),
    cuts=st.lists(st.integers(1, 239), max_size=6),
)
def test_batches_cut_anywhere_give_the_same_detections(
    data: list[float], gaps: list[int], cuts: list[int]
) -> None:
    keep = np.ones(len(data), dtype=bool)
    keep[[g for g in gaps if g < len(data)]] = False
    tables = [samples(m, "temperature", data) for m in ("m0", "m1")]
    table = pa.concat_tables(tables).filter(pa.array(np.concatenate([keep, keep])))
    table = table.sort_by("ts")
    whole = watch(*DOCS).evaluate(SAMPLES, table)
    pieces = watch(*DOCS)
    found = []
    bounds = sorted({0, table.num_rows, *[c for c in cuts if c < table.num_rows]})
    for lo, hi in itertools.pairwise(bounds):
        found += pieces.evaluate(SAMPLES, table.slice(lo, hi - lo))
    key = lambda d: (d.rule_id, d.asset_id, d.at, d.active)  # noqa: E731
    assert sorted(map(key, found)) == sorted(map(key, whole))
    assert pieces.evaluate(SAMPLES, table) == []  # and all of it again is a replay


DOWN_LONG = {
    "id": "down",
    "kind": "state_duration",
    "targets": {"assets": ["m0", "m1"]},
    "states": ["DOWN"],
    "longer_than_s": 900,
}


def test_a_long_stop_that_ends_in_the_next_batch_is_found() -> None:
    w = watch(DOWN_LONG)
    assert w.evaluate(STATES, states("m0", [(0, "DOWN")])) == []
    assert events(w.evaluate(STATES, states("m0", [(20, "RUNNING")]))) == [
        ("m0", 15, True),
        ("m0", 20, False),
    ]


def test_a_late_record_never_clears_an_alarm_before_it_began() -> None:
    w = watch(DOWN_LONG)
    w.evaluate(STATES, states("m0", [(0, "DOWN")]))
    assert events(w.evaluate(STATES, states("m1", [(30, "RUNNING")]))) == [("m0", 15, True)]  # by data time
    assert events(w.evaluate(STATES, states("m0", [(10, "RUNNING")]))) == [("m0", 15, False)]  # arrived late
    stale = watch(rule("stale", max_age_s=120, targets={"assets": ["m0"]}))
    stale.evaluate(SAMPLES, samples("m0", "temperature", [1]))
    stale.evaluate(SAMPLES, samples("m1", "temperature", [1], start_min=10))
    # m0's late sample of minute 1 clears its alarm no earlier than it began (2), and by the newest
    # sample (minute 10) m0 has been silent since minute 1: stale again from minute 3
    late = stale.evaluate(SAMPLES, samples("m0", "temperature", [1], start_min=1))
    assert events(late) == [("m0", 2, False), ("m0", 3, True)]


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["m0", "m1"]), st.integers(1, 40), st.sampled_from(["RUNNING", "DOWN", "IDLE"])
        ),
        min_size=2,
        max_size=40,
    ),
    cuts=st.lists(st.integers(1, 39), max_size=5),
)
def test_state_durations_are_the_same_however_batches_are_cut(
    steps: list[tuple[str, int, str]], cuts: list[int]
) -> None:
    clock = {"m0": 0, "m1": 0}
    rows = []
    for machine, minutes, state in steps:
        clock[machine] += minutes
        rows.append((clock[machine], machine, state))
    rows.sort()
    table = pa.concat_tables([states(m, [(t, s)]) for t, m, s in rows])
    whole = watch(DOWN_LONG).evaluate(STATES, table)
    pieces, found = watch(DOWN_LONG), []
    bounds = sorted({0, table.num_rows, *[c for c in cuts if c < table.num_rows]})
    for lo, hi in itertools.pairwise(bounds):
        found += pieces.evaluate(STATES, table.slice(lo, hi - lo))
    key = lambda d: (d.asset_id, d.at, d.active)  # noqa: E731
    assert sorted(map(key, found)) == sorted(map(key, whole))


def test_a_quantised_signal_is_not_an_anomaly_for_being_quantised() -> None:
    rng = np.random.default_rng(4)
    values = np.where(rng.random(1200) < 0.6, 20.0, 21.0)  # more than half equal: a MAD of 0
    w = watch(rule("anomaly", method="robust_z", baseline_samples=200, targets={"assets": ["m0"]}))
    assert w.evaluate(SAMPLES, samples("m0", "temperature", values)) == []
    values[1000:] = 26.0  # five steps off is
    assert events(w.evaluate(SAMPLES, samples("m0", "temperature", values[1000:], start_min=1200))) == [
        ("m0", 1200, True)
    ]


@settings(max_examples=30, deadline=None)
@given(lam=st.floats(0.01, 1.0), length=st.integers(1, 3000), seed=st.integers(0, 1000))
def test_the_vectorised_ewma_is_the_recursion(lam: float, length: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values, start = rng.normal(0, 1, (3, length)), rng.normal(0, 1, 3)
    expected = np.empty_like(values)
    level = start.copy()
    for t in range(length):
        level = (1 - lam) * level + lam * values[:, t]
        expected[:, t] = level
    assert np.allclose(_ewma(values, start, lam), expected, rtol=1e-9, atol=1e-9)
