"""What the simulator really did, for checking KPI engines against: exact state intervals and unit counts,
and the faults it injected, for checking fault detection against.

Times follow ISO 22400: state intervals are clipped to the site calendar's planned time, and each planned
second falls into exactly one category, so the categories add up to the planned operation time. Planned
time the simulator has not generated (yet) is reported as `unknown_s`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from leitstand.domain.time_model import DEFAULT_STATE_CATEGORIES, TimeCategory
from leitstand.sim.faults import Fault, FaultPlan
from leitstand.sim.fleet import Fleet
from leitstand.sim.planned import epoch_us, to_datetime
from leitstand.sim.production import CountArrays, CountFeed
from leitstand.sim.timeline import Timeline

# The time categories a planned second can fall into, and the names of their totals.
_CATEGORIES = (
    (TimeCategory.PRODUCTION, "production_s"),
    (TimeCategory.SETUP, "setup_s"),
    (TimeCategory.DELAY, "delay_s"),
    (TimeCategory.DOWN, "down_s"),
    (TimeCategory.PLANNED_DOWN, "planned_down_s"),
)
_US = 1_000_000


@dataclass(frozen=True, slots=True)
class StateInterval:
    """A machine was in `state` (for `reason`) during [start, end)."""

    start: datetime
    end: datetime
    state: str
    reason: str | None


class GroundTruth:
    """The simulator's own record of everything it generated, and OEE times computed from it."""

    def __init__(
        self, fleet: Fleet, timeline: Timeline, counts: CountFeed, faults: FaultPlan | None = None
    ) -> None:
        self._fleet = fleet
        self._timeline = timeline
        self._counts = counts
        self._faults = faults
        self._covered: list[tuple[int, int]] = []  # generated windows, epoch µs, merged and sorted
        self._machine_index = {m.id: m.index for m in fleet.machines}
        states = timeline.state_names
        order = [category for category, _ in _CATEGORIES]
        self._category = np.array([order.index(DEFAULT_STATE_CATEGORIES[s]) for s in states])

    def cover(self, start_us: int, end_us: int) -> None:
        """Note that [start_us, end_us) has been generated."""
        self._covered = _merged([*self._covered, (start_us, end_us)])

    def oee_times(self, start: datetime, end: datetime) -> dict[str, dict[str, float]]:
        """Per machine id: pot_s, planned_down_s, production_s, setup_s, delay_s, down_s, unknown_s, produced,
        scrap, ideal_s and good_ideal_s over the planned time within [start, end)."""
        n = len(self._fleet.machines)
        times = np.zeros((n, len(_CATEGORIES)))
        pot = np.zeros(n)
        produced, scrap = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        ideal, good_ideal = np.zeros(n), np.zeros(n)
        counts = self._counts_in(start, end)
        for site in self._fleet.sites:
            members = slice(site.machines_lo, site.machines_hi)
            planned = _merged(
                [(epoch_us(p.start), epoch_us(p.end)) for p in site.calendar.planned_intervals(start, end)]
            )
            pot[members] = sum(hi - lo for lo, hi in planned) / _US
            for lo, hi in self._known(planned):
                self._add_times(times, site.machines_lo, site.machines_hi, lo / _US, hi / _US)
            c = counts.select((counts.machine >= site.machines_lo) & (counts.machine < site.machines_hi))
            c = c.select(_in_planned(c.ts * _US, planned))
            cycle = self._fleet.ideal_cycle_s[c.product, c.machine]
            produced += np.bincount(c.machine, weights=c.produced, minlength=n).astype(np.int64)
            scrap += np.bincount(c.machine, weights=c.scrap, minlength=n).astype(np.int64)
            ideal += np.bincount(c.machine, weights=c.produced * cycle, minlength=n)
            good_ideal += np.bincount(c.machine, weights=(c.produced - c.scrap) * cycle, minlength=n)
        out = {}
        for m, machine in enumerate(self._fleet.machines):
            row = times[m]
            out[machine.id] = {
                "pot_s": float(pot[m]),
                **{
                    name: float(seconds) for (_, name), seconds in zip(_CATEGORIES, row.tolist(), strict=True)
                },
                "unknown_s": float(pot[m] - row.sum()),
                "produced": int(produced[m]),
                "scrap": int(scrap[m]),
                "ideal_s": float(ideal[m]),
                "good_ideal_s": float(good_ideal[m]),
            }
        return out

    def production(self, start: datetime, end: datetime) -> dict[str, dict[str | None, tuple[int, int]]]:
        """Per machine id and product id: (produced, scrap) of the count records with start < ts <= end."""
        counts = self._counts_in(start, end)
        width = len(self._fleet.product_ids) + 1
        unique, inverse = np.unique(counts.machine * width + counts.product + 1, return_inverse=True)
        made = np.bincount(inverse, weights=counts.produced, minlength=len(unique))
        lost = np.bincount(inverse, weights=counts.scrap, minlength=len(unique))
        out: dict[str, dict[str | None, tuple[int, int]]] = {}
        for key, units, bad in zip(unique.tolist(), made.tolist(), lost.tolist(), strict=True):
            m, p = divmod(key, width)
            product = self._fleet.product_ids[p - 1] if p > 0 else None
            out.setdefault(self._fleet.machines[m].id, {})[product] = (int(units), int(bad))
        return out

    def intervals(self, machine_id: str, start: datetime, end: datetime) -> list[StateInterval]:
        """The state intervals of one machine within [start, end) and the generated time, clipped to both."""
        index = self._machine_index[machine_id]
        names, reasons = self._timeline.state_names, self._timeline.reasons.names
        out: list[StateInterval] = []
        for lo_us, hi_us in self._known([(epoch_us(start), epoch_us(end))]):
            lo, hi = -(-lo_us // _US), -(-hi_us // _US)
            parts = []
            for block in self._timeline.blocks_overlapping(lo, hi):
                first, last = np.searchsorted(block.machine, [index, index + 1])
                rows = np.arange(first, last)
                rows = rows[(block.seg_end[rows] > lo) & (block.seg_start[rows] < hi)]
                parts.append(
                    (block.seg_start[rows], block.seg_end[rows], block.state[rows], block.reason[rows])
                )
            seg_lo, seg_hi, state, reason = (np.concatenate([p[i] for p in parts]) for i in range(4))
            if len(seg_lo) == 0:
                continue
            seg_lo, seg_hi = np.maximum(seg_lo, lo), np.minimum(seg_hi, hi)
            # Segments that only continue the same state (across a block start) join their predecessor.
            begins = np.ones(len(seg_lo), dtype=bool)
            begins[1:] = (state[1:] != state[:-1]) | (reason[1:] != reason[:-1])
            first_rows = np.nonzero(begins)[0]
            ends = np.append(seg_lo[first_rows[1:]], seg_hi[-1])
            for i, until in zip(first_rows.tolist(), ends.tolist(), strict=True):
                code = int(reason[i])
                out.append(
                    StateInterval(
                        to_datetime(int(seg_lo[i])),
                        to_datetime(until),
                        names[state[i]],
                        reasons[code] if code >= 0 else None,
                    )
                )
        return out

    def faults(self, start: datetime, end: datetime) -> list[Fault]:
        """The injected faults whose effect overlaps [start, end) within the generated windows, by start
        (empty when the simulator injects none). A fault's start and end are its own, not clipped."""
        if self._faults is None:
            return []
        known = self._known([(epoch_us(start), epoch_us(end))])
        return self._faults.overlapping([(lo // _US, -(-hi // _US)) for lo, hi in known])

    def _known(self, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The parts of `spans` (epoch µs) that were generated."""
        anchor = self._timeline.anchor
        if anchor is None:
            return []
        out = []
        for lo, hi in spans:
            for c_lo, c_hi in self._covered:
                a, b = max(lo, c_lo, anchor * _US), min(hi, c_hi)
                if b > a:
                    out.append((a, b))
        return out

    def _counts_in(self, start: datetime, end: datetime) -> CountArrays:
        """The generated count records with start < ts <= end."""
        lo_s, hi_s = epoch_us(start) // _US, epoch_us(end) // _US
        parts = []
        for c_lo, c_hi in self._covered:
            a, b = max(lo_s, c_lo // _US), min(hi_s, c_hi // _US)
            if b > a:
                parts.append(self._counts.records(a, b))
        return CountArrays.concat(parts)

    def _add_times(self, times: np.ndarray, m_lo: int, m_hi: int, lo: float, hi: float) -> None:
        for block in self._timeline.blocks_overlapping(int(lo), int(np.ceil(hi))):
            first, last = np.searchsorted(block.machine, [m_lo, m_hi])
            seg_lo = block.seg_start[first:last]
            seg_hi = block.seg_end[first:last]
            overlap = np.clip(np.minimum(seg_hi, hi) - np.maximum(seg_lo, lo), 0.0, None)
            category = self._category[block.state[first:last]]
            flat = (block.machine[first:last] - m_lo) * len(_CATEGORIES) + category
            sums = np.bincount(flat, weights=overlap, minlength=(m_hi - m_lo) * len(_CATEGORIES))
            times[m_lo:m_hi] += sums.reshape(m_hi - m_lo, len(_CATEGORIES))


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        elif hi > lo:
            out.append((lo, hi))
    return out


def _in_planned(ts_us: np.ndarray, planned: list[tuple[int, int]]) -> np.ndarray:
    """Whether each ts lies in a planned span as planned.start < ts <= planned.end."""
    if not planned:
        return np.zeros(len(ts_us), dtype=bool)
    starts = np.array([lo for lo, _ in planned], dtype=np.int64)
    ends = np.array([hi for _, hi in planned], dtype=np.int64)
    index = np.searchsorted(starts, ts_us, side="left") - 1
    return (index >= 0) & (ts_us <= ends[np.clip(index, 0, None)])
