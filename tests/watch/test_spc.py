"""Statistical process control: constants against textbook tables, charts computed by hand, every run rule
on a series that must trigger it and one that must not, capability by hand, and the errors for bad input."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leitstand.domain.errors import InputError
from leitstand.watch.spc import (
    ChartKind,
    RuleSet,
    c4,
    capability,
    constants,
    control_chart,
    d2_d3,
    run_rules,
)

# --- constants -------------------------------------------------------------------------------------------

# Montgomery, Introduction to Statistical Quality Control, appendix VI (three decimals, c4 four).
TEXTBOOK = {
    2: {"A2": 1.880, "D3": 0.0, "D4": 3.267, "A3": 2.659, "B3": 0.0, "B4": 3.267, "d2": 1.128, "E2": 2.66},
    5: {"A2": 0.577, "D3": 0.0, "D4": 2.114, "A3": 1.427, "B3": 0.0, "B4": 2.089, "d2": 2.326, "E2": 1.290},
    7: {"A2": 0.419, "D3": 0.076, "D4": 1.924, "A3": 1.182, "B3": 0.118, "B4": 1.882, "d2": 2.704},
    10: {"A2": 0.308, "D3": 0.223, "D4": 1.777, "A3": 0.975, "B3": 0.284, "B4": 1.716, "d2": 3.078},
    25: {"A2": 0.153, "D3": 0.459, "D4": 1.541, "A3": 0.606, "B3": 0.565, "B4": 1.435, "d2": 3.931},
}
TEXTBOOK_C4 = {2: 0.7979, 5: 0.9400, 7: 0.9594, 10: 0.9727, 25: 0.9896}


@pytest.mark.parametrize("n", sorted(TEXTBOOK))
def test_constants_match_the_textbook_table(n: int) -> None:
    document = constants(n).document()
    for name, expected in TEXTBOOK[n].items():
        # the table rounds (E2 = 2.66 to two decimals), and some of its entries come from three-decimal
        # d2, d3 (D4 = 2.574 for n = 3, where 1 + 3·d3/d2 = 2.5746)
        tolerance = 5e-3 if expected == 2.66 else 1e-3
        assert document[name] == pytest.approx(expected, abs=tolerance), name
    assert document["c4"] == pytest.approx(TEXTBOOK_C4[n], abs=1e-4)


def test_d2_is_the_expected_range_of_normal_samples() -> None:
    # d2(n) = ∫ 1 - Φ(x)^n - (1 - Φ(x))^n dx, integrated numerically
    x = np.linspace(-9, 9, 7201)
    phi = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    for n in range(2, 26):
        integral = np.trapezoid(1 - phi**n - (1 - phi) ** n, x)
        assert d2_d3(n)[0] == pytest.approx(integral, abs=2e-6), n
    assert d2_d3(2) == pytest.approx((2 / math.sqrt(math.pi), math.sqrt(2 - 4 / math.pi)), abs=1e-6)


def test_c4_comes_from_the_gamma_function_for_any_size() -> None:
    assert c4(2) == pytest.approx(math.sqrt(2 / math.pi))
    assert c4(200) == pytest.approx(1 - 1 / (4 * 199), abs=1e-5)  # c4 ≈ 1 - 1/(4(n-1)) for large n
    large = constants(40)
    assert (large.A2, large.D4, large.d2) == (None, None, None)
    a3 = large.A3
    assert a3 == pytest.approx(3 / (c4(40) * math.sqrt(40)))


def test_d2_d3_are_tabled_only_to_25() -> None:
    with pytest.raises(InputError, match="2 to 25, not 26"):
        d2_d3(26)


# --- charts ----------------------------------------------------------------------------------------------


def test_xbar_r_chart_computed_by_hand() -> None:
    values = np.array([10, 12, 11, 13, 9, 11, 10, 10, 12, 11, 13, 12], dtype=float)
    chart = control_chart(values, ChartKind.XBAR_R, subgroup_size=4)
    # means 11.5, 10, 12; ranges 3, 2, 2; X̿ = 33.5/3, R̄ = 7/3; n = 4: A2 = 0.729, D4 = 2.282, D3 = 0
    x_bar_bar, r_bar = 33.5 / 3, 7 / 3
    assert chart.location.points.tolist() == [11.5, 10.0, 12.0]
    assert chart.dispersion.points.tolist() == [3.0, 2.0, 2.0]
    assert chart.location.center == pytest.approx(x_bar_bar)
    assert chart.location.ucl == pytest.approx(x_bar_bar + 0.729 * r_bar, abs=2e-3)
    assert chart.location.lcl == pytest.approx(x_bar_bar - 0.729 * r_bar, abs=2e-3)
    assert chart.dispersion.center == pytest.approx(r_bar)
    assert chart.dispersion.ucl == pytest.approx(2.282 * r_bar, abs=2e-3)
    assert chart.dispersion.lcl == 0.0
    assert chart.sigma_within == pytest.approx(r_bar / 2.059, abs=1e-3)
    assert chart.location.sigma == pytest.approx(chart.sigma_within / 2)  # σ / √n
    assert (chart.baseline, chart.dropped, chart.skipped_nan) == (3, 0, 0)
    assert chart.location.violations == chart.dispersion.violations == ()
    assert chart.baseline_in_control


def test_xbar_r_chart_on_seeded_data_uses_a2_and_d4() -> None:
    values = np.random.default_rng(7).normal(50.0, 2.0, 125)
    rows = values.reshape(25, 5)
    x_bar_bar, r_bar = rows.mean(axis=1).mean(), np.ptp(rows, axis=1).mean()
    chart = control_chart(values, "xbar_r", subgroup_size=5)
    assert chart.location.ucl == pytest.approx(x_bar_bar + 0.577 * r_bar, abs=1e-3 * r_bar)
    assert chart.location.lcl == pytest.approx(x_bar_bar - 0.577 * r_bar, abs=1e-3 * r_bar)
    assert chart.dispersion.ucl == pytest.approx(2.114 * r_bar, abs=1e-3 * r_bar)


def test_xbar_s_chart_uses_a3_b3_b4() -> None:
    values = np.random.default_rng(8).normal(5.0, 0.1, 200)
    rows = values.reshape(20, 10)
    x_bar_bar, s_bar = rows.mean(axis=1).mean(), rows.std(axis=1, ddof=1).mean()
    chart = control_chart(values, "xbar_s", subgroup_size=10)
    assert chart.dispersion.points == pytest.approx(rows.std(axis=1, ddof=1))
    assert chart.location.ucl == pytest.approx(x_bar_bar + 0.975 * s_bar, abs=1e-3 * s_bar)
    assert chart.dispersion.ucl == pytest.approx(1.716 * s_bar, abs=1e-3 * s_bar)
    assert chart.dispersion.lcl == pytest.approx(0.284 * s_bar, abs=1e-3 * s_bar)
    assert chart.sigma_within == pytest.approx(s_bar / 0.9727, rel=1e-4)


def test_xbar_s_chart_takes_subgroups_beyond_25() -> None:
    values = np.random.default_rng(9).normal(0.0, 1.0, 40 * 30)
    chart = control_chart(values, "xbar_s", subgroup_size=40)
    assert chart.location.points.size == 30
    assert chart.location.ucl - chart.location.center == pytest.approx(3 * chart.sigma_within / math.sqrt(40))


def test_individuals_and_moving_range_chart_by_hand() -> None:
    chart = control_chart(np.array([5.0, 7.0, 6.0, 9.0, 8.0]), "i_mr")
    # moving ranges 2, 1, 3, 1: MR̄ = 1.75; x̄ = 7; E2 = 2.66, D4 = 3.267
    assert chart.location.center == 7.0
    assert chart.location.ucl == pytest.approx(7 + 2.66 * 1.75, abs=5e-3 * 1.75)
    assert chart.location.lcl == pytest.approx(7 - 2.66 * 1.75, abs=5e-3 * 1.75)
    assert chart.dispersion.center == 1.75
    assert chart.dispersion.ucl == pytest.approx(3.267 * 1.75, abs=1e-3)
    assert chart.sigma_within == pytest.approx(1.75 / 1.128, abs=1e-3)
    assert chart.document()["dispersion"]["points"] == [None, 2.0, 1.0, 3.0, 1.0]


def test_limits_come_from_the_baseline_and_a_later_shift_signals() -> None:
    rng = np.random.default_rng(11)
    stable = rng.normal(20.0, 1.0, 25 * 5)
    shifted = rng.normal(23.0, 1.0, 10 * 5)
    chart = control_chart(np.concatenate([stable, shifted]), "xbar_r", subgroup_size=5, baseline=25)
    baseline_only = control_chart(stable, "xbar_r", subgroup_size=5)
    assert chart.location.center == baseline_only.location.center
    assert chart.location.ucl == baseline_only.location.ucl
    assert chart.dispersion.ucl == baseline_only.dispersion.ucl
    assert chart.location.points.size == 35
    assert set(range(25, 35)) <= set(chart.location.signals)  # a 3σ/√5 ≈ 6.7 sigma-of-mean shift


def test_baseline_with_signals_is_not_in_control() -> None:
    values = np.random.default_rng(12).normal(0.0, 1.0, 30)
    values[10] = 25.0
    chart = control_chart(values, "i_mr", baseline=30)
    assert 10 in chart.location.signals
    assert not chart.baseline_in_control


def test_nan_is_skipped_before_grouping_and_the_trailing_subgroup_dropped() -> None:
    values = np.array([1.0, np.nan, 2.0, 3.0, 4.0, np.nan, 6.0, 5.0, 9.0, 7.0])
    ts = np.arange(10).astype("datetime64[m]")
    chart = control_chart(values, "xbar_r", subgroup_size=3, timestamps=ts)
    # finite values 1 2 3 | 4 6 5 | 9 7 → two subgroups, 9 and 7 dropped
    assert chart.skipped_nan == 2
    assert chart.dropped == 2
    assert chart.location.points.tolist() == [2.0, 5.0]
    assert chart.timestamps is not None
    assert chart.timestamps.tolist() == ts[[3, 7]].tolist()  # each subgroup's last measurement


def test_document_is_json_ready() -> None:
    values = np.random.default_rng(13).normal(1.0, 0.1, 52)
    values[3] = np.nan
    ts = np.datetime64("2026-03-01T06:00:00") + np.arange(52) * np.timedelta64(1, "m")
    document = control_chart(values, "xbar_r", 5, baseline=8, timestamps=ts, rules="nelson").document()
    json.dumps(document, allow_nan=False)
    assert (document["kind"], document["rule_set"]) == ("xbar_r", "nelson")
    assert (document["skipped_nan"], document["dropped"]) == (1, 1)
    assert document["timestamps"][0] == "2026-03-01T06:05:00Z"
    assert len(document["location"]["points"]) == len(document["timestamps"]) == 10
    assert all(isinstance(p, float) for p in document["location"]["points"])


def test_result_arrays_are_read_only() -> None:
    chart = control_chart(np.arange(10.0), "i_mr")
    with pytest.raises(ValueError, match="read-only"):
        chart.location.points[0] = 1.0


@settings(max_examples=25, deadline=None)
@given(
    mean=st.floats(-1e3, 1e3),
    sigma=st.floats(1e-3, 1e2),
    n=st.integers(2, 25),
    kind=st.sampled_from(["xbar_r", "xbar_s"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_limits_of_a_process_in_control_approach_mean_plus_minus_three_sigma_over_root_n(
    mean: float, sigma: float, n: int, kind: str, seed: int
) -> None:
    values = np.random.default_rng(seed).normal(mean, sigma, 4000 * n)
    chart = control_chart(values, kind, subgroup_size=n)
    half_width = 3 * sigma / math.sqrt(n)
    # σ estimates from 4000 subgroups are within about 1.3 % (n = 2) at 1 sd; allow 6 %
    assert chart.sigma_within == pytest.approx(sigma, rel=0.06)
    assert chart.location.ucl == pytest.approx(mean + half_width, abs=0.1 * half_width)
    assert chart.location.lcl == pytest.approx(mean - half_width, abs=0.1 * half_width)


# --- run rules -------------------------------------------------------------------------------------------


def hits(points: list[float], rule: int, rules: str = "nelson") -> list[int]:
    """Indices where one rule fires, around center 0 with sigma 1."""
    return [v.index for v in run_rules(np.array(points, dtype=float), 0.0, 1.0, rules, only=(rule,))]


ALTERNATING_14 = [0.5, -0.5] * 7


@pytest.mark.parametrize(
    ("rule", "fires", "quiet", "where"),
    [
        (1, [0.0, 0.5, 3.5, 0.0], [2.9, -2.9, 3.0], [2]),
        (1, [0.0, -3.1], [0.0, -2.99], [1]),
        (2, [0.5] * 9, [0.5] * 8 + [-0.5] + [0.5] * 8, [8]),
        (2, [-0.2] * 10, [-0.2] * 4 + [0.0] + [-0.2] * 4, [8, 9]),
        (3, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], [0.0, 0.1, 0.2, 0.2, 0.4, 0.5], [5]),
        (3, [2.0, 1.0, 0.0, -1.0, -2.0, -2.5], [2.0, 1.0, 0.0, -1.0, -2.0, 3.0], [5]),
        (4, ALTERNATING_14, [*ALTERNATING_14[:13], ALTERNATING_14[12]], [13]),
        (5, [0.0, 2.5, 0.0, 2.5], [2.5, 0.0, -2.5, 0.0, 2.1, 0.0, 0.0, 2.1], [3]),
        (5, [-2.5, -2.5], [2.5, 1.9, 1.9, 2.5], [1]),
        (5, [0.0, 2.5, 2.5, 0.0], [0.0, 2.5, 0.0, 0.0, 2.5], [2]),  # the completing point is one of the 2
        (6, [1.5, 1.5, 0.0, 1.5, 1.5], [1.5, 1.5, 0.0, -1.5, 1.5, 0.0, 1.5], [4]),
        (6, [-1.5] * 4 + [0.0], [-1.5] * 3 + [0.0, 0.0, -1.5], [3]),
        (7, [0.5, -0.5, 0.9] * 5, [0.5, -0.5, 0.9] * 4 + [0.5, 1.5, 0.5], [14]),
        (7, [0.0] * 15, [0.0] * 14 + [-1.0], [14]),  # exactly 1σ is not within
        (8, [1.5, -1.5, 1.5, -2.0, 1.2, -1.2, 3.5, -1.1], [1.5, -1.5, 1.5, -2.0, 0.5, -1.2, 3.5, -1.1], [7]),
        (8, [-1.1] * 8, [-1.1] * 7 + [1.0], [7]),  # exactly 1σ is not beyond
    ],
)
def test_nelson_rule_fires_on_its_pattern_and_not_on_a_near_miss(
    rule: int, fires: list[float], quiet: list[float], where: list[int]
) -> None:
    assert hits(fires, rule) == where
    assert hits(quiet, rule) == []


@pytest.mark.parametrize(
    ("rule", "fires", "quiet", "where"),
    [
        (1, [0.0, 3.2], [0.0, 2.8], [1]),
        (2, [2.1, 0.0, 2.1], [2.1, 0.0, 0.0, 2.1], [2]),
        (3, [1.2, 1.2, 1.2, -0.5, 1.2], [1.2, 1.2, -0.5, 1.2, -0.5], [4]),
        (4, [0.1] * 8, [0.1] * 7 + [-0.1], [7]),
    ],
)
def test_western_electric_rule_fires_on_its_pattern_and_not_on_a_near_miss(
    rule: int, fires: list[float], quiet: list[float], where: list[int]
) -> None:
    assert hits(fires, rule, "western_electric") == where
    assert hits(quiet, rule, "western_electric") == []


def test_rule_sets_number_and_name_their_rules() -> None:
    points = np.array([0.1] * 9 + [3.5])
    western = run_rules(points, 0.0, 1.0, RuleSet.WESTERN_ELECTRIC)
    nelson = run_rules(points, 0.0, 1.0, "nelson")
    assert [(v.rule, v.name, v.index) for v in western] == [
        (4, "8_on_one_side", 7),
        (4, "8_on_one_side", 8),
        (1, "beyond_3_sigma", 9),
        (4, "8_on_one_side", 9),
    ]
    assert [(v.rule, v.name, v.index) for v in nelson] == [
        (2, "9_on_one_side", 8),
        (1, "beyond_3_sigma", 9),
        (2, "9_on_one_side", 9),
    ]
    assert nelson[0].description == "9 points in a row on the same side of the center line"


def test_rules_scale_with_center_and_sigma() -> None:
    points = 100.0 + 0.2 * np.array([0.0, 2.5, 0.0, 2.5])  # 2 of 3 beyond 2σ with σ = 0.2
    assert [v.rule for v in run_rules(points, 100.0, 0.2, "western_electric")] == [2]
    assert run_rules(points, 100.0, 1.0, "western_electric") == ()


def test_nan_breaks_runs_and_matches_no_rule() -> None:
    points = [0.5] * 4 + [math.nan] + [0.5] * 5
    assert hits(points, 2) == []
    assert hits([math.nan, 5.0, math.nan], 1) == [1]


def test_dispersion_chart_is_checked_against_its_limits_only() -> None:
    # ranges trending upward would break Nelson rule 3 on a location chart
    rows = np.array([[0.0, r] for r in (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6)])
    chart = control_chart(rows.ravel(), "xbar_r", subgroup_size=2, rules="nelson")
    assert chart.dispersion.violations == ()


def _reference(z: np.ndarray, rule: int) -> list[int]:
    """Nelson rules written point by point from their definitions, to check the vectorised ones."""
    out = []
    for i in range(len(z)):

        def last(k: int, i: int = i) -> np.ndarray | None:
            return z[i - k + 1 : i + 1] if i + 1 >= k else None

        w = {1: last(1), 2: last(9), 3: last(6), 4: last(14), 5: z[max(0, i - 2) : i + 1]}
        w |= {6: z[max(0, i - 4) : i + 1], 7: last(15), 8: last(8)}
        window = w[rule]
        if window is None:
            continue
        steps = np.diff(window)
        fired = {
            1: abs(z[i]) > 3,
            2: bool(np.all(window > 0) or np.all(window < 0)),
            3: bool(np.all(steps > 0) or np.all(steps < 0)),
            4: bool(np.all(steps != 0) and np.all(np.sign(steps[1:]) != np.sign(steps[:-1]))),
            5: (z[i] > 2 and np.sum(window > 2) >= 2) or (z[i] < -2 and np.sum(window < -2) >= 2),
            6: (z[i] > 1 and np.sum(window > 1) >= 4) or (z[i] < -1 and np.sum(window < -1) >= 4),
            7: bool(np.all(np.abs(window) < 1)),
            8: bool(np.all(np.abs(window) > 1)),
        }[rule]
        if fired:
            out.append(i)
    return out


@pytest.mark.parametrize("rule", range(1, 9))
@settings(max_examples=100, deadline=None)
@given(z=st.lists(st.sampled_from([-3.5, -2.5, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.5, 3.5]), max_size=60))
def test_vectorised_rules_agree_with_a_point_by_point_reference(rule: int, z: list[float]) -> None:
    assert hits(z, rule) == _reference(np.array(z), rule)


# --- capability ------------------------------------------------------------------------------------------


def test_capability_of_subgroups_by_hand() -> None:
    values = np.array([10.0, 12.0, 11.0, 11.0, 9.0, 12.0, 10.0, 13.0])
    result = capability(values, lsl=7.0, usl=17.0, kind="xbar_r", subgroup_size=2)
    # ranges 2, 0, 3, 3 → R̄ = 2, σ_within = R̄/d2 = 2/(2/√π) = √π; mean 11
    # deviations -1 1 0 0 -2 1 -1 2 → Σ = 12, σ_overall = √(12/7)
    within, overall = math.sqrt(math.pi), math.sqrt(12 / 7)
    assert result.mean == 11.0
    assert result.sigma_within == pytest.approx(within, rel=1e-6)
    assert result.sigma_overall == pytest.approx(overall)
    assert result.cp == pytest.approx(10 / (6 * within), rel=1e-6)  # 0.9403
    assert result.cpk == pytest.approx(4 / (3 * within), rel=1e-6)  # nearer limit: 11 - 7 = 4
    assert result.pp == pytest.approx(10 / (6 * overall))  # 1.2729
    assert result.ppk == pytest.approx(4 / (3 * overall))
    assert result.count == 8


def test_capability_of_individuals_by_hand() -> None:
    result = capability(np.array([5.0, 7.0, 6.0, 9.0, 8.0, np.nan]), lsl=2.0, usl=14.0)
    within, overall = 1.75 / 1.128379, math.sqrt(10 / 4)  # MR̄/d2; Σ(x - 7)² = 10
    assert result.cp == pytest.approx(12 / (6 * within), rel=1e-6)
    assert result.cpk == pytest.approx(5 / (3 * within), rel=1e-6)
    assert result.pp == pytest.approx(12 / (6 * overall))
    assert result.ppk == pytest.approx(5 / (3 * overall))
    assert result.skipped_nan == 1
    json.dumps(result.document(), allow_nan=False)


def test_capability_of_xbar_s_uses_s_bar_over_c4() -> None:
    values = np.random.default_rng(21).normal(0.0, 1.0, 60)
    s_bar = values.reshape(12, 5).std(axis=1, ddof=1).mean()
    result = capability(values, lsl=-4.0, usl=4.0, kind="xbar_s", subgroup_size=5)
    assert result.sigma_within == pytest.approx(s_bar / 0.9400, rel=1e-4)


@pytest.mark.parametrize(("lsl", "usl", "distance"), [(None, 17.0, 6.0), (9.5, None, 1.5)])
def test_one_sided_spec_gives_only_cpk_and_ppk(lsl: float | None, usl: float | None, distance: float) -> None:
    values = np.array([10.0, 12.0, 11.0, 11.0, 9.0, 12.0, 10.0, 13.0])
    result = capability(values, lsl=lsl, usl=usl, kind="xbar_r", subgroup_size=2)
    assert (result.cp, result.pp) == (None, None)
    assert result.cpk == pytest.approx(distance / (3 * math.sqrt(math.pi)), rel=1e-6)
    assert result.ppk == pytest.approx(distance / (3 * math.sqrt(12 / 7)))


# --- bad input -------------------------------------------------------------------------------------------

DATA = np.random.default_rng(3).normal(0.0, 1.0, 100)


@pytest.mark.parametrize(
    ("kind", "n", "message"),
    [
        ("xbar_r", 1, "X̄-R chart needs a subgroup size of 2 to 25, not 1"),
        ("xbar_r", 26, "X̄-R chart needs a subgroup size of 2 to 25, not 26"),
        ("xbar_s", 1, "X̄-S chart needs a subgroup size of at least 2, not 1"),
        ("i_mr", 5, "subgroup size must be 1, not 5"),
        ("xbar_r", 2.5, re.escape("subgroup size must be a whole number, not 2.5")),
        ("p_chart", 5, "chart kind must be one of xbar_r, xbar_s, i_mr, not 'p_chart'"),
    ],
)
def test_subgroup_size_out_of_range(kind: str, n: int, message: str) -> None:
    with pytest.raises(InputError, match=message):
        control_chart(DATA, kind, subgroup_size=n)


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        (1, re.escape("at least 2 subgroups to set limits (20 or more are advised), not 1")),
        (21, "than the 20"),
    ],
)
def test_baseline_too_short_or_too_long(baseline: int, message: str) -> None:
    with pytest.raises(InputError, match=message):
        control_chart(DATA, "xbar_r", subgroup_size=5, baseline=baseline)


def test_one_complete_subgroup_is_too_few_for_limits() -> None:
    with pytest.raises(InputError, match="at least 2 subgroups"):
        control_chart(DATA[:7], "xbar_r", subgroup_size=5)


@pytest.mark.parametrize("values", [np.array([]), np.array([np.nan, np.nan])])
def test_empty_or_all_nan(values: np.ndarray) -> None:
    with pytest.raises(InputError, match="no measurements: the series is empty or all NaN"):
        control_chart(values, "i_mr")
    with pytest.raises(InputError, match="empty or all NaN"):
        capability(values, usl=1.0)


def test_fewer_measurements_than_a_subgroup() -> None:
    with pytest.raises(InputError, match="3 measurements do not fill one subgroup of 5"):
        control_chart(np.array([1.0, 2.0, 3.0]), "xbar_r", subgroup_size=5)


def test_zero_variation_says_so() -> None:
    flat = np.full(40, 2.5)
    with pytest.raises(InputError, match=re.escape("no variation (range 0 throughout)")):
        control_chart(flat, "xbar_r", subgroup_size=4)
    with pytest.raises(InputError, match=re.escape("no variation (moving_range 0 throughout)")):
        control_chart(flat, "i_mr")
    with pytest.raises(InputError, match=re.escape("no variation (sigma 0)")):
        capability(flat, lsl=1.0, usl=4.0)


def test_zero_variation_within_subgroups_but_not_overall() -> None:
    with pytest.raises(InputError, match="no variation"):
        capability(np.array([1.0, 1.0, 2.0, 2.0]), lsl=0.0, usl=3.0, kind="xbar_r", subgroup_size=2)


def test_spec_limits_checked() -> None:
    with pytest.raises(InputError, match=re.escape("limit 5.0 must be below the upper one 5.0")):
        capability(DATA, lsl=5.0, usl=5.0)
    with pytest.raises(InputError, match=re.escape("limit 6.0 must be below the upper one 5.0")):
        capability(DATA, lsl=6.0, usl=5.0)
    with pytest.raises(InputError, match="needs a lower or an upper specification limit"):
        capability(DATA)
    with pytest.raises(InputError, match="usl must be a finite number"):
        capability(DATA, usl=math.inf)


def test_other_bad_input() -> None:
    with pytest.raises(InputError, match="rule set must be one of western_electric, nelson, not 'shewhart'"):
        control_chart(DATA, "i_mr", rules="shewhart")
    with pytest.raises(InputError, match=re.escape("numbered 1 to 4, not [5]")):
        run_rules(DATA, 0.0, 1.0, "western_electric", only=(5,))
    with pytest.raises(InputError, match="positive sigma"):
        run_rules(DATA, 0.0, 0.0)
    with pytest.raises(InputError, match="1 timestamps do not match 100 measurements"):
        control_chart(DATA, "i_mr", timestamps=np.array([1.0]))
    with pytest.raises(InputError, match="measurement 2 is infinite"):
        control_chart(np.array([1.0, 2.0, -np.inf]), "i_mr")
    with pytest.raises(InputError, match="1-D array"):
        control_chart(DATA.reshape(10, 10), "i_mr")
    with pytest.raises(InputError, match=re.escape("baseline must be a whole number, not 2.5")):
        control_chart(DATA, "i_mr", baseline=2.5)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="capability needs at least 2 measurements"):
        capability(np.array([1.0, np.nan]), usl=2.0)


def test_input_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="subgroup size"):
        control_chart(DATA, "xbar_r", subgroup_size=30)
