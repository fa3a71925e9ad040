"""The simulated history of every machine, generated forward in blocks of one UTC day and kept as arrays.

Block boundaries depend only on the first instant ever asked for (the anchor), never on later windows,
and every machine has a segment starting at each block's start; so a block alone answers "what was
machine m doing at t" for any t inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leitstand.sim.behaviour import STATES, LineSchedule, MachineBehaviour, ReasonBook, maintenance_shift
from leitstand.sim.fleet import Fleet
from leitstand.sim.planned import DAY_S, Gap, gap_at, planned_pieces

_KEY_SHIFT = 34  # machine index above epoch seconds in one int64 key; 2**34 s reaches past the year 2500


@dataclass(frozen=True, slots=True)
class Block:
    """All segments of all machines in [start, end), sorted by machine then start."""

    start: int
    end: int
    machine: np.ndarray
    seg_start: np.ndarray
    seg_end: np.ndarray
    state: np.ndarray
    reason: np.ndarray
    product: np.ndarray
    rate: np.ndarray
    p0: np.ndarray
    temp0: np.ndarray
    change: np.ndarray
    gap_site: np.ndarray  # planned time ends (a break or time off begins) at gap_t, at site gap_site
    gap_t: np.ndarray
    key: np.ndarray  # machine and segment start in one sortable int64

    def locate(self, machine: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Index of the segment machine[i] is in at t[i] (each t inside this block)."""
        index: np.ndarray = np.searchsorted(self.key, (machine << _KEY_SHIFT) | t, side="right") - 1
        return index


@dataclass(frozen=True, slots=True)
class SegmentsAt:
    """The segment fields found for a batch of (machine, t) lookups."""

    seg_start: np.ndarray
    state: np.ndarray
    product: np.ndarray
    rate: np.ndarray
    p0: np.ndarray
    temp0: np.ndarray

    def progress(self, t: np.ndarray) -> np.ndarray:
        """Cumulative units started at t (only running segments have a rate)."""
        units: np.ndarray = self.p0 + self.rate * (t - self.seg_start)
        return units


class Timeline:
    """Generates and keeps the segments of every machine of the fleet, from the anchor onwards."""

    def __init__(self, fleet: Fleet, seed: int) -> None:
        self.fleet = fleet
        self.reasons = ReasonBook()
        self.state_names = STATES
        self._machines = [
            MachineBehaviour(m, fleet.ideal_cycle_s[:, m.index].tolist(), seed, self.reasons)
            for m in fleet.machines
        ]
        self._schedules = [
            LineSchedule(
                line, seed, maintenance_shift([s.name for s in fleet.sites[line.site].calendar.shifts])
            )
            for line in fleet.lines
        ]
        self._site_lines = [[line for line in fleet.lines if line.site == s.index] for s in fleet.sites]
        self.anchor: int | None = None
        self.blocks: list[Block] = []
        self._block_starts = np.empty(0, dtype=np.int64)

    @property
    def scrap_rates(self) -> np.ndarray:
        return np.array([m.scrap_rate for m in self._machines])

    def start_at(self, t: int) -> None:
        """Fix the anchor: simulated history begins at `t` (epoch seconds)."""
        if self.anchor is not None:
            raise RuntimeError("the timeline has already started")
        self.anchor = t

    def extend_to(self, t: int) -> None:
        """Generate blocks until one contains `t` (at or after the anchor)."""
        while not self.blocks or self.blocks[-1].end <= t:
            self._generate_block()

    def at(self, machine: np.ndarray, t: np.ndarray) -> SegmentsAt:
        """The segment each machine[i] is in at t[i]; times before the anchor read as the anchor."""
        assert self.anchor is not None
        t = np.maximum(t, self.anchor)
        block_of = np.searchsorted(self._block_starts, t, side="right") - 1
        n = len(t)
        out = SegmentsAt(
            seg_start=np.empty(n, dtype=np.int64),
            state=np.empty(n, dtype=np.int8),
            product=np.empty(n, dtype=np.int16),
            rate=np.empty(n),
            p0=np.empty(n),
            temp0=np.empty(n),
        )
        for b in np.unique(block_of):
            block = self.blocks[b]
            mask = block_of == b
            index = block.locate(machine[mask], t[mask])
            out.seg_start[mask] = block.seg_start[index]
            out.state[mask] = block.state[index]
            out.product[mask] = block.product[index]
            out.rate[mask] = block.rate[index]
            out.p0[mask] = block.p0[index]
            out.temp0[mask] = block.temp0[index]
        return out

    def blocks_overlapping(self, lo: int, hi: int) -> list[Block]:
        return [b for b in self.blocks if b.start < hi and b.end > lo]

    def _generate_block(self) -> None:
        assert self.anchor is not None
        first = not self.blocks
        b0 = self.anchor if first else self.blocks[-1].end
        b1 = (b0 // DAY_S + 1) * DAY_S
        gaps: list[tuple[int, int]] = []
        for site in self.fleet.sites:
            # A piece ending exactly at b0 is included so the machines leave it in this block.
            pieces = [p for p in planned_pieces(site.calendar, b0 - 1, b1) if p.end > b0 or not first]
            start_gap = gap_at(site.calendar, b0) if first else None
            gaps.extend((site.index, p.end) for p in pieces if b0 <= p.end < b1 and p.after is not Gap.JOIN)
            for line in self._site_lines[site.index]:
                schedule = self._schedules[line.index]
                schedule.forget_before(b0 - 2 * DAY_S)
                events = [schedule.events(p) for p in pieces]
                for m in line.machines:
                    behaviour = self._machines[m]
                    if first:
                        behaviour.begin(b0, schedule.first_product, start_gap)
                    else:
                        behaviour.open_block(b0)
                    for piece, piece_events in zip(pieces, events, strict=True):
                        lo, hi = max(piece.start, b0), min(piece.end, b1)
                        if hi > lo:
                            behaviour.run(lo, hi, piece_events)
                        if b0 <= piece.end < b1 and piece.after is not Gap.JOIN:
                            behaviour.leave(piece.end, piece.after)
        self.blocks.append(self._assemble(b0, b1, gaps))
        self._block_starts = np.array([b.start for b in self.blocks], dtype=np.int64)

    def _assemble(self, b0: int, b1: int, gaps: list[tuple[int, int]]) -> Block:
        starts: list[int] = []
        states: list[int] = []
        reasons: list[int] = []
        products: list[int] = []
        rates: list[float] = []
        p0: list[float] = []
        temp0: list[float] = []
        change: list[bool] = []
        counts = []
        for behaviour in self._machines:
            starts.extend(behaviour.starts)
            states.extend(behaviour.states)
            reasons.extend(behaviour.reasons)
            products.extend(behaviour.products)
            rates.extend(behaviour.rates)
            p0.extend(behaviour.p0)
            temp0.extend(behaviour.temp0)
            change.extend(behaviour.change)
            counts.append(len(behaviour.starts))
        machine = np.repeat(np.arange(len(self._machines), dtype=np.int64), counts)
        seg_start = np.array(starts, dtype=np.int64)
        seg_end = np.empty_like(seg_start)
        seg_end[:-1] = seg_start[1:]
        last_of_machine = np.cumsum(counts) - 1
        seg_end[last_of_machine] = b1
        gap_array = np.array(gaps, dtype=np.int64).reshape(-1, 2)
        return Block(
            start=b0,
            end=b1,
            machine=machine,
            seg_start=seg_start,
            seg_end=seg_end,
            state=np.array(states, dtype=np.int8),
            reason=np.array(reasons, dtype=np.int16),
            product=np.array(products, dtype=np.int16),
            rate=np.array(rates),
            p0=np.array(p0),
            temp0=np.array(temp0),
            change=np.array(change, dtype=bool),
            gap_site=gap_array[:, 0],
            gap_t=gap_array[:, 1],
            key=(machine << _KEY_SHIFT) | seg_start,
        )
