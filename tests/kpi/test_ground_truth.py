"""OEE from the query engine agrees with the simulator's ground truth, through the real ingest path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leitstand.api.runtime import Runtime
from leitstand.api.settings import load_settings
from leitstand.domain.assets import parse_asset_model
from leitstand.sim.enterprise import enterprise_model
from leitstand.sim.feed import Simulator

TENANT = "nordwerk"
KEYS = (
    "pot_s",
    "planned_down_s",
    "production_s",
    "setup_s",
    "delay_s",
    "down_s",
    "unknown_s",
    "produced",
    "scrap",
    "ideal_s",
    "good_ideal_s",
)


@pytest.fixture(scope="module")
def simulated(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Runtime, Simulator, datetime, datetime]]:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=2, hours=7)  # crosses shift changes, breaks and midnight in every zone
    data_dir: Path = tmp_path_factory.mktemp("truth")
    rt = Runtime.build(load_settings(data_dir=data_dir))
    rt.start()
    rt.identity.create_tenant(TENANT, "Nordwerk")
    doc = enterprise_model(plants=2, seed=11)
    rt.metadata.import_asset_model(TENANT, parse_asset_model(doc))
    simulator = Simulator(doc, seed=11)
    simulator.backfill(rt.pipeline, TENANT, start, end)
    yield rt, simulator, start, end
    rt.stop()


def by_machine(rows: list[dict]) -> dict[str, dict]:
    return {r["id"]: r["inputs"] for r in rows if r["level"] == "machine"}


@pytest.mark.parametrize("hours", [(0, 55), (3, 29), (30, 31)])
def test_every_machines_time_model_matches_the_ground_truth(simulated, hours: tuple[int, int]) -> None:
    rt, simulator, start, _end = simulated
    lo, hi = start + timedelta(hours=hours[0]), start + timedelta(hours=hours[1])
    computed = by_machine(rt.oee.compute(TENANT, lo, hi).rows)
    truth = simulator.ground_truth.oee_times(lo, hi)
    assert set(computed) == set(truth)
    assert sum(t["production_s"] for t in truth.values()) > 0
    for machine, expected in truth.items():
        for key in KEYS:
            assert computed[machine][key] == pytest.approx(expected[key], rel=1e-9, abs=1e-6), (machine, key)


def test_the_enterprise_oee_is_the_ratio_of_summed_truth(simulated) -> None:
    rt, simulator, start, end = simulated
    rows = rt.oee.compute(TENANT, start, end).rows
    enterprise = next(r for r in rows if r["level"] == "enterprise")
    truth = simulator.ground_truth.oee_times(start, end).values()
    pbt = sum(t["pot_s"] - t["planned_down_s"] for t in truth)
    assert enterprise["oee"] == pytest.approx(sum(t["good_ideal_s"] for t in truth) / pbt)
    assert 0.4 < enterprise["oee"] < 0.95
