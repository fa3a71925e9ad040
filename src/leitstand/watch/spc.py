"""Statistical process control: Shewhart control charts, run rules and process capability.

A chart takes a quality characteristic in time order, estimates center lines and 3σ limits from a baseline
(Phase I: the leading subgroups, chosen by the engineer as a stable period) and plots the whole series
against them (Phase II). Run rules (Western Electric or Nelson) find the non-random patterns that a point
beyond the limits misses. Capability compares the within-subgroup (Cp, Cpk) and overall (Pp, Ppk) spread
with the specification.

Everything here is a pure function of numpy arrays: each statistic is one array operation over all
subgroups, and only the results carry Python objects. See docs/watch/spc.md for the formulas.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import partial
from typing import Any

import numpy as np

from leitstand.domain.errors import InputError

MIN_BASELINE = 2  # the fewest subgroups (points for I-MR) that give limits at all; 20 or more are advised
MAX_RANGE_SUBGROUP = 25

# d2 = E[R]/σ and d3 = sd(R)/σ for the range R of n normal values (Harter 1960; the ASTM E2587 and
# Montgomery tables print the same values to three decimals). Three decimals are not enough: they give
# D4 = 3.269 for n = 2 instead of 3.267.
_D2 = (1.128379, 1.692569, 2.058751, 2.325929, 2.534413, 2.704357, 2.847201, 2.970026, 3.077505, 3.172873,
       3.258455, 3.335980, 3.406763, 3.471827, 3.531983, 3.587884, 3.640064, 3.688963, 3.734950, 3.778336,
       3.819385, 3.858323, 3.895348, 3.930629)  # fmt: skip
_D3 = (0.852502, 0.888368, 0.879808, 0.864082, 0.848040, 0.833205, 0.819831, 0.807834, 0.797051, 0.787315,
       0.778478, 0.770416, 0.763023, 0.756211, 0.749908, 0.744052, 0.738591, 0.733481, 0.728686, 0.724173,
       0.719915, 0.715887, 0.712068, 0.708441)  # fmt: skip
_D2_D3 = {n: (d2, d3) for n, (d2, d3) in enumerate(zip(_D2, _D3, strict=True), start=2)}


class ChartKind(StrEnum):
    """The Shewhart chart pairs: location chart and dispersion chart."""

    XBAR_R = "xbar_r"  # subgroup means and ranges, n = 2..25
    XBAR_S = "xbar_s"  # subgroup means and standard deviations, n >= 2
    I_MR = "i_mr"  # individual values and moving ranges of two, n = 1


class RuleSet(StrEnum):
    """The run rules to apply: the four of the Western Electric handbook (1956) or Nelson's eight (1984)."""

    WESTERN_ELECTRIC = "western_electric"
    NELSON = "nelson"


# --- constants -----------------------------------------------------------------------------------------


def c4(n: int) -> float:
    """E[s]/σ for the sample standard deviation of n normal values (from the gamma function)."""
    if n < 2:
        raise InputError(f"c4 needs a subgroup size of at least 2, not {n}")
    return math.sqrt(2.0 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


def d2_d3(n: int) -> tuple[float, float]:
    """d2 and d3 for the range of n normal values, n = 2..25."""
    if n not in _D2_D3:
        raise InputError(f"the range constants d2 and d3 are tabled for subgroup sizes 2 to 25, not {n}")
    return _D2_D3[n]


@dataclass(frozen=True, slots=True)
class SubgroupConstants:
    """The control chart constants for subgroups of size n; the range-based ones are None beyond n = 25."""

    n: int
    c4: float
    A3: float
    B3: float
    B4: float
    d2: float | None
    d3: float | None
    A2: float | None
    D3: float | None
    D4: float | None
    E2: float | None

    def document(self) -> dict[str, Any]:
        return asdict(self)


def constants(n: int) -> SubgroupConstants:
    """A2, A3, B3, B4, D3, D4, E2, c4, d2 and d3 for subgroups of size n (n >= 2)."""
    k4 = c4(n)
    spread_s = 3 * math.sqrt(1 - k4 * k4) / k4
    d2, d3 = _D2_D3.get(n, (None, None))
    by_range: tuple[float | None, ...] = (None,) * 4  # A2, D3, D4, E2
    if d2 is not None and d3 is not None:
        by_range = (3 / (d2 * math.sqrt(n)), max(0.0, 1 - 3 * d3 / d2), 1 + 3 * d3 / d2, 3 / d2)
    return SubgroupConstants(
        n, k4, 3 / (k4 * math.sqrt(n)), max(0.0, 1 - spread_s), 1 + spread_s, d2, d3, *by_range
    )


# --- run rules -------------------------------------------------------------------------------------------


def _count_in_window(flags: np.ndarray, length: int) -> np.ndarray:
    """How many of the last `length` flags up to each position are set (of fewer at the series start)."""
    total = np.cumsum(flags, dtype=np.intp)
    out = total.copy()
    out[length:] -= total[:-length]
    return out


def _beyond(z: np.ndarray, limit: float) -> np.ndarray:
    return np.asarray(np.abs(z) > limit)


def _k_of_m_beyond(z: np.ndarray, k: int, m: int, limit: float) -> np.ndarray:
    """k of the last m points beyond `limit` on one side, the last of them one of the k (at the start of
    the series, k of fewer than m count: the pattern is there before the window fills)."""
    up, down = z > limit, z < -limit
    return np.asarray((up & (_count_in_window(up, m) >= k)) | (down & (_count_in_window(down, m) >= k)))


def _one_side(z: np.ndarray, length: int) -> np.ndarray:
    return np.asarray(
        (_count_in_window(z > 0, length) == length) | (_count_in_window(z < 0, length) == length)
    )


def _trend(z: np.ndarray, length: int) -> np.ndarray:
    """`length` points each above (or each below) the one before."""
    out = np.zeros(z.size, dtype=bool)
    step = np.diff(z)
    out[1:] = _one_side(step, length - 1)  # length - 1 steps all up or all down
    return out


def _alternating(z: np.ndarray, length: int) -> np.ndarray:
    """`length` points going up and down in turn."""
    out = np.zeros(z.size, dtype=bool)
    step = np.sign(np.diff(z))
    turns = step[1:] * step[:-1] < 0
    out[2:] = _count_in_window(turns, length - 2) == length - 2
    return out


def _run_within(z: np.ndarray, length: int, limit: float) -> np.ndarray:
    return np.asarray(_count_in_window(np.abs(z) < limit, length) == length)


def _run_beyond(z: np.ndarray, length: int, limit: float) -> np.ndarray:
    return np.asarray(_count_in_window(np.abs(z) > limit, length) == length)


@dataclass(frozen=True, slots=True)
class RunRule:
    """One rule: its number in its set, a short name, what it looks for, and the detector over z-scores
    (distance from the center in sigmas) that is True where a window completes the pattern."""

    number: int
    name: str
    description: str
    detect: Callable[[np.ndarray], np.ndarray]


def _k_of_m(number: int, k: int, m: int, limit: int) -> RunRule:
    return RunRule(
        number,
        f"{k}_of_{m}_beyond_{limit}_sigma",
        f"{k} of {m} points in a row beyond {limit}σ on the same side of the center line",
        partial(_k_of_m_beyond, k=k, m=m, limit=limit),
    )


def _run_on_one_side(number: int, length: int) -> RunRule:
    return RunRule(
        number,
        f"{length}_on_one_side",
        f"{length} points in a row on the same side of the center line",
        partial(_one_side, length=length),
    )


_BEYOND_3 = RunRule(1, "beyond_3_sigma", "1 point beyond 3σ from the center line", partial(_beyond, limit=3))

RULES: dict[RuleSet, tuple[RunRule, ...]] = {
    RuleSet.WESTERN_ELECTRIC: (_BEYOND_3, _k_of_m(2, 2, 3, 2), _k_of_m(3, 4, 5, 1), _run_on_one_side(4, 8)),
    RuleSet.NELSON: (
        _BEYOND_3,
        _run_on_one_side(2, 9),
        RunRule(3, "trend", "6 points in a row steadily increasing or decreasing", partial(_trend, length=6)),
        RunRule(4, "alternating", "14 points in a row alternating up and down",
                partial(_alternating, length=14)),
        _k_of_m(5, 2, 3, 2),
        _k_of_m(6, 4, 5, 1),
        RunRule(7, "stratification", "15 points in a row within 1σ of the center line",
                partial(_run_within, length=15, limit=1)),
        RunRule(8, "mixture", "8 points in a row beyond 1σ of the center line, on either side",
                partial(_run_beyond, length=8, limit=1)),
    ),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Violation:
    """A run rule that fired; `index` is the point that completes its pattern (the window's last)."""

    rule: int
    name: str
    description: str
    index: int

    def document(self) -> dict[str, Any]:
        return {"rule": self.rule, "name": self.name, "description": self.description, "index": self.index}


def rule_set(name: RuleSet | str) -> RuleSet:
    """The rule set called `name`, or an InputError naming the choices."""
    try:
        return RuleSet(name)
    except ValueError:
        choices = ", ".join(r.value for r in RuleSet)
        raise InputError(f"rule set must be one of {choices}, not {name!r}") from None


def run_rules(
    points: np.ndarray,
    center: float,
    sigma: float,
    rules: RuleSet | str = RuleSet.WESTERN_ELECTRIC,
    only: Iterable[int] | None = None,
) -> tuple[Violation, ...]:
    """The violations of a rule set (or of the rules numbered in `only`) by points plotted around
    `center`, where `sigma` is the standard deviation of the plotted statistic. NaN points match
    no rule and break every run. Ordered by index, then rule."""
    chosen = RULES[rule_set(rules)]
    if only is not None:
        wanted = set(only)
        unknown = wanted - {r.number for r in chosen}
        if unknown:
            raise InputError(
                f"the {rule_set(rules).value} rules are numbered 1 to {len(chosen)}, not {sorted(unknown)}"
            )
        chosen = tuple(r for r in chosen if r.number in wanted)
    if not (math.isfinite(sigma) and sigma > 0):
        raise InputError(f"run rules need a positive sigma of the plotted statistic, not {sigma}")
    z = (np.asarray(points, dtype=float) - center) / sigma
    found = [(int(i), r) for r in chosen for i in np.flatnonzero(r.detect(z))]
    found.sort(key=lambda hit: (hit[0], hit[1].number))
    return tuple(Violation(r.number, r.name, r.description, i) for i, r in found)


# --- charts ----------------------------------------------------------------------------------------------


def _json_floats(values: np.ndarray) -> list[float | None]:
    out = values.astype(object)
    out[~np.isfinite(values)] = None
    return out.tolist()  # type: ignore[no-any-return]


def _json_times(ts: np.ndarray) -> list[Any]:
    if np.issubdtype(ts.dtype, np.datetime64):
        return np.datetime_as_string(ts, timezone="UTC").tolist()  # type: ignore[no-any-return]
    if np.issubdtype(ts.dtype, np.number):
        return _json_floats(ts.astype(float))
    return [t.isoformat() if hasattr(t, "isoformat") else str(t) for t in ts]


def _frozen(values: np.ndarray) -> np.ndarray:
    values.setflags(write=False)
    return values


@dataclass(frozen=True, slots=True, eq=False)
class Chart:
    """One chart: the plotted statistic per subgroup, its center line and limits, the standard deviation
    of the statistic (the run rules' sigma) and the rule violations."""

    statistic: str  # mean, range, std_dev, individual or moving_range
    points: np.ndarray
    center: float
    ucl: float
    lcl: float
    sigma: float
    violations: tuple[Violation, ...]

    @property
    def signals(self) -> list[int]:
        """The indices of points that violate any rule, ascending."""
        return sorted({v.index for v in self.violations})

    def document(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "points": _json_floats(self.points),
            "center": self.center,
            "ucl": self.ucl,
            "lcl": self.lcl,
            "sigma": self.sigma,
            "violations": [v.document() for v in self.violations],
            "signals": self.signals,
        }


@dataclass(frozen=True, slots=True, eq=False)
class ControlChart:
    """A location and a dispersion chart over the same subgroups, limits from the first `baseline`."""

    kind: ChartKind
    subgroup_size: int
    baseline: int  # leading subgroups (points for I-MR) that set the center lines and limits
    rule_set: RuleSet
    sigma_within: float  # process sigma estimated within subgroups: R̄/d2, s̄/c4 or MR̄/d2(2)
    location: Chart
    dispersion: Chart
    timestamps: np.ndarray | None  # of each subgroup's last measurement
    skipped_nan: int  # NaN measurements left out before grouping
    dropped: int  # measurements of the incomplete trailing subgroup, left out

    @property
    def baseline_in_control(self) -> bool:
        """True if no baseline point signals; otherwise the limits describe an unstable process."""
        return all(i >= self.baseline for c in (self.location, self.dispersion) for i in c.signals)

    def document(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "subgroup_size": self.subgroup_size,
            "baseline": self.baseline,
            "baseline_in_control": self.baseline_in_control,
            "rule_set": self.rule_set.value,
            "sigma_within": self.sigma_within,
            "location": self.location.document(),
            "dispersion": self.dispersion.document(),
            "timestamps": None if self.timestamps is None else _json_times(self.timestamps),
            "skipped_nan": self.skipped_nan,
            "dropped": self.dropped,
        }


def _whole_number(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def chart_kind(kind: ChartKind | str, subgroup_size: int) -> ChartKind:
    """The chart kind, checked against the subgroup size it can plot."""
    try:
        checked = ChartKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in ChartKind)
        raise InputError(f"chart kind must be one of {choices}, not {kind!r}") from None
    n = _whole_number("subgroup size", subgroup_size)
    if checked is ChartKind.I_MR and n != 1:
        raise InputError(
            f"an I-MR chart plots single measurements, so the subgroup size must be 1, not {n}; "
            "use xbar_r or xbar_s for subgroups"
        )
    if checked is ChartKind.XBAR_R and not 2 <= n <= MAX_RANGE_SUBGROUP:
        raise InputError(
            f"an X̄-R chart needs a subgroup size of 2 to {MAX_RANGE_SUBGROUP}, not {n}; "
            "use i_mr for single measurements or xbar_s for larger subgroups"
        )
    if checked is ChartKind.XBAR_S and n < 2:
        raise InputError(
            f"an X̄-S chart needs a subgroup size of at least 2, not {n}; use i_mr for single measurements"
        )
    return checked


@dataclass(frozen=True, slots=True)
class _Subgroups:
    """Complete subgroups (one row each) of the finite measurements, and what was left out."""

    rows: np.ndarray
    timestamps: np.ndarray | None
    skipped_nan: int
    dropped: int


def _subgroups(values: np.ndarray, n: int, timestamps: np.ndarray | None = None) -> _Subgroups:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise InputError(f"measurements must be a 1-D array in time order, not of shape {x.shape}")
    ts = None if timestamps is None else np.asarray(timestamps)
    if ts is not None and ts.shape != x.shape:
        raise InputError(f"{ts.size} timestamps do not match {x.size} measurements")
    if np.isinf(x).any():
        raise InputError(f"measurement {int(np.flatnonzero(np.isinf(x))[0])} is infinite")
    finite = ~np.isnan(x)
    x = x[finite]
    if x.size == 0:
        raise InputError("no measurements: the series is empty or all NaN")
    count = x.size // n
    if count == 0:
        raise InputError(f"{x.size} measurements do not fill one subgroup of {n}")
    return _Subgroups(
        rows=x[: count * n].reshape(count, n),
        timestamps=None if ts is None else ts[finite][n - 1 : count * n : n],
        skipped_nan=int(finite.size - x.size),
        dropped=int(x.size - count * n),
    )


def _dispersion(kind: ChartKind, rows: np.ndarray) -> np.ndarray:
    """The dispersion statistic per subgroup: range, standard deviation, or moving range (NaN first)."""
    if kind is ChartKind.XBAR_R:
        return np.asarray(np.ptp(rows, axis=1))
    if kind is ChartKind.XBAR_S:
        return np.asarray(rows.std(axis=1, ddof=1))
    moving = np.full(rows.shape[0], np.nan)
    moving[1:] = np.abs(np.diff(rows[:, 0]))
    return moving


def _sigma_factors(kind: ChartKind, n: int) -> tuple[float, float]:
    """σ per unit of mean dispersion, and the dispersion statistic's sd per σ: (1/d2, d3) for ranges,
    (1/c4, √(1 - c4²)) for standard deviations."""
    if kind is ChartKind.XBAR_S:
        k4 = c4(n)
        return 1 / k4, math.sqrt(1 - k4 * k4)
    d2, d3 = d2_d3(2 if kind is ChartKind.I_MR else n)
    return 1 / d2, d3


_STATISTICS = {
    ChartKind.XBAR_R: ("mean", "range"),
    ChartKind.XBAR_S: ("mean", "std_dev"),
    ChartKind.I_MR: ("individual", "moving_range"),
}


def _chart(
    statistic: str,
    points: np.ndarray,
    center: float,
    sigma: float,
    rules: RuleSet,
    only: Iterable[int] | None = None,
    floor: float = -math.inf,
) -> Chart:
    """A chart with limits center ± 3 sigma, the lower one not below `floor`."""
    lcl = max(floor, center - 3 * sigma)
    violations = run_rules(points, center, sigma, rules, only)
    return Chart(statistic, _frozen(points), center, center + 3 * sigma, lcl, sigma, violations)


def control_chart(
    values: np.ndarray,
    kind: ChartKind | str,
    subgroup_size: int = 1,
    baseline: int | None = None,
    *,
    timestamps: np.ndarray | None = None,
    rules: RuleSet | str = RuleSet.WESTERN_ELECTRIC,
) -> ControlChart:
    """X̄-R, X̄-S or I-MR charts of measurements in time order, with center lines and 3σ limits from the
    first `baseline` subgroups (points for I-MR; None: all) and the whole series plotted against them.

    NaN measurements are skipped before grouping and the incomplete trailing subgroup is dropped; both
    are counted in the result. The run rules apply to the location chart; the dispersion chart, whose
    statistic is skewed, is checked against its limits only.
    """
    kind = chart_kind(kind, subgroup_size)
    chosen_rules = rule_set(rules)
    groups = _subgroups(values, subgroup_size, timestamps)
    count = groups.rows.shape[0]
    base = count if baseline is None else _whole_number("baseline", baseline)
    if base < MIN_BASELINE:
        raise InputError(
            f"the baseline needs at least {MIN_BASELINE} subgroups to set limits (20 or more "
            f"are advised), not {base}"
        )
    if base > count:
        raise InputError(f"the baseline of {base} subgroups is longer than the {count} complete subgroups")
    location = groups.rows.mean(axis=1)
    spread = _dispersion(kind, groups.rows)
    to_sigma, spread_sigma = _sigma_factors(kind, subgroup_size)
    spread_bar = float(np.nanmean(spread[:base]))  # nan: the first moving range does not exist
    if spread_bar == 0:
        raise InputError(
            f"the {base} baseline subgroups show no variation ({_STATISTICS[kind][1]} 0 "
            "throughout), so there are no limits; check the gauge resolution"
        )
    sigma = spread_bar * to_sigma
    location_name, spread_name = _STATISTICS[kind]
    return ControlChart(
        kind=kind,
        subgroup_size=subgroup_size,
        baseline=base,
        rule_set=chosen_rules,
        sigma_within=sigma,
        location=_chart(
            location_name,
            location,
            float(location[:base].mean()),
            sigma / math.sqrt(subgroup_size),
            chosen_rules,
        ),
        dispersion=_chart(
            spread_name,
            spread,
            spread_bar,
            spread_sigma * sigma,
            chosen_rules,
            only=(1,),
            # a dispersion statistic cannot go below 0, so neither does its lower limit (D3 = 0 for small n)
            floor=0.0,
        ),
        timestamps=None if groups.timestamps is None else _frozen(groups.timestamps),
        skipped_nan=groups.skipped_nan,
        dropped=groups.dropped,
    )


# --- capability ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capability:
    """Process capability against the specification; indices a one-sided spec cannot give are None."""

    lsl: float | None
    usl: float | None
    mean: float
    sigma_within: float  # R̄/d2, s̄/c4 or MR̄/1.128: short-term, for Cp and Cpk
    sigma_overall: float  # sample standard deviation of all measurements: long-term, for Pp and Ppk
    cp: float | None
    cpk: float
    pp: float | None
    ppk: float
    count: int  # measurements used
    skipped_nan: int
    dropped: int

    def document(self) -> dict[str, Any]:
        return asdict(self)


def _indices(mean: float, sigma: float, lsl: float | None, usl: float | None) -> tuple[float | None, float]:
    """The spec width over 6σ (None for a one-sided spec) and the distance to the nearer limit over 3σ:
    Cp and Cpk for the within sigma, Pp and Ppk for the overall one."""
    sides = [(usl - mean) if usl is not None else math.inf, (mean - lsl) if lsl is not None else math.inf]
    potential = (usl - lsl) / (6 * sigma) if lsl is not None and usl is not None else None
    return potential, min(sides) / (3 * sigma)


def capability(
    values: np.ndarray,
    lsl: float | None = None,
    usl: float | None = None,
    kind: ChartKind | str = ChartKind.I_MR,
    subgroup_size: int = 1,
) -> Capability:
    """Cp, Cpk (within-subgroup sigma, as the chart of `kind` estimates it) and Pp, Ppk (overall sample
    standard deviation) of measurements against lower and/or upper spec limits. Pass a stable period:
    capability of a process out of control predicts nothing."""
    if lsl is None and usl is None:
        raise InputError("capability needs a lower or an upper specification limit (lsl, usl), or both")
    for name, limit in (("lsl", lsl), ("usl", usl)):
        if limit is not None and not math.isfinite(limit):
            raise InputError(f"{name} must be a finite number, not {limit}")
    if lsl is not None and usl is not None and lsl >= usl:
        raise InputError(f"the lower specification limit {lsl} must be below the upper one {usl}")
    kind = chart_kind(kind, subgroup_size)
    groups = _subgroups(values, subgroup_size)
    used = groups.rows.ravel()
    if used.size < 2:
        raise InputError("capability needs at least 2 measurements")
    to_sigma, _ = _sigma_factors(kind, subgroup_size)
    within = float(np.nanmean(_dispersion(kind, groups.rows))) * to_sigma
    overall = float(used.std(ddof=1))
    if within == 0 or overall == 0:
        raise InputError(
            "the measurements show no variation (sigma 0), so capability is not defined; "
            "check the gauge resolution"
        )
    mean = float(used.mean())
    cp, cpk = _indices(mean, within, lsl, usl)
    pp, ppk = _indices(mean, overall, lsl, usl)
    return Capability(
        lsl=None if lsl is None else float(lsl),
        usl=None if usl is None else float(usl),
        mean=mean,
        sigma_within=within,
        sigma_overall=overall,
        cp=cp,
        cpk=cpk,
        pp=pp,
        ppk=ppk,
        count=int(used.size),
        skipped_nan=groups.skipped_nan,
        dropped=groups.dropped,
    )
