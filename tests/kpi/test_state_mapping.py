"""State mapping: a tenant's own state codes count where its model says — for the enterprise, per
machine type and per site (the site wins) — and a code nobody mapped is counted visibly as unknown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from leitstand.domain.assets import parse_asset_model
from leitstand.domain.errors import InputError
from leitstand.kpi.oee import OeeService
from leitstand.store.duckdb import DuckDBEventStore
from leitstand.store.sql import SqlMetadataStore
from tests.kpi.test_oee import DAY, write_states

HOUR = timedelta(hours=1)


def model(**extra: Any) -> dict[str, Any]:
    def machine(id_: str, type_: str) -> dict[str, Any]:
        return {"id": id_, "type": type_, "ideal_cycle_s": 1.0}

    return {
        "enterprise": {"id": "acme", "name": "ACME"},
        "state_mapping": {"WAIT_PARTS": "delay", "IDLE": "delay"},
        "machine_types": {"press": {"state_mapping": {"DIE_CHANGE": "setup", "IDLE": "down"}}},
        "sites": [
            {
                "id": "x",
                "timezone": "UTC",
                "areas": [
                    {
                        "id": "xa",
                        "lines": [
                            {"id": "xl", "machines": [machine("p1", "press"), machine("w1", "welder")]}
                        ],
                    }
                ],
            },
            {
                "id": "y",
                "timezone": "UTC",
                "state_mapping": {"IDLE": "planned_down"},
                "areas": [{"id": "ya", "lines": [{"id": "yl", "machines": [machine("p2", "press")]}]}],
            },
        ],
        **extra,
    }


@pytest.fixture
def oee(kpi_stores) -> tuple[DuckDBEventStore, OeeService, SqlMetadataStore]:
    return kpi_stores(model())


def inputs(service: OeeService) -> dict[str, dict[str, Any]]:
    rows = service.compute("acme", DAY, DAY + 4 * HOUR, level="machine").rows
    return {r["id"]: r["inputs"] for r in rows}


def test_each_machine_counts_its_codes_by_its_site_type_and_enterprise(oee) -> None:
    events, service, _ = oee
    # every machine: 1 h IDLE, 1 h DIE_CHANGE, 1 h WAIT_PARTS, 1 h in a code nobody mapped
    rows = []
    for m in ("p1", "w1", "p2"):
        rows += [(m, DAY, "IDLE"), (m, DAY + HOUR, "DIE_CHANGE"), (m, DAY + 2 * HOUR, "WAIT_PARTS")]
        rows += [(m, DAY + 3 * HOUR, "MYSTERY_42")]
    write_states(events, rows)
    got = inputs(service)
    h = 3600.0
    # p1, a press at site x: IDLE is down (type), DIE_CHANGE setup (type), WAIT_PARTS delay (enterprise)
    assert (got["p1"]["down_s"], got["p1"]["setup_s"], got["p1"]["delay_s"]) == (h, h, h)
    # w1, a welder: IDLE delay (enterprise), DIE_CHANGE means nothing for it: unknown, like MYSTERY_42
    assert (got["w1"]["delay_s"], got["w1"]["setup_s"], got["w1"]["unmapped_state_s"]) == (2 * h, 0, 2 * h)
    # p2, a press at site y: the site's IDLE (planned down) wins over the press's (down)
    assert (got["p2"]["planned_down_s"], got["p2"]["down_s"], got["p2"]["setup_s"]) == (h, 0, h)
    for m in ("p1", "p2"):  # the unmapped code is counted, never dropped
        assert got[m]["unmapped_state_s"] == h
        assert got[m]["unknown_s"] >= h


def test_the_mapping_survives_the_metadata_store(oee) -> None:
    _, _, metadata = oee
    stored = metadata.state_mapping("acme")
    assert stored == parse_asset_model(model()).state_mapping
    assert stored.sites == {"y": {"IDLE": "planned_down"}}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"state_mapping": {"IDLE": "lunch"}}, "'lunch' is not a time category"),
        ({"state_mapping": {"X" * 65: "delay"}}, "state codes are 1-64 characters"),
        ({"state_mapping": ["IDLE"]}, "must be a mapping of state codes"),
        (
            {"machine_types": {"press": {"state_mapping": {"IDLE": 3}}}},
            "machine_types.press.state_mapping.IDLE",
        ),
    ],
)
def test_a_bad_mapping_is_refused_with_its_place(extra: dict, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_asset_model(model(**extra))
