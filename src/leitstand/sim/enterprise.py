"""Simulated companies (Nordwerk Automotive and two suppliers): asset models in the import format
`parse_asset_model` takes."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

MAX_PLANTS = 122

# (time zone, plant towns, holidays in that country) – plants cycle through the zones.
_REGIONS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Europe/Berlin", ("Emden", "Zwickau", "Kassel"), ("10-03", "12-25")),
    ("Europe/Bratislava", ("Trnava", "Nitra", "Zilina"), ("08-29", "12-25")),
    ("America/Mexico_City", ("Puebla", "Silao", "Aguascalientes"), ("09-16",)),
    ("America/Chicago", ("Kansas City", "San Antonio", "Memphis"), ("07-04", "12-25")),
    ("Asia/Shanghai", ("Changchun", "Foshan", "Shenyang"), ("10-01",)),
    ("America/Sao_Paulo", ("Taubate", "Resende", "Curitiba"), ("09-07", "12-25")),
    ("Asia/Kolkata", ("Pune", "Chennai", "Aurangabad"), ("08-15", "10-02")),
    ("Africa/Johannesburg", ("Rosslyn", "East London", "Kariega"), ("04-27", "12-16")),
)
_HOLIDAY_YEARS = (2025, 2026, 2027)

# (area suffix, area name, lines, machines per line, machine types cycled along the line, ideal cycle range)
_SHOPS: tuple[tuple[str, str, int, int, tuple[str, ...], tuple[float, float]], ...] = (
    ("press", "Press shop", 2, 5, ("press",), (4.0, 6.0)),
    ("body", "Body shop", 3, 8, ("welding_cell", "welding_cell", "robot_cell"), (45.0, 70.0)),
    ("paint", "Paint shop", 1, 6, ("paint_booth", "paint_oven"), (58.0, 62.0)),
    ("assembly", "Final assembly", 2, 10, ("assembly_station",), (55.0, 65.0)),
)
_LINE_NAMES = {
    "press": ("Tandem line", "Transfer line"),
    "body": ("Underbody", "Side frame", "Framing and closures"),
    "paint": ("Paint line",),
    "assembly": ("Trim line", "Chassis and final line"),
}
_MACHINE_NAMES = {
    "press": ("Draw press", "Trim press", "Flange press", "Pierce press", "Restrike press"),
    "paint": (
        "Pretreatment booth",
        "E-coat oven",
        "Primer booth",
        "Primer oven",
        "Topcoat booth",
        "Topcoat oven",
    ),
}
_PRODUCTS = (
    ("sedan", "Aurora Sedan"),
    ("estate", "Aurora Estate"),
    ("suv", "Vela SUV"),
    ("coupe", "Vela Coupe"),
)
_SIGNALS = (
    {"name": "temperature", "unit": "degC", "description": "Housing temperature"},
    {"name": "motor_current", "unit": "A", "description": "Main drive current"},
    {"name": "vibration", "unit": "mm/s", "description": "Vibration velocity (RMS)"},
)


@dataclass(frozen=True, slots=True)
class Company:
    """Who a simulated enterprise is: its id and name, how its plants are called and where they start."""

    id: str
    name: str
    site_prefix: str  # plant ids are the prefix and a number: p01, p02, ...
    brand: str  # plant names are the brand and a town
    first_region: int = 0


NORDWERK = Company("nordwerk", "Nordwerk Automotive", "p", "Nordwerk")
# Two suppliers of the demo: a stamping plant and a drive maker that supplies the stamper.
KESSLER = Company("kessler", "Kessler Stanztechnik", "k", "Kessler", first_region=1)
OSTWALD = Company("ostwald", "Ostwald Antriebe", "o", "Ostwald", first_region=3)


def enterprise_model(plants: int = 6, seed: int = 7, company: Company = NORDWERK) -> dict[str, Any]:
    """An asset-model document of `company` (by default Nordwerk Automotive) with `plants` plants (1–122);
    same seed, same model."""
    if not 1 <= plants <= MAX_PLANTS:
        raise ValueError(f"plants must be between 1 and {MAX_PLANTS}, not {plants}")
    rng = random.Random(seed)
    sites = []
    products: list[dict[str, Any]] = []
    for index in range(plants):
        site, plant_products = _plant(index, rng, company)
        sites.append(site)
        products.extend(plant_products)
    return {
        "enterprise": {"id": company.id, "name": company.name},
        "sites": sites,
        "products": products,
    }


def _plant(index: int, rng: random.Random, company: Company) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    region = index + company.first_region
    timezone, towns, holidays = _REGIONS[region % len(_REGIONS)]
    round_ = region // len(_REGIONS)
    town = towns[round_ % len(towns)]
    generation = round_ // len(towns)
    site_id = f"{company.site_prefix}{index + 1:02d}"
    name = f"{company.brand} {town}" + (f" {generation + 1}" if generation else "")
    areas = []
    machine_cycles: dict[str, tuple[str, float]] = {}
    for suffix, area_name, line_count, machine_count, types, cycle_range in _SHOPS:
        area_id = f"{site_id}-{suffix}"
        lines = []
        for line_no in range(1, line_count + 1):
            line_id = f"{area_id}-l{line_no}"
            machines = []
            for machine_no in range(1, machine_count + 1):
                machine_id = f"{line_id}-m{machine_no:02d}"
                machine_type = types[(machine_no - 1) % len(types)]
                cycle = round(rng.uniform(*cycle_range), 1)
                machine_cycles[machine_id] = (suffix, cycle)
                machines.append(
                    {
                        "id": machine_id,
                        "name": _machine_name(suffix, machine_type, machine_no),
                        "type": machine_type,
                        "ideal_cycle_s": cycle,
                        "signals": [dict(s) for s in _SIGNALS],
                    }
                )
            line_names = _LINE_NAMES[suffix]
            lines.append(
                {"id": line_id, "name": line_names[(line_no - 1) % len(line_names)], "machines": machines}
            )
        areas.append({"id": area_id, "name": area_name, "lines": lines})
    site = {
        "id": site_id,
        "name": name,
        "timezone": timezone,
        "calendar": _calendar(pattern=region % 3, holidays=holidays),
        "areas": areas,
    }
    return site, _plant_products(site_id, machine_cycles, rng)


def _machine_name(shop: str, machine_type: str, number: int) -> str:
    names = _MACHINE_NAMES.get(shop)
    if names:
        return names[(number - 1) % len(names)]
    label = {"welding_cell": "Welding cell", "robot_cell": "Robot cell", "assembly_station": "Station"}
    return f"{label.get(machine_type, 'Machine')} {number}"


def _calendar(pattern: int, holidays: tuple[str, ...]) -> dict[str, Any]:
    """Three shifts on weekdays (pattern 0), plus a Saturday early shift (1), or all week (2), as
    plants in high demand run a continuous crew rotation."""
    weekdays = ["mon", "tue", "wed", "thu", "fri"]
    if pattern == 2:
        weekdays = [*weekdays, "sat", "sun"]
    saturday = pattern == 1
    return {
        "shifts": [
            {
                "name": "early",
                "start": "06:00",
                "end": "14:00",
                "days": [*weekdays, "sat"] if saturday else weekdays,
                "breaks": [{"start": "10:00", "minutes": 30}],
            },
            {
                "name": "late",
                "start": "14:00",
                "end": "22:00",
                "days": weekdays,
                "breaks": [{"start": "18:00", "minutes": 30}],
            },
            {
                "name": "night",
                "start": "22:00",
                "end": "06:00",
                "days": weekdays,
                "breaks": [{"start": "02:00", "minutes": 30}],
            },
        ],
        "holidays": [f"{year}-{day}" for year in _HOLIDAY_YEARS for day in holidays],
    }


def _plant_products(
    site_id: str, machine_cycles: dict[str, tuple[str, float]], rng: random.Random
) -> list[dict[str, Any]]:
    products = []
    for key, name in _PRODUCTS[: rng.randint(2, len(_PRODUCTS))]:
        # A variant is a little slower or faster per shop (more welds, more trim parts), never wildly.
        shop_factor = {shop: rng.uniform(0.96, 1.08) for shop, _ in machine_cycles.values()}
        cycles = {m: round(cycle * shop_factor[shop], 1) for m, (shop, cycle) in machine_cycles.items()}
        products.append({"id": f"{site_id}-{key}", "name": name, "ideal_cycle_s": cycles})
    return products
