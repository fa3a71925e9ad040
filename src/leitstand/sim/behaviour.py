"""How a line and its machines behave over planned time: one seeded event loop per machine.

A machine runs until the next of its own events (microstop, starved/blocked, breakdown) or a line event
(changeover, planned maintenance), stops for a drawn time, and runs again. Breakdown intervals are Weibull
with shape < 1 and repairs lognormal, so both are heavy-tailed. At the end of planned time every machine
goes OFF (or IDLE for a break); only a repair outlasts it. The loop only ever moves forward, so feeding it
the same pieces in the same order gives the same segments, however the caller cuts its windows.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from leitstand.domain.calendar import ALL_DAY
from leitstand.domain.time_model import MachineState
from leitstand.sim.fleet import SimLine, SimMachine
from leitstand.sim.noise import stable_key
from leitstand.sim.planned import Gap, PlannedPiece

STATES: tuple[str, ...] = tuple(s.value for s in MachineState)
RUNNING, IDLE, STARVED, BLOCKED, MICROSTOP, DOWN, SETUP, MAINTENANCE, OFF = range(len(STATES))
assert STATES[OFF] == MachineState.OFF
assert STATES[MAINTENANCE] == MachineState.PLANNED_MAINTENANCE

BREAK_REASON, OFF_REASON, SETUP_REASON, MAINTENANCE_REASON = (
    "break",
    "NO_SHIFT",
    "CHANGEOVER",
    "PREVENTIVE_MAINTENANCE",
)
STARVED_REASON, BLOCKED_REASON = "NO_MATERIAL", "OUTPUT_FULL"

# Share of the way from ambient to running temperature that each state heats towards.
HEAT = (1.0, 0.6, 0.6, 0.6, 0.7, 0.15, 0.3, 0.0, 0.0)
WEIBULL_SHAPE = 0.6  # < 1: most breakdowns come soon after the last, a few after a very long time
REPAIR_SIGMA = 1.1
MAINTENANCE_S = 2 * 3600
NO_PRODUCT = -1


class ReasonBook:
    """Reason codes as small integers (-1 is no reason), so segments stay numeric."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._codes: dict[str, int] = {}

    def code(self, name: str) -> int:
        found = self._codes.get(name)
        if found is None:
            found = self._codes[name] = len(self.names)
            self.names.append(name)
        return found


@dataclass(frozen=True, slots=True)
class LineEvent:
    """A planned change for a whole line: a changeover to `product`, or maintenance until `until`."""

    t: int
    state: int  # SETUP or MAINTENANCE
    product: int = NO_PRODUCT
    until: int = 0


class LineSchedule:
    """Changeovers and weekly maintenance of one line, drawn once per planned piece."""

    def __init__(self, line: SimLine, seed: int, maintenance_shift: str) -> None:
        self._rng = random.Random(stable_key(seed, "line", line.id))
        self._products = line.products
        self.product = self._rng.choice(line.products) if line.products else NO_PRODUCT
        self.first_product = self.product  # what the line makes at the anchor, before any changeover
        self._changeover_rate_s = self._rng.uniform(2.0, 4.5) / (22.5 * 3600)  # per planned second
        self._maintenance = (maintenance_shift, (line.index * 2) % 5)
        self._events: dict[int, list[LineEvent]] = {}

    def events(self, piece: PlannedPiece) -> list[LineEvent]:
        """The events inside `piece`, drawn the first time the piece is asked for."""
        found = self._events.get(piece.start)
        if found is None:
            found = self._events[piece.start] = self._draw(piece)
        return found

    def forget_before(self, t: int) -> None:
        """Drop the events of pieces that start before `t` (they will not be asked for again)."""
        for start in [s for s in self._events if s < t]:
            del self._events[start]

    def _draw(self, piece: PlannedPiece) -> list[LineEvent]:
        events = []
        maintenance_end = piece.start
        if piece.first_of_shift and (piece.shift, piece.weekday) == self._maintenance:
            maintenance_end = piece.start + MAINTENANCE_S
            events.append(LineEvent(piece.start, MAINTENANCE, until=maintenance_end))
        if len(self._products) < 2:
            return events
        t = float(max(piece.start + 600, maintenance_end + 600))
        latest = piece.end - 2400
        while True:
            t += self._rng.expovariate(self._changeover_rate_s)
            if t > latest:
                return events
            self.product = self._rng.choice([p for p in self._products if p != self.product])
            events.append(LineEvent(int(t), SETUP, product=self.product))
            t += 2700  # no two changeovers within 45 minutes


class MachineBehaviour:
    """The event loop of one machine, and the segments it produced for the current block.

    A segment is (start, state, reason, product, rate, p0, temp0, change): `rate` units per second while
    running, `p0` the cumulative units started, `temp0` the temperature at its start, and `change` whether
    it changes (state, reason) – a segment that only continues one across a block start does not.
    """

    def __init__(
        self, machine: SimMachine, ideal_cycle_s: list[float], seed: int, reasons: ReasonBook
    ) -> None:
        rng = self._rng = random.Random(stable_key(seed, "machine", machine.id))
        p = machine.profile
        health = min(max(rng.lognormvariate(0.0, 0.3), 0.7), 2.0)  # > 1: breaks and stalls more often
        self._ideal = ideal_cycle_s
        self._weibull_scale = p.mtbf_h * 3600 / health / math.gamma(1 + 1 / WEIBULL_SHAPE)
        self._repair_mu = math.log(p.repair_median_min * 60 * math.sqrt(health))
        self._microstop_mean_s = p.microstop_every_min * 60 / health
        self._microstop_mu = math.log(p.microstop_median_s)
        self._stall_mean_s = p.starve_block_every_h * 3600 / health
        self._setup_s = (p.setup_min[0] * 60, p.setup_min[1] * 60)
        self._base_slowdown = rng.uniform(1.02, 1.08)
        self._ambient, self._hot, self._tau = p.ambient_c, p.temp_run_c, p.temp_tau_min * 60
        self._faults = [reasons.code(r) for r in p.fault_reasons]
        self._fault_weights = [1.0 / (i + 1) for i in range(len(self._faults))]
        self._microstops = [reasons.code(r) for r in p.microstop_reasons]
        self._r_break, self._r_off = reasons.code(BREAK_REASON), reasons.code(OFF_REASON)
        self._r_setup, self._r_maintenance = reasons.code(SETUP_REASON), reasons.code(MAINTENANCE_REASON)
        self._r_starved, self._r_blocked = reasons.code(STARVED_REASON), reasons.code(BLOCKED_REASON)
        self._fail_cd = self._draw_failure()
        self._microstop_cd = self._draw_exp(self._microstop_mean_s)
        self._stall_cd = self._draw_exp(self._stall_mean_s)
        self.scrap_rate = rng.uniform(0.005, 0.04)
        self.state, self.reason, self.product, self.rate = OFF, self._r_off, NO_PRODUCT, 0.0
        self._until = 0  # end of the current timed stop
        self._next_product = NO_PRODUCT
        # (until, reason) of a repair that outlasted planned time and goes on when it begins again
        self._pending_repair: tuple[int, int] | None = None
        self._progress, self._temp = 0.0, self._ambient
        self._seg_start = 0
        self._key: tuple[int, int] | None = None
        self._key_before: tuple[int, int] | None = None
        self.reset_output()

    def reset_output(self) -> None:
        self.starts: list[int] = []
        self.states: list[int] = []
        self.reasons: list[int] = []
        self.products: list[int] = []
        self.rates: list[float] = []
        self.p0: list[float] = []
        self.temp0: list[float] = []
        self.change: list[bool] = []

    def _columns(self) -> tuple[list[Any], ...]:
        columns = (self.starts, self.states, self.reasons, self.products, self.rates, self.p0, self.temp0)
        return (*columns, self.change)

    def begin(self, t: int, product: int, gap: Gap | None) -> None:
        """Start the machine at `t`: running if `gap` is None (inside planned time), else OFF or on break."""
        self.product = product
        self._seg_start = t
        if gap is None:
            self._run(t)
        else:
            self._emit(
                t, IDLE if gap is Gap.BREAK else OFF, self._r_break if gap is Gap.BREAK else self._r_off
            )

    def open_block(self, t: int) -> None:
        """Begin a new block of segments at `t` by continuing the current segment there."""
        self.reset_output()
        self._emit(t, self.state, self.reason, self.rate)

    def _enter(self, t: int) -> None:
        """Planned time begins at `t` after a gap: run, or go on repairing."""
        repair = self._pending_repair
        self._pending_repair = None
        if repair is not None and repair[0] > t:
            self._until = repair[0]
            self._emit(t, DOWN, repair[1])
        else:
            self._run(t)

    def leave(self, t: int, gap: Gap) -> None:
        """Planned time ends at `t`: switch OFF or to a break; an unfinished repair carries on."""
        if self.state == DOWN and self._until > t:
            self._pending_repair = (self._until, self.reason)
        elif self.state == SETUP:
            self.product = self._next_product
        self._emit(t, IDLE if gap is Gap.BREAK else OFF, self._r_break if gap is Gap.BREAK else self._r_off)

    def run(self, lo: int, hi: int, events: list[LineEvent]) -> None:
        """Advance through planned time [lo, hi), obeying the line's events in it."""
        t = lo
        if self.state in (OFF, IDLE):
            self._enter(t)
        pending = [e for e in events if lo <= e.t < hi]
        pending.reverse()
        while t < hi:
            next_event = pending[-1].t if pending else hi
            if t == next_event:
                self._obey(t, pending.pop())
                continue
            if self.state != RUNNING:
                if self._until > t:
                    t = min(self._until, next_event)
                else:
                    self._run(t)
                continue
            step = min(self._microstop_cd, self._fail_cd, self._stall_cd)
            if t + step >= next_event:
                ran = next_event - t
                self._microstop_cd -= ran
                self._fail_cd -= ran
                self._stall_cd -= ran
                t = next_event
                continue
            self._microstop_cd -= step
            self._fail_cd -= step
            self._stall_cd -= step
            t += step
            self._stop(t)

    def _stop(self, t: int) -> None:
        rng = self._rng
        if self._fail_cd <= 0:
            self._fail_cd = self._draw_failure()
            repair = rng.lognormvariate(self._repair_mu, REPAIR_SIGMA)
            self._until = t + int(min(max(repair, 120.0), 16 * 3600.0))
            self._emit(t, DOWN, rng.choices(self._faults, self._fault_weights)[0])
        elif self._microstop_cd <= 0:
            self._microstop_cd = self._draw_exp(self._microstop_mean_s)
            self._until = t + int(min(max(rng.lognormvariate(self._microstop_mu, 0.5), 10.0), 120.0))
            self._emit(t, MICROSTOP, rng.choice(self._microstops))
        else:
            self._stall_cd = self._draw_exp(self._stall_mean_s)
            self._until = t + int(min(max(rng.lognormvariate(math.log(240.0), 0.8), 60.0), 2700.0))
            starved = rng.random() < 0.5
            self._emit(t, STARVED if starved else BLOCKED, self._r_starved if starved else self._r_blocked)

    def _obey(self, t: int, event: LineEvent) -> None:
        if self.state == SETUP:
            self.product = self._next_product
        if event.state == SETUP:
            self._next_product = event.product
            self._until = t + int(self._rng.uniform(*self._setup_s))
            self._emit(t, SETUP, self._r_setup)
        else:
            self._until = event.until
            self._emit(t, MAINTENANCE, self._r_maintenance)

    def _run(self, t: int) -> None:
        if self.state == SETUP:
            self.product = self._next_product
        slowdown = self._base_slowdown * self._rng.uniform(1.0, 1.08)
        self._emit(t, RUNNING, -1, 1.0 / (self._ideal[self.product] * slowdown))

    def _emit(self, t: int, state: int, reason: int, rate: float = 0.0) -> None:
        if self.starts and self.starts[-1] == t:
            # The previous segment would last zero seconds: replace it rather than repeat its timestamp.
            for column in self._columns():
                column.pop()
        else:
            elapsed = t - self._seg_start
            if self.state == RUNNING:
                self._progress += self.rate * elapsed
            target = self._ambient + (self._hot - self._ambient) * HEAT[self.state]
            self._temp = target + (self._temp - target) * math.exp(-elapsed / self._tau)
            self._key_before = self._key
        key = (state, reason)
        self._key = key
        self.state, self.reason, self.rate, self._seg_start = state, reason, rate, t
        self.starts.append(t)
        self.states.append(state)
        self.reasons.append(reason)
        self.products.append(self.product)
        self.rates.append(self.rate)
        self.p0.append(self._progress)
        self.temp0.append(self._temp)
        self.change.append(key != self._key_before)

    def _draw_failure(self) -> int:
        return max(1, int(self._rng.weibullvariate(self._weibull_scale, WEIBULL_SHAPE)))

    def _draw_exp(self, mean_s: float) -> int:
        return max(1, int(self._rng.expovariate(1.0 / mean_s)))


def maintenance_shift(shift_names: list[str]) -> str:
    """The shift weekly maintenance goes into: the calendar's first shift, or the whole day without one."""
    return shift_names[0] if shift_names else ALL_DAY
