"""Samples: sensor values on a fixed grid, computed from the state each machine is in at each instant.

Temperature follows a first-order lag towards a per-state target from the temperature stored at the
segment start, so it climbs while running and decays when stopped; motor current follows the load;
vibration is lognormal around a per-state level. Noise and quality are hashed from the sample time,
so a sample does not depend on the window that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leitstand.domain.records import Quality
from leitstand.sim.behaviour import HEAT, STATES
from leitstand.sim.noise import normal, stable_key, uniform
from leitstand.sim.timeline import Timeline

QUALITIES: tuple[str, ...] = (Quality.GOOD.value, Quality.UNCERTAIN.value, Quality.BAD.value)
_UNCERTAIN_SHARE, _BAD_SHARE = 0.002, 0.0005
_QUALITY_STREAM = 21

# Per state (in STATES order): share of running load drawn, and share of running vibration.
_LOAD = np.array([1.0, 0.22, 0.22, 0.22, 0.3, 0.03, 0.12, 0.0, 0.0])
_SHAKE = np.array([1.0, 0.15, 0.15, 0.15, 0.3, 0.05, 0.1, 0.02, 0.02])
_HEAT = np.array(HEAT)
assert len(_LOAD) == len(_SHAKE) == len(_HEAT) == len(STATES)


@dataclass(frozen=True, slots=True)
class SampleArrays:
    """Samples as parallel arrays: machine index, signal index (into `signals`), ts (epoch s), value, quality.

    Rows are sorted by signal, then machine, then ts."""

    signals: tuple[str, ...]
    machine: np.ndarray
    signal: np.ndarray
    ts: np.ndarray
    value: np.ndarray
    quality: np.ndarray  # index into QUALITIES

    def __len__(self) -> int:
        return len(self.ts)


class SampleFeed:
    """Turns the timeline into samples of every signal of every machine, every `interval_s` seconds."""

    def __init__(self, timeline: Timeline, seed: int, interval_s: int) -> None:
        self._timeline = timeline
        self._interval = interval_s
        machines = timeline.fleet.machines
        self.signals = tuple(sorted({s for m in machines for s in m.signals}))
        self._pairs = sorted(
            (self.signals.index(s), m.index, stable_key(seed, "signal", m.id, s))
            for m in machines
            for s in m.signals
        )
        profiles = [m.profile for m in machines]
        self._ambient = np.array([p.ambient_c for p in profiles])
        self._hot = np.array([p.temp_run_c for p in profiles])
        self._tau = np.array([p.temp_tau_min * 60 for p in profiles])
        self._current = np.array([p.current_run_a for p in profiles])
        self._vibration = np.array([p.vibration_run_mm_s for p in profiles])

    def records(self, lo: int, hi: int) -> SampleArrays:
        """The samples with lo <= ts < hi (epoch seconds) on the sample grid; the timeline must reach hi."""
        iv = self._interval
        grid = np.arange(-(-lo // iv) * iv, hi, iv, dtype=np.int64)
        pairs = np.array(self._pairs, dtype=np.int64).reshape(-1, 3)
        n = len(grid)
        # Look each machine up once per instant, then share the segment among its signals.
        machines, pair_machine = np.unique(pairs[:, 1], return_inverse=True)
        seg = self._timeline.at(np.repeat(machines, n), np.tile(grid, len(machines)))
        row = (np.repeat(pair_machine * n, n) + np.tile(np.arange(n), len(pairs))).astype(np.int64)
        machine = np.repeat(pairs[:, 1], n)
        signal = np.repeat(pairs[:, 0], n)
        key = np.repeat(pairs[:, 2], n)
        ts = np.tile(grid, len(pairs))
        state = seg.state[row].astype(np.int64)
        elapsed = ts - seg.seg_start[row]
        temp0 = seg.temp0[row]
        noise = normal(key, ts)
        value = np.empty(len(ts))
        # Pairs are sorted by signal, so each signal's rows are one contiguous slice.
        edges = np.searchsorted(pairs[:, 0], np.arange(len(self.signals) + 1)) * n
        for index, name in enumerate(self.signals):
            rows = slice(edges[index], edges[index + 1])
            value[rows] = self._signal(
                name, machine[rows], state[rows], elapsed[rows], temp0[rows], noise[rows], key[rows], ts[rows]
            )
        u = uniform(key, ts, _QUALITY_STREAM)
        quality = np.where(u < _BAD_SHARE, 2, np.where(u < _BAD_SHARE + _UNCERTAIN_SHARE, 1, 0))
        return SampleArrays(self.signals, machine, signal, ts, value, quality)

    def _signal(
        self,
        name: str,
        machine: np.ndarray,
        state: np.ndarray,
        elapsed: np.ndarray,
        temp0: np.ndarray,
        noise: np.ndarray,
        key: np.ndarray,
        ts: np.ndarray,
    ) -> np.ndarray:
        values: np.ndarray
        if name == "temperature":
            ambient, hot = self._ambient[machine], self._hot[machine]
            target = ambient + (hot - ambient) * _HEAT[state]
            values = target + (temp0 - target) * np.exp(-elapsed / self._tau[machine]) + 0.25 * noise
        elif name == "motor_current":
            values = np.maximum(self._current[machine] * (_LOAD[state] + 0.02 * noise), 0.0)
        elif name == "vibration":
            values = self._vibration[machine] * _SHAKE[state] * np.exp(0.15 * noise) + 0.01
        else:
            # A signal the simulator has no model for: a load-like percentage with noise.
            values = np.clip(100.0 * _LOAD[state] + 2.0 * normal(key, ts, 3), 0.0, None)
        return values
