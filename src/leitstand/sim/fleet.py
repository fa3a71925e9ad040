"""The machines, lines and sites the simulator runs, resolved once from an asset model document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from leitstand.domain.assets import Asset, AssetLevel, AssetModel, parse_asset_model
from leitstand.domain.calendar import ShiftCalendar, parse_calendar
from leitstand.sim.profiles import MachineProfile, profile_for

FALLBACK_CYCLE_S = 60.0  # for machines the model gives no ideal cycle time at all


@dataclass(frozen=True, slots=True)
class SimMachine:
    """A machine as the simulator sees it; `index` is its position in `Fleet.machines`."""

    index: int
    id: str
    site: int
    line: int
    profile: MachineProfile
    signals: tuple[str, ...]
    machine_type: str = ""


@dataclass(frozen=True, slots=True)
class SimLine:
    """A line: its machines in flow order and the products it can make (indices into `Fleet.product_ids`)."""

    index: int
    id: str
    site: int
    machines: tuple[int, ...]
    products: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SimSite:
    """A site with its shift calendar; its machines are the contiguous range `machines_lo:machines_hi`."""

    index: int
    id: str
    calendar: ShiftCalendar
    machines_lo: int
    machines_hi: int


@dataclass(frozen=True, slots=True)
class Fleet:
    """Everything the simulator needs from the model, with machines numbered site by site."""

    model: AssetModel
    sites: tuple[SimSite, ...]
    lines: tuple[SimLine, ...]
    machines: tuple[SimMachine, ...]
    product_ids: tuple[str, ...]
    ideal_cycle_s: np.ndarray  # [product, machine]; the last row (product -1) is the machine default

    def ideal(self, product: int, machine: int) -> float:
        return float(self.ideal_cycle_s[product, machine])


def build_fleet(model_doc: dict[str, Any]) -> Fleet:
    """Parse the model document and number its sites, lines and machines (raises InputError if invalid)."""
    model = parse_asset_model(model_doc)
    children: dict[str | None, list[Asset]] = {}
    for asset in model.assets:
        children.setdefault(asset.parent_id, []).append(asset)
    sites: list[SimSite] = []
    lines: list[SimLine] = []
    machines: list[SimMachine] = []
    machine_assets: list[Asset] = []
    for site_asset in model.by_level(AssetLevel.SITE):
        site_index = len(sites)
        lo = len(machines)
        site_lines = [line for area in children.get(site_asset.id, []) for line in children.get(area.id, [])]
        for line_asset in site_lines:
            members = [a for a in children.get(line_asset.id, []) if a.level is AssetLevel.MACHINE]
            line_index = len(lines)
            indices = tuple(range(len(machines), len(machines) + len(members)))
            for asset in members:
                machines.append(
                    SimMachine(
                        index=len(machines),
                        id=asset.id,
                        site=site_index,
                        line=line_index,
                        profile=profile_for(asset.machine_type),
                        signals=tuple(s.name for s in asset.signals),
                        machine_type=asset.machine_type,
                    )
                )
                machine_assets.append(asset)
            member_ids = {a.id for a in members}
            named = tuple(i for i, p in enumerate(model.products) if member_ids & p.ideal_cycle_s.keys())
            lines.append(SimLine(line_index, line_asset.id, site_index, indices, named))
        calendar = parse_calendar(model.calendars.get(site_asset.id), site_asset.timezone)
        sites.append(SimSite(site_index, site_asset.id, calendar, lo, len(machines)))
    ideal = _ideal_cycles(model, [a.id for a in machine_assets], [a.ideal_cycle_s for a in machine_assets])
    return Fleet(
        model=model,
        sites=tuple(sites),
        lines=tuple(lines),
        machines=tuple(machines),
        product_ids=tuple(p.id for p in model.products),
        ideal_cycle_s=ideal,
    )


def _ideal_cycles(model: AssetModel, machine_ids: list[str], defaults: list[float | None]) -> np.ndarray:
    """Ideal cycle [product, machine]; a machine's default is its own, else the first product's, else 60 s."""
    column = {machine_id: m for m, machine_id in enumerate(machine_ids)}
    first: dict[int, float] = {}
    for product in model.products:
        for machine_id, seconds in product.ideal_cycle_s.items():
            if machine_id in column:
                first.setdefault(column[machine_id], seconds)
    default = np.array(
        [d or first.get(m, FALLBACK_CYCLE_S) for m, d in enumerate(defaults)], dtype=np.float64
    )
    ideal = np.tile(default, (len(model.products) + 1, 1))
    for p, product in enumerate(model.products):
        for machine_id, seconds in product.ideal_cycle_s.items():
            if machine_id in column:
                ideal[p, column[machine_id]] = seconds
    return ideal
