from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leitstand.domain.assets import ID_PATTERN, AssetLevel, parse_asset_model
from leitstand.domain.calendar import parse_calendar
from leitstand.sim import enterprise_model


@pytest.mark.parametrize("plants", [1, 6, 122])
def test_model_parses_with_about_sixty_machines_per_plant(plants: int) -> None:
    model = parse_asset_model(enterprise_model(plants=plants))

    sites = list(model.by_level(AssetLevel.SITE))
    machines = list(model.by_level(AssetLevel.MACHINE))
    assert len(sites) == plants
    assert len(machines) == 60 * plants
    assert all(ID_PATTERN.match(a.id) for a in model.assets)
    assert set(model.calendars) == {s.id for s in sites}


def test_plants_lie_in_several_time_zones() -> None:
    model = parse_asset_model(enterprise_model(plants=6))

    zones = {s.timezone for s in model.by_level(AssetLevel.SITE)}
    assert {"Europe/Berlin", "America/Mexico_City", "Asia/Shanghai"} <= zones
    assert len(zones) == 6


def test_enterprise_is_nordwerk_automotive() -> None:
    model = parse_asset_model(enterprise_model(plants=1))

    root = next(model.by_level(AssetLevel.ENTERPRISE))
    assert (root.id, root.name) == ("nordwerk", "Nordwerk Automotive")


@pytest.mark.parametrize("plants", [0, 123, -1])
def test_plant_count_outside_1_to_122_is_rejected(plants: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 122"):
        enterprise_model(plants=plants)


def test_every_machine_has_an_ideal_cycle_and_three_signals() -> None:
    model = parse_asset_model(enterprise_model(plants=2))

    for machine in model.by_level(AssetLevel.MACHINE):
        assert machine.ideal_cycle_s is not None
        assert [s.name for s in machine.signals] == ["temperature", "motor_current", "vibration"]
        assert [s.unit for s in machine.signals] == ["degC", "A", "mm/s"]
    presses = [m for m in model.by_level(AssetLevel.MACHINE) if m.machine_type == "press"]
    assert len(presses) == 20
    assert all(4.0 <= (m.ideal_cycle_s or 0) <= 6.0 for m in presses)


def test_each_plant_has_two_to_four_products_covering_all_its_machines() -> None:
    model = parse_asset_model(enterprise_model(plants=6))

    for site in model.by_level(AssetLevel.SITE):
        machine_ids = {m.id for m in model.by_level(AssetLevel.MACHINE) if m.path.split("/")[1] == site.id}
        products = [p for p in model.products if p.id.startswith(f"{site.id}-")]
        assert 2 <= len(products) <= 4
        for product in products:
            assert set(product.ideal_cycle_s) == machine_ids


def test_calendar_plans_three_shifts_with_breaks_on_weekdays() -> None:
    model = parse_asset_model(enterprise_model(plants=1))
    site = next(model.by_level(AssetLevel.SITE))
    calendar = parse_calendar(model.calendars[site.id], site.timezone)

    tuesday = datetime(2026, 3, 10, tzinfo=UTC)
    planned = calendar.planned_intervals(tuesday, tuesday + timedelta(days=1))
    sunday = datetime(2026, 3, 8, tzinfo=UTC)
    assert sum((p.end - p.start).total_seconds() for p in planned) == 22.5 * 3600
    assert {p.shift for p in planned} == {"early", "late", "night"}
    assert calendar.planned_intervals(sunday + timedelta(hours=6), sunday + timedelta(hours=20)) == []
    assert 1 <= len([h for h in calendar.holidays if h.year == 2026]) <= 2


def test_every_third_plant_works_all_week_so_some_plants_produce_on_any_day() -> None:
    model = parse_asset_model(enterprise_model(plants=3))
    sites = list(model.by_level(AssetLevel.SITE))
    sunday = datetime(2026, 3, 8, 12, tzinfo=UTC)
    planned = [
        parse_calendar(model.calendars[s.id], s.timezone).planned_intervals(
            sunday, sunday + timedelta(hours=6)
        )
        for s in sites
    ]
    assert [bool(p) for p in planned] == [False, False, True]


def test_same_seed_gives_the_same_model_and_another_seed_other_cycle_times() -> None:
    assert enterprise_model(plants=2, seed=3) == enterprise_model(plants=2, seed=3)
    assert enterprise_model(plants=2, seed=3) != enterprise_model(plants=2, seed=4)
