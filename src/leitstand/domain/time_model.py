"""The ISO 22400-2 time model: how machine states fall into time categories, and the OEE formulas.

planned operation time (POT) = shift time without breaks, from the site calendar
planned busy time (PBT)      = POT - planned downtime
actual production time (APT) = time in a production state
availability = APT / PBT;  performance = Σ(PRI·PQ) / APT;  quality = Σ(PRI·GQ) / Σ(PRI·PQ)
OEE = availability × performance × quality = Σ(PRI·GQ) / PBT

Roll-ups add the times and quantities of their members and then divide; ratios are never averaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TimeCategory(StrEnum):
    """Where a span of planned operation time goes (ISO 22400-2 names in the comments)."""

    PRODUCTION = "production"  # APT, actual production time
    SETUP = "setup"  # AUST, actual unit setup time (changeovers)
    DELAY = "delay"  # ADET, actual unit delay time (minor stops, starved, blocked, idle)
    DOWN = "down"  # ADOT, actual unit down time (breakdowns, faults)
    PLANNED_DOWN = "planned_down"  # PDOT, planned downtime (maintenance): not part of PBT
    UNKNOWN = "unknown"  # no state known, or a state no mapping names: counted as loss, shown


class MachineState(StrEnum):
    """The states the simulator and the default mapping speak; sources may send their own codes."""

    RUNNING = "RUNNING"
    IDLE = "IDLE"
    STARVED = "STARVED"
    BLOCKED = "BLOCKED"
    MICROSTOP = "MICROSTOP"
    DOWN = "DOWN"
    SETUP = "SETUP"
    PLANNED_MAINTENANCE = "PLANNED_MAINTENANCE"
    OFF = "OFF"


DEFAULT_STATE_CATEGORIES: dict[str, TimeCategory] = {
    MachineState.RUNNING: TimeCategory.PRODUCTION,
    MachineState.IDLE: TimeCategory.DELAY,
    MachineState.STARVED: TimeCategory.DELAY,
    MachineState.BLOCKED: TimeCategory.DELAY,
    MachineState.MICROSTOP: TimeCategory.DELAY,
    MachineState.DOWN: TimeCategory.DOWN,
    MachineState.SETUP: TimeCategory.SETUP,
    MachineState.PLANNED_MAINTENANCE: TimeCategory.PLANNED_DOWN,
    MachineState.OFF: TimeCategory.DOWN,
    # PackML (ISA-TR88.00.02) machine states
    "EXECUTE": TimeCategory.PRODUCTION,
    "SUSPENDED": TimeCategory.DELAY,
    "SUSPENDING": TimeCategory.DELAY,
    "UNSUSPENDING": TimeCategory.DELAY,
    "HELD": TimeCategory.DELAY,
    "HOLDING": TimeCategory.DELAY,
    "UNHOLDING": TimeCategory.DELAY,
    "STARTING": TimeCategory.DELAY,
    "COMPLETING": TimeCategory.DELAY,
    "COMPLETE": TimeCategory.DELAY,
    "RESETTING": TimeCategory.DELAY,
    "STOPPING": TimeCategory.DOWN,
    "STOPPED": TimeCategory.DOWN,
    "ABORTING": TimeCategory.DOWN,
    "ABORTED": TimeCategory.DOWN,
    "CLEARING": TimeCategory.DOWN,
}


@dataclass(frozen=True, slots=True)
class OeeTimes:
    """Summed times (seconds) and ideal times of one machine or roll-up over one window, and the ratios
    they give: the one definition of the OEE formulas (the query engine computes only the sums)."""

    pot_s: float
    planned_down_s: float
    production_s: float
    ideal_s: float
    good_ideal_s: float

    @property
    def pbt_s(self) -> float:
        return self.pot_s - self.planned_down_s

    @property
    def availability(self) -> float | None:
        return _ratio(self.production_s, self.pbt_s)

    @property
    def performance(self) -> float | None:
        return _ratio(self.ideal_s, self.production_s)

    @property
    def quality(self) -> float | None:
        return _ratio(self.good_ideal_s, self.ideal_s)

    @property
    def oee(self) -> float | None:
        return _ratio(self.good_ideal_s, self.pbt_s)

    def __add__(self, other: OeeTimes) -> OeeTimes:
        return OeeTimes(
            pot_s=self.pot_s + other.pot_s,
            planned_down_s=self.planned_down_s + other.planned_down_s,
            production_s=self.production_s + other.production_s,
            ideal_s=self.ideal_s + other.ideal_s,
            good_ideal_s=self.good_ideal_s + other.good_ideal_s,
        )


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None
