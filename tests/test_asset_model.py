"""Asset models: the ISA-95 hierarchy with stable ids and paths, imported from YAML/JSON documents."""

from __future__ import annotations

import copy

import pytest

from leitstand.domain.assets import AssetLevel, descendants, parse_asset_model
from leitstand.domain.errors import InputError


def test_the_example_model_yields_every_level_with_paths_of_ids(example_model: dict) -> None:
    model = parse_asset_model(example_model)
    levels = [a.level for a in model.assets]
    assert levels == [
        AssetLevel.ENTERPRISE,
        AssetLevel.SITE,
        AssetLevel.AREA,
        AssetLevel.LINE,
        AssetLevel.MACHINE,
        AssetLevel.MACHINE,
    ]
    machine = next(model.by_level(AssetLevel.MACHINE))
    assert machine.path == "acme/hh/hh-press/hh-press-l1/hh-press-l1-m1"
    assert machine.timezone == "Europe/Berlin"
    assert [s.name for s in machine.signals] == ["temperature", "motor_current"]
    assert model.products[0].ideal_cycle_s == {"hh-press-l1-m1": 3.5, "hh-press-l1-m2": 4.5}
    assert "hh" in model.calendars


def test_descendants_of_a_site_are_its_areas_lines_and_machines(example_model: dict) -> None:
    model = parse_asset_model(example_model)
    assert descendants(model.assets, "hh-press-l1") == {"hh-press-l1", "hh-press-l1-m1", "hh-press-l1-m2"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["sites"][0].pop("timezone"), "timezone is required"),
        (lambda d: d["sites"][0]["areas"][0].update(id="bad id"), "not a valid id"),
        (
            lambda d: d["sites"][0]["areas"][0]["lines"][0]["machines"][1].update(id="hh-press-l1-m1"),
            "used more than once",
        ),
        (lambda d: d["sites"][0]["areas"][0]["lines"][0]["machines"][0].update(ideal_cycle_s=0), "positive"),
        (lambda d: d["products"][0]["ideal_cycle_s"].update({"nowhere": 2.0}), "unknown machine"),
        (lambda d: d.update(sites={"hh": {}}), "must be a list"),
        (lambda d: d["sites"][0].update(timezone="Mars/Olympus"), "unknown time zone"),
        (lambda d: d["sites"][0]["calendar"]["shifts"][0].update(start="6 o'clock"), r"sites\[0\]\.calendar"),
        (lambda d: d["sites"][0]["calendar"].update(holidays=["Christmas"]), "ISO dates"),
    ],
)
def test_invalid_models_are_refused_with_a_specific_message(
    example_model: dict, change, message: str
) -> None:
    doc = copy.deepcopy(example_model)
    change(doc)
    with pytest.raises(InputError, match=message):
        parse_asset_model(doc)


def test_an_id_with_a_trailing_newline_is_refused(example_model: dict) -> None:
    example_model["sites"][0]["id"] = "hh\n"
    with pytest.raises(InputError, match="not a valid id"):
        parse_asset_model(example_model)
