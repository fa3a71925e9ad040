"""Grouped sequential logic without Python loops over rows: latches, runs and delays as array operations.

Rows are sorted by group (one group per watched series, e.g. a machine's signal), then by time. What a
series carried from the previous batch comes in as one value per row (`carried[group]`), so a batch
continues where the last one ended. Each function is O(n) numpy work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def group_firsts(group: np.ndarray) -> np.ndarray:
    """True at the first row of each group (rows sorted by group)."""
    first = np.ones(len(group), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    return first


def group_lasts(group: np.ndarray) -> np.ndarray:
    """True at the last row of each group."""
    last = np.ones(len(group), dtype=bool)
    last[:-1] = group[1:] != group[:-1]
    return last


def spans(first: np.ndarray) -> list[tuple[int, int]]:
    """[lo, hi) of each group's rows (none for no rows)."""
    edges = np.flatnonzero(first).tolist()
    return list(zip(edges, [*edges[1:], len(first)], strict=True)) if edges else []


def previous(values: np.ndarray, first: np.ndarray, carried: np.ndarray) -> np.ndarray:
    """Each row's previous value in its group; the carried value at a group's first row."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    out[first] = carried[first]
    return out


def latch(on: np.ndarray, off: np.ndarray, first: np.ndarray, carried: np.ndarray) -> np.ndarray:
    """A set/reset latch: True from a row where `on`, False from a row where `off`, else unchanged;
    a group starts from `carried` (rows where both are set count as `on`)."""
    rows = np.arange(len(on))
    event = on | off
    value = np.where(event, on, carried)
    last = np.maximum.accumulate(np.where(event | first, rows, 0))
    return value[last]


def run_starts(
    cond: np.ndarray,
    ts: np.ndarray,
    first: np.ndarray,
    carried_cond: np.ndarray,
    carried_start: np.ndarray,
    carried_ts: np.ndarray,
    max_gap: int,
) -> np.ndarray:
    """When the current run of equal `cond` values began, per row. A run breaks where the value changes
    or the data has a gap longer than `max_gap`; a group's first run continues the carried one when the
    value is the same and no gap lies between (carried_start < 0 means nothing was carried)."""
    rows = np.arange(len(cond))
    prev_ts = previous(ts, first, carried_ts)
    prev_cond = previous(cond, first, carried_cond)
    gap = ts - prev_ts > max_gap
    boundary = first | (cond != prev_cond) | gap
    start_row = np.maximum.accumulate(np.where(boundary, rows, 0))
    start = ts[start_row]
    continued = first & (carried_start >= 0) & (cond == carried_cond) & ~gap
    return np.where(continued[start_row], carried_start, start)


@dataclass(slots=True)
class Delayed:
    """The outcome of `delayed`: alarm state per row, and the run start of the condition per row."""

    active: np.ndarray
    run_start: np.ndarray


def delayed(
    cond: np.ndarray,
    ts: np.ndarray,
    first: np.ndarray,
    carried_cond: np.ndarray,
    carried_start: np.ndarray,
    carried_ts: np.ndarray,
    carried_active: np.ndarray,
    on_delay: int,
    off_delay: int,
    max_gap: int,
) -> Delayed:
    """The alarm state per row: it turns on once `cond` has held for `on_delay`, off once it has not
    held for `off_delay` (same time unit as ts), else keeps its state."""
    start = run_starts(cond, ts, first, carried_cond, carried_start, carried_ts, max_gap)
    held = ts - start
    active = latch(cond & (held >= on_delay), ~cond & (held >= off_delay), first, carried_active)
    return Delayed(active, start)


def changes(active: np.ndarray, first: np.ndarray, carried: np.ndarray) -> np.ndarray:
    """Rows where the alarm state differs from the row before (or from the carried state)."""
    return np.flatnonzero(active != previous(active, first, carried))


@dataclass(slots=True)
class Padded:
    """Groups laid out as the rows of a matrix (shorter ones padded at the end), so a recursion along
    each group (EWMA, CUSUM) runs for all groups at once along axis 1."""

    starts: np.ndarray
    lengths: np.ndarray
    mask: np.ndarray  # True where the matrix holds a real row

    @staticmethod
    def of(first: np.ndarray) -> Padded | None:
        """The layout of the groups, or None when padding would cost more than four times the rows."""
        starts = np.flatnonzero(first)
        lengths = np.diff(np.append(starts, len(first)))
        if len(starts) == 0 or len(starts) * int(lengths.max()) > 4 * len(first):
            return None
        mask = np.arange(int(lengths.max())) < lengths[:, None]
        return Padded(starts, lengths, mask)

    def pad(self, values: np.ndarray, fill: float) -> np.ndarray:
        matrix = np.full(self.mask.shape, fill, dtype=np.float64)
        matrix[self.mask] = values
        return matrix

    def unpad(self, matrix: np.ndarray) -> np.ndarray:
        values: np.ndarray = matrix[self.mask]
        return values

    def last(self, matrix: np.ndarray) -> np.ndarray:
        """The last real value of each group."""
        values: np.ndarray = matrix[np.arange(len(self.lengths)), self.lengths - 1]
        return values
