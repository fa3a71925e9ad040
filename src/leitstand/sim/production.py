"""Counts: units finished per machine and count interval, read off the timeline's cumulative progress.

A machine has finished floor(P(t)) units by t, where P grows only while RUNNING. A count record covers
(previous boundary, ts]; boundaries are the count grid plus every end of planned time, so a record never
straddles the end of a shift and `planned.start < ts <= planned.end` holds for every record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from leitstand.sim.noise import stable_key, uniform
from leitstand.sim.timeline import Timeline

_SCRAP_STREAM = 11

# The scrap share of each count record, given its machine index and ts (a fault can raise it for a while).
ScrapRates = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True)
class CountArrays:
    """Count records as parallel arrays: machine index, ts (epoch s), product index (-1 none), units.

    Rows are sorted by machine, then ts."""

    machine: np.ndarray
    ts: np.ndarray
    product: np.ndarray
    produced: np.ndarray
    scrap: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def select(self, mask: np.ndarray) -> CountArrays:
        return CountArrays(*(getattr(self, c)[mask] for c in _COLUMNS))

    @staticmethod
    def concat(parts: list[CountArrays]) -> CountArrays:
        if not parts:
            return CountArrays(*(np.empty(0, dtype=np.int64) for _ in _COLUMNS))
        return CountArrays(*(np.concatenate([getattr(p, c) for p in parts]) for c in _COLUMNS))


_COLUMNS = ("machine", "ts", "product", "produced", "scrap")


class CountFeed:
    """Turns the timeline into count records; the same interval always gives the same records."""

    def __init__(
        self, timeline: Timeline, seed: int, interval_s: int, scrap_rates: ScrapRates | None = None
    ) -> None:
        self._timeline = timeline
        self._interval = interval_s
        self._unit_keys = np.array(
            [stable_key(seed, "unit", m.id) for m in timeline.fleet.machines], dtype=np.int64
        )
        self._scrap_rates = timeline.scrap_rates
        self._scrap_rates_at = scrap_rates

    def records(self, lo: int, hi: int) -> CountArrays:
        """The count records with lo < ts <= hi (epoch seconds); the timeline must reach hi."""
        return CountArrays.concat(
            [
                self._site_records(site.machines_lo, site.machines_hi, site.index, lo, hi)
                for site in self._timeline.fleet.sites
                if site.machines_hi > site.machines_lo and hi > lo
            ]
        )

    def _boundaries(self, site: int, lo: int, hi: int) -> np.ndarray:
        ci = self._interval
        first = (lo - ci) // ci + 1
        grid = np.arange(first * ci, hi + 1, ci, dtype=np.int64)
        ends = [
            b.gap_t[(b.gap_site == site) & (b.gap_t > lo - ci) & (b.gap_t <= hi)]
            for b in self._timeline.blocks_overlapping(lo - ci, hi + 1)
        ]
        return np.union1d(grid, np.concatenate([grid[:0], *ends]))

    def _site_records(self, m_lo: int, m_hi: int, site: int, lo: int, hi: int) -> CountArrays:
        bounds = self._boundaries(site, lo, hi)
        anchor = self._timeline.anchor
        assert anchor is not None
        machines = np.arange(m_lo, m_hi, dtype=np.int64)
        t = np.maximum(bounds, anchor)
        machine_grid = np.repeat(machines, len(t))
        t_grid = np.tile(t, len(machines))
        # The segment holding the last second before each boundary: its progress at the boundary, and the
        # product being made (a changeover segment still carries the product it changes away from).
        seg = self._timeline.at(machine_grid, t_grid - 1)
        finished = np.floor(seg.progress(t_grid)).astype(np.int64).reshape(len(machines), len(t))
        produced = np.diff(finished, axis=1)
        upper = bounds[1:] > lo
        produced = produced[:, upper]
        products = seg.product.reshape(len(machines), len(t))[:, 1:][:, upper]
        first_unit = finished[:, :-1][:, upper] + 1
        ts = bounds[1:][upper]
        keep = produced > 0
        rows, cols = np.nonzero(keep)
        produced_kept = produced[keep]
        machine_of_row = machines[rows]
        ts_of_row = ts[cols]
        if self._scrap_rates_at is None:
            rate = self._scrap_rates[machine_of_row]
        else:
            rate = self._scrap_rates_at(machine_of_row, ts_of_row)
        return CountArrays(
            machine=machine_of_row,
            ts=ts_of_row,
            product=products[keep].astype(np.int64),
            produced=produced_kept,
            scrap=self._scrap(machine_of_row, first_unit[keep], produced_kept, rate),
        )

    def _scrap(
        self, machine: np.ndarray, first_unit: np.ndarray, produced: np.ndarray, rate: np.ndarray
    ) -> np.ndarray:
        """Scrap per record: each unit, by its number, is scrap with its record's scrap rate."""
        total = int(produced.sum())
        if total == 0:
            return np.zeros(len(produced), dtype=np.int64)
        offsets = np.cumsum(produced) - produced
        unit = np.repeat(first_unit - offsets, produced) + np.arange(total)
        owner = np.repeat(machine, produced)
        is_scrap = uniform(self._unit_keys[owner], unit, _SCRAP_STREAM) < np.repeat(rate, produced)
        return np.add.reduceat(is_scrap.astype(np.int64), offsets)
