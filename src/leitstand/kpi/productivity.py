"""Productivity per plant against a baseline period and a target (by default +30 % over the baseline).

Without labour data, productivity is **good units per machine hour**: good quantity (GQ) over the
hours of planned busy time (PBT) that state records cover, summed per plant and for the enterprise
before dividing. The change is the
current figure over the baseline's, less one; progress is that change over the target change, so
+15 % against a +30 % target is 50 % of the way. Both periods must have state records for at least
MIN_COVERAGE of their planned busy time, or there is no change to show (`null`), only the figures.
Both periods come from the same OEE computation, so every figure carries the times and quantities it
comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leitstand.kpi.oee import KpiAnswer, OeeService

DEFAULT_TARGET = 0.30
LEVELS = ("site", "enterprise")
# A period whose planned busy time is covered by state records less than this is no yardstick: a week
# of planned time with a day of data would compare a day's units with a week's hours.
MIN_COVERAGE = 0.5


@dataclass(frozen=True, slots=True)
class ProductivityAnswer:
    current: KpiAnswer
    baseline: KpiAnswer
    target: float
    rows: list[dict[str, Any]]


def units_per_machine_hour(inputs: dict[str, Any]) -> float | None:
    """Good units per hour of planned busy time that state records cover: hours without any record
    are no hours of work seen, so they neither dilute nor inflate the figure."""
    covered_s = inputs["pbt_s"] - _without_state_s(inputs)
    return inputs["good"] / (covered_s / 3600) if covered_s > 0 else None


def _without_state_s(inputs: dict[str, Any]) -> float:
    return max(0.0, float(inputs["unknown_s"] - inputs["unmapped_state_s"]))


def coverage(inputs: dict[str, Any]) -> float | None:
    """The share of planned busy time that state records cover (time without any state is not)."""
    pbt = inputs["pbt_s"]
    return max(0.0, min(1.0, (pbt - _without_state_s(inputs)) / pbt)) if pbt > 0 else None


def productivity(
    oee: OeeService,
    tenant: str,
    start: datetime,
    end: datetime,
    baseline_start: datetime,
    baseline_end: datetime,
    within: str | None = None,
    target: float = DEFAULT_TARGET,
) -> ProductivityAnswer:
    """Per plant (and for the enterprise, when in scope) the productivity of [start, end) against
    [baseline_start, baseline_end) and the progress toward `target`."""
    current = oee.compute(tenant, start, end, within=within)
    baseline = oee.compute(tenant, baseline_start, baseline_end, within=within)

    def shown(row: dict[str, Any]) -> bool:  # plants and the enterprise, or the scope itself
        return row["level"] in LEVELS or row["id"] == within

    before = {r["id"]: r for r in baseline.rows if shown(r)}
    rows = []
    for row in (r for r in current.rows if shown(r)):
        now_in = row["inputs"]
        empty = {"good": 0, "pbt_s": 0.0, "unknown_s": 0.0, "unmapped_state_s": 0.0}
        then_in = before.get(row["id"], {}).get("inputs", empty)
        now = units_per_machine_hour(now_in)
        then = units_per_machine_hour(then_in)
        covered = (coverage(now_in), coverage(then_in))
        comparable = all(c is not None and c >= MIN_COVERAGE for c in covered)
        change = now / then - 1 if comparable and now is not None and then else None
        rows.append(
            {
                "level": row["level"],
                "id": row["id"],
                "name": row["name"],
                "units_per_machine_hour": now,
                "baseline_units_per_machine_hour": then,
                "change": change,
                "progress": change / target if change is not None and target else None,
                "inputs": {
                    "good": now_in["good"],
                    "machine_hours": now_in["pbt_s"] / 3600,
                    "coverage": covered[0],
                    "baseline_good": then_in["good"],
                    "baseline_machine_hours": then_in["pbt_s"] / 3600,
                    "baseline_coverage": covered[1],
                },
            }
        )
    return ProductivityAnswer(current, baseline, target, rows)
