"""Faults injected into the simulated machines, and the ground truth of where they are.

Four kinds: a temperature sensor drifting high until it is recalibrated, bearing wear raising vibration
before a real breakdown, tool wear raising the scrap share until the tool is changed, and a sensor stuck
at one value. Drift, tool wear and stuck sensors start at hashed instants while the machine is running;
bearing wear is read off the breakdowns the timeline holds, which is why the plan looks a few hours ahead
of every window. Faults are placed block by block as the timeline grows, from hashes of stable keys, so
they do not depend on how time is cut into windows. Faults of one machine never overlap, except that a
bearing-wear precursor may overlap a fault of another kind.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from leitstand.domain.errors import InputError
from leitstand.sim.behaviour import DOWN, IDLE, OFF, RUNNING
from leitstand.sim.noise import stable_key, uniform
from leitstand.sim.planned import to_datetime
from leitstand.sim.sensors import SampleArrays, SampleFeed
from leitstand.sim.timeline import Block, Timeline

KINDS: tuple[str, ...] = ("drift", "bearing_wear", "tool_wear", "stuck_sensor")
DRIFT, BEARING, TOOL_WEAR, STUCK = range(len(KINDS))
_PLACED = (DRIFT, TOOL_WEAR, STUCK)  # the kinds placed at hashed instants; bearing wear follows breakdowns

_H = 3600
DRIFT_C_PER_H = (1.5, 4.0)
DRIFT_S = (3 * _H, 8 * _H)  # until recalibration
PRECURSOR_S = (2 * _H, 6 * _H)  # bearing wear shows this long before its breakdown
BEARING_GAIN = (2.0, 4.0)  # vibration × (1 + gain · x²), x going 0 → 1 over the precursor
TOOL_WEAR_PEAK = (0.10, 0.25)  # scrap share reached just before the tool change
TOOL_WEAR_S = (2 * _H, 5 * _H)
STUCK_S = (1 * _H, 4 * _H)

_SLOT_S = _H  # each machine may start one placed fault per hour of running time
_KEY_SHIFT = 34  # a channel above epoch seconds in one sortable int64 key, as in the timeline
_NEVER = np.iinfo(np.int64).min // 2
# Hash streams, one per independent draw.
_OCCURS, _KIND, _OFFSET, _LENGTH, _SIZE, _SIGNAL, _CHOSEN = range(31, 38)


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault of `kind` on one machine, with effect during [start, end) (UTC).

    `signal` is the sample signal it falsifies (None for tool wear, which acts on the counts' scrap);
    `breakdown_at` is, for bearing wear, the start of the breakdown it precedes (equal to `end`)."""

    machine_id: str
    kind: str
    signal: str | None
    start: datetime
    end: datetime
    breakdown_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FaultRates:
    """How often faults happen. Rates are episodes per 24 h of running time of one machine; bearing wear
    precedes `bearing_share` of the breakdowns still under repair `bearing_min_repair_s` after they began
    (0 for every breakdown). The defaults give a machine about one fault every three planned days.
    Tool wear happens on the machine types in `tool_wear_types` (None: every type): by default presses,
    whose dies wear; a paint booth or an assembly station has no tool that wears into scrap."""

    drift_per_day: float = 0.1
    tool_wear_per_day: float = 0.1
    stuck_sensor_per_day: float = 0.06
    bearing_share: float = 0.6
    bearing_min_repair_s: int = 3600
    tool_wear_types: tuple[str, ...] | None = ("press",)

    def __post_init__(self) -> None:
        for name in ("drift_per_day", "tool_wear_per_day", "stuck_sensor_per_day", "bearing_min_repair_s"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must not be negative")
        if not 0.0 <= self.bearing_share <= 1.0:
            raise InputError("bearing_share must lie between 0 and 1")


class FaultPlan:
    """The faults of every machine, placed as the timeline grows, and their effects on records."""

    def __init__(
        self, timeline: Timeline, samples: SampleFeed, sample_interval_s: int, seed: int, rates: FaultRates
    ) -> None:
        self.rates = rates
        self._timeline = timeline
        self._samples = samples
        self._sample_interval = sample_interval_s
        machines = timeline.fleet.machines
        self._ids = [m.id for m in machines]
        self._machine_signals = [m.signals for m in machines]
        self._signal_index = {name: i for i, name in enumerate(samples.signals)}
        self._n_machines = len(machines)
        self._keys = np.array([stable_key(seed, "fault", m.id) for m in machines], dtype=np.int64)
        self._base_scrap = timeline.scrap_rates
        # Per machine and placed kind: episodes per running second (0 where the machine lacks the signal).
        per_day = np.array([rates.drift_per_day, rates.tool_wear_per_day, rates.stuck_sensor_per_day])
        tools = rates.tool_wear_types
        able = np.array(
            [
                ["temperature" in m.signals, tools is None or m.machine_type in tools, bool(m.signals)]
                for m in machines
            ],
            dtype=bool,
        )
        able = able.reshape(len(machines), len(_PLACED))
        self._weights = np.where(able, per_day / 86_400, 0.0)
        self._lookahead = PRECURSOR_S[1] + int(rates.bearing_min_repair_s)
        n = len(machines)
        self._blocks_done = 0
        self._last_state = np.full(n, OFF, dtype=np.int64)  # of the latest segment seen, across blocks
        self._last_breakdown = np.full(n, _NEVER, dtype=np.int64)
        self._placed_until = np.full(n, _NEVER, dtype=np.int64)  # end of the latest placed fault
        self._breakdowns: list[tuple[int, int, int]] = []  # (t, machine, previous breakdown), undecided
        self._faults: list[Fault] = []
        self._columns: dict[str, list[float]] = {
            c: [] for c in ("machine", "kind", "signal", "start", "end", "size")
        }
        self._arrays: dict[str, np.ndarray] | None = None
        self._kinds: dict[int, np.ndarray] = {}  # indices of the faults of each kind
        self._stuck_values: dict[int, float] = {}

    def extend_to(self, t: int) -> None:
        """Place every fault that can touch records before `t` (epoch seconds); grows the timeline."""
        self._timeline.extend_to(t + self._lookahead)
        blocks = self._timeline.blocks
        for block in blocks[self._blocks_done :]:
            self._scan_breakdowns(block)
            self._place(block)
        self._blocks_done = len(blocks)
        self._decide_bearing_wear(blocks[-1].end)

    def overlapping(self, spans: list[tuple[int, int]]) -> list[Fault]:
        """The faults whose effect overlaps any of the spans [lo, hi) (epoch seconds), sorted by start."""
        a = self._array()
        hit = np.zeros(len(self._faults), dtype=bool)
        for lo, hi in spans:
            hit |= (a["start"] < hi) & (a["end"] > lo)
        return sorted((self._faults[i] for i in np.nonzero(hit)[0].tolist()), key=_order)

    def scrap_rates(self, machine: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Scrap share of count records (sorted by machine, then ts): tool wear raises it linearly from the
        machine's own rate to the fault's peak for the records with start < ts <= end."""
        rate: np.ndarray = self._base_scrap[machine]
        rows, f = self._rows_inside(TOOL_WEAR, machine, ts, 1)
        if len(rows):
            a = self._array()
            progress = (ts[rows] - a["start"][f]) / (a["end"][f] - a["start"][f])
            rate[rows] += (a["size"][f] - rate[rows]) * progress
        return rate

    def apply_to_samples(self, samples: SampleArrays) -> SampleArrays:
        """The samples as the faulty sensors read them."""
        if not self._faults or len(samples) == 0:
            return samples
        value = self._worn_and_drifted(samples)
        rows, f = self._rows_inside(STUCK, self._sample_channel(samples), samples.ts)
        if len(rows):
            held, inverse = np.unique(f, return_inverse=True)
            value[rows] = np.array([self._stuck_value(i) for i in held.tolist()])[inverse]
        return dataclasses.replace(samples, value=value)

    def _worn_and_drifted(self, samples: SampleArrays) -> np.ndarray:
        """Sample values with bearing wear and temperature drift applied."""
        value = samples.value.copy()
        channel = self._sample_channel(samples)
        a = self._array()
        rows, f = self._rows_inside(BEARING, channel, samples.ts)
        x = (samples.ts[rows] - a["start"][f]) / (a["end"][f] - a["start"][f])
        value[rows] *= 1.0 + a["size"][f] * x * x
        rows, f = self._rows_inside(DRIFT, channel, samples.ts)
        value[rows] += a["size"][f] * (samples.ts[rows] - a["start"][f]) / _H
        return value

    def _stuck_value(self, fault: int) -> float:
        """What a stuck sensor repeats: its (faulty) reading at the first sample at or after the start."""
        found = self._stuck_values.get(fault)
        if found is None:
            a, iv = self._array(), self._sample_interval
            first = -(-int(a["start"][fault]) // iv) * iv
            reading = self._samples.records(first, first + 1)
            mine = (
                self._sample_channel(reading) == a["signal"][fault] * self._n_machines + a["machine"][fault]
            )
            found = self._stuck_values[fault] = float(self._worn_and_drifted(reading)[mine][0])
        return found

    def _sample_channel(self, samples: SampleArrays) -> np.ndarray:
        """A channel number per sample that grows with the samples' order (signal, then machine)."""
        channel: np.ndarray = samples.signal * self._n_machines + samples.machine
        return channel

    def _rows_inside(
        self, kind: int, channel: np.ndarray, t: np.ndarray, shift: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rows whose t lies in [start + shift, end + shift) of a fault of `kind` on their channel, and
        that fault's index for each; rows must be sorted by channel, then t. Counts pass shift 1, because a
        count record's ts is the end of its interval."""
        a, mine = self._array(), self._of_kind(kind)
        if len(mine) == 0 or len(t) == 0:
            return np.empty(0, dtype=np.int64), mine
        own = (
            a["machine"][mine]
            if kind == TOOL_WEAR
            else a["signal"][mine] * self._n_machines + a["machine"][mine]
        )
        key = (channel << _KEY_SHIFT) | t
        first = np.searchsorted(key, (own << _KEY_SHIFT) | (a["start"][mine] + shift))
        last = np.searchsorted(key, (own << _KEY_SHIFT) | (a["end"][mine] + shift))
        n = last - first
        offsets = np.cumsum(n) - n
        rows = np.repeat(first - offsets, n) + np.arange(int(n.sum()))
        return rows, np.repeat(mine, n)

    def _scan_breakdowns(self, block: Block) -> None:
        """Note the breakdowns starting in `block`: DOWN segments that do not resume a repair after a gap."""
        machine, state = block.machine, block.state.astype(np.int64)
        previous = np.empty_like(state)
        previous[1:] = state[:-1]
        first = np.ones(len(state), dtype=bool)
        first[1:] = machine[1:] != machine[:-1]
        previous[first] = self._last_state[machine[first]]
        breakdown = (state == DOWN) & block.change & (previous != OFF) & (previous != IDLE)
        last = np.append(np.nonzero(first)[0][1:], len(state)) - 1
        self._last_state[machine[last]] = state[last]
        for m, t in zip(machine[breakdown].tolist(), block.seg_start[breakdown].tolist(), strict=True):
            self._breakdowns.append((t, m, int(self._last_breakdown[m])))
            self._last_breakdown[m] = t

    def _decide_bearing_wear(self, horizon: int) -> None:
        """Give a precursor to the chosen breakdowns whose repair can be judged before `horizon`."""
        repair_s = int(self.rates.bearing_min_repair_s)
        ready = [b for b in self._breakdowns if b[0] + repair_s < horizon]
        if not ready:
            return
        self._breakdowns = [b for b in self._breakdowns if b[0] + repair_s >= horizon]
        t, machine, previous = (np.array(column, dtype=np.int64) for column in zip(*ready, strict=True))
        key = self._keys[machine]
        length = _drawn(PRECURSOR_S, uniform(key, t, _LENGTH)).astype(np.int64)
        chosen = (
            (uniform(key, t, _CHOSEN) < self.rates.bearing_share)
            & (t - length >= self._anchor())
            & (t - length > previous)  # precursors of one machine never overlap
            & (self._timeline.at(machine, t + repair_s).state == DOWN)
        )
        gain = _drawn(BEARING_GAIN, uniform(key, t, _SIZE))
        for i in np.nonzero(chosen)[0].tolist():
            m = int(machine[i])
            if "vibration" in self._machine_signals[m]:
                self._add(m, BEARING, "vibration", int(t[i] - length[i]), int(t[i]), float(gain[i]), True)

    def _place(self, block: Block) -> None:
        """Place the drift, tool-wear and stuck-sensor faults starting in `block`, while running."""
        n = len(self._ids)
        slots = np.arange(block.start // _SLOT_S, -(-block.end // _SLOT_S), dtype=np.int64)
        machine = np.repeat(np.arange(n, dtype=np.int64), len(slots))
        slot = np.tile(slots, n)
        key = self._keys[machine]
        total = self._weights.sum(axis=1)
        occurs = uniform(key, slot, _OCCURS) < total[machine] * _SLOT_S
        machine, slot, key = machine[occurs], slot[occurs], key[occurs]
        t = slot * _SLOT_S + (uniform(key, slot, _OFFSET) * _SLOT_S).astype(np.int64)
        inside = (t >= block.start) & (t < block.end)
        machine, slot, key, t = machine[inside], slot[inside], key[inside], t[inside]
        running = self._timeline.at(machine, t).state == RUNNING
        machine, slot, key, t = machine[running], slot[running], key[running], t[running]
        order = np.lexsort((t, machine))
        machine, slot, key, t = machine[order], slot[order], key[order], t[order]
        cumulative = np.cumsum(self._weights[machine], axis=1)
        pick = uniform(key, slot, _KIND) * cumulative[:, -1]
        kind_of = (pick[:, None] >= cumulative).sum(axis=1)
        u_length, u_size = uniform(key, slot, _LENGTH), uniform(key, slot, _SIZE)
        u_signal = uniform(key, slot, _SIGNAL)
        length = {DRIFT: DRIFT_S, TOOL_WEAR: TOOL_WEAR_S, STUCK: STUCK_S}
        size = {DRIFT: DRIFT_C_PER_H, TOOL_WEAR: TOOL_WEAR_PEAK, STUCK: (0.0, 0.0)}
        for i in range(len(t)):
            m, start, kind = int(machine[i]), int(t[i]), _PLACED[int(kind_of[i])]
            if start < self._placed_until[m]:
                continue  # the machine already has a fault of these kinds
            signal: str | None = None
            if kind == DRIFT:
                signal = "temperature"
            elif kind == STUCK:
                own = self._machine_signals[m]
                signal = own[int(u_signal[i] * len(own))]
            end = start + int(_drawn(length[kind], u_length[i]))
            self._placed_until[m] = end
            self._add(m, kind, signal, start, end, float(_drawn(size[kind], u_size[i])), False)

    def _add(
        self, m: int, kind: int, signal: str | None, start: int, end: int, size: float, breakdown: bool
    ) -> None:
        self._faults.append(
            Fault(
                machine_id=self._ids[m],
                kind=KINDS[kind],
                signal=signal,
                start=to_datetime(start),
                end=to_datetime(end),
                breakdown_at=to_datetime(end) if breakdown else None,
            )
        )
        signal_index = -1 if signal is None else self._signal_index[signal]
        for name, value in zip(self._columns, (m, kind, signal_index, start, end, size), strict=True):
            self._columns[name].append(value)
        self._arrays = None
        self._kinds = {}

    def _array(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            self._arrays = {
                name: np.array(values, dtype=np.float64 if name == "size" else np.int64)
                for name, values in self._columns.items()
            }
        return self._arrays

    def _of_kind(self, kind: int) -> np.ndarray:
        found = self._kinds.get(kind)
        if found is None:
            found = self._kinds[kind] = np.nonzero(self._array()["kind"] == kind)[0]
        return found

    def _anchor(self) -> int:
        assert self._timeline.anchor is not None
        return self._timeline.anchor


def _order(fault: Fault) -> tuple[datetime, str, str]:
    return fault.start, fault.machine_id, fault.kind


def _drawn(bounds: tuple[float, float], u: np.ndarray | float) -> np.ndarray:
    low, high = bounds
    drawn: np.ndarray = low + (high - low) * np.asarray(u)
    return drawn
