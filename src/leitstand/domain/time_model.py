"""The ISO 22400-2 time model: how machine states fall into time categories, and the OEE formulas.

planned operation time (POT) = shift time without breaks, from the site calendar
planned busy time (PBT)      = POT - planned downtime
actual production time (APT) = time in a production state
availability = APT / PBT;  performance = Σ(PRI·PQ) / APT;  quality = Σ(PRI·GQ) / Σ(PRI·PQ)
OEE = availability × performance × quality = Σ(PRI·GQ) / PBT

Roll-ups add the times and quantities of their members and then divide; ratios are never averaged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum

from leitstand.domain.errors import InputError


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

# States in which a machine waits for others (material, space downstream, work): not active in the
# active-period bottleneck method. Everything else in planned time, but planned downtime, is active.
WAITING_STATES = frozenset(
    {MachineState.STARVED, MachineState.BLOCKED, MachineState.IDLE, "SUSPENDED", "SUSPENDING"}
)
MAX_STATE_CODE = 64


@dataclass(frozen=True, slots=True)
class StateMapping:
    """A tenant's own state and reason codes on top of the built-in default: for the whole enterprise,
    per machine type and per site. For a machine, the site's entries win over its type's, and those
    over the enterprise's: how a plant counts its time is the plant's decision."""

    enterprise: dict[str, TimeCategory] = field(default_factory=dict)
    machine_types: dict[str, dict[str, TimeCategory]] = field(default_factory=dict)
    sites: dict[str, dict[str, TimeCategory]] = field(default_factory=dict)
    waiting: frozenset[str] = frozenset()  # own codes in which a machine waits, as WAITING_STATES

    def for_machine(
        self, site_id: str | None, machine_type: str, base: Mapping[str, TimeCategory]
    ) -> dict[str, TimeCategory]:
        return {
            **base,
            **self.enterprise,
            **self.machine_types.get(machine_type, {}),
            **self.sites.get(site_id or "", {}),
        }


def parse_state_codes(doc: object, where: str) -> frozenset[str]:
    """A list of state codes from an asset model, or InputError."""
    if not isinstance(doc, list) or not all(isinstance(c, str) and 0 < len(c) <= MAX_STATE_CODE for c in doc):
        raise InputError(
            f"asset model: {where} must be a list of state codes of 1-{MAX_STATE_CODE} characters"
        )
    return frozenset(doc)


def parse_state_mapping(doc: object, where: str) -> dict[str, TimeCategory]:
    """`{STATE_CODE: category}` from an asset model, or InputError naming the bad entry."""
    if not isinstance(doc, dict):
        raise InputError(f"asset model: {where} must be a mapping of state codes to time categories")
    categories = ", ".join(c.value for c in TimeCategory)
    mapping: dict[str, TimeCategory] = {}
    for code, category in doc.items():
        if not isinstance(code, str) or not 0 < len(code) <= MAX_STATE_CODE:
            raise InputError(
                f"asset model: {where}: state codes are 1-{MAX_STATE_CODE} characters, not {code!r}"
            )
        try:
            mapping[code] = TimeCategory(category)
        except ValueError:
            raise InputError(
                f"asset model: {where}.{code}: {category!r} is not a time category ({categories})"
            ) from None
    return mapping


@dataclass(frozen=True, slots=True)
class OeeTimes:
    """Summed times (seconds) and ideal times of one machine or roll-up over one window, and the ratios
    they give: the one definition of the OEE formulas (the query engine computes only the sums)."""

    pot_s: float
    planned_down_s: float
    production_s: float
    ideal_s: float
    good_ideal_s: float
    setup_s: float = 0.0
    delay_s: float = 0.0  # includes minor stops
    down_s: float = 0.0
    minor_stop_s: float = 0.0
    unknown_s: float = 0.0
    calendar_s: float = 0.0  # all time of the window (per machine, summed), planned or not
    produced: int = 0
    good: int = 0  # right the first time: produced − scrap − rework
    rework: int = 0
    failures: int = 0  # entries into a down state that begin inside planned time within the window

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

    def kpis(self) -> dict[str, float | None]:
        """The ISO 22400-2 KPIs of these times and quantities (docs/decisions/0004 names each definition).

        Ratios whose denominator is zero are None: no planned time means no availability, not 0 %.
        """
        return {
            "availability": self.availability,  # APT / PBT
            "effectiveness": self.performance,  # Σ(PRI·PQ) / APT
            "quality_ratio": _ratio(self.good, self.produced),  # GQ / PQ
            "oee": self.oee,  # Σ(PRI·GQ) / PBT
            "nee": _ratio(self.good_ideal_s, self.pbt_s - self.setup_s),  # setup is not a loss
            "teep": _ratio(self.good_ideal_s, self.calendar_s),  # against all time
            "utilization": _ratio(self.pbt_s, self.calendar_s),  # loading: PBT / all time
            "technical_efficiency": _ratio(self.production_s, self.production_s + self.delay_s + self.down_s),
            "setup_rate": _ratio(self.setup_s, self.production_s + self.setup_s),  # AUST / AUPT
            "throughput_per_h": _ratio(3600.0 * self.produced, self.production_s),  # PQ / APT
            "scrap_ratio": _ratio(self.produced - self.good - self.rework, self.produced),  # SQ / PQ
            "rework_ratio": _ratio(self.rework, self.produced),  # RQ / PQ
            "first_pass_yield": _ratio(self.good, self.produced),  # good the first time / PQ
            "mtbf_s": _ratio(self.production_s, self.failures),  # APT / failures
            "mttr_s": _ratio(self.down_s, self.failures),  # down time / failures
        }

    def losses(self) -> dict[str, float]:
        """The OEE waterfall in seconds: planned busy time, each loss in turn, fully productive time.

        planned_busy − breakdowns − setup − minor_stops − other_delays − unknown = production,
        production − speed_loss − quality_loss = fully_productive.
        """
        return {
            "planned_busy_s": self.pbt_s,
            "breakdowns_s": self.down_s,
            "setup_s": self.setup_s,
            "minor_stops_s": self.minor_stop_s,
            "other_delays_s": self.delay_s - self.minor_stop_s,
            "unknown_s": self.unknown_s,
            "production_s": self.production_s,
            "speed_loss_s": self.production_s - self.ideal_s,
            "quality_loss_s": self.ideal_s - self.good_ideal_s,
            "fully_productive_s": self.good_ideal_s,
        }

    def __add__(self, other: OeeTimes) -> OeeTimes:
        return OeeTimes(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None
