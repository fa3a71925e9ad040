"""Roll-ups by product: quantities, ideal times and quality per product, from counts in planned time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
from fastapi.testclient import TestClient

from leitstand.api.runtime import Runtime
from leitstand.domain.records import COUNTS, RecordKind
from leitstand.kpi.products import products
from leitstand.store.interfaces import WriteBatch
from tests.kpi.test_oee import MODEL, at, write_counts, write_states

PRODUCTS_MODEL = {
    **MODEL,
    "products": [
        {"id": "sedan", "name": "Sedan door", "ideal_cycle_s": {"m1": 2.0}},
        {"id": "suv", "name": "SUV door"},  # no own cycle time: the machines' defaults apply
    ],
}


def test_each_product_gets_its_quantities_ideal_time_and_share(kpi_stores) -> None:
    events, oee, _ = kpi_stores(PRODUCTS_MODEL)
    write_states(events, [("m1", at(0), "RUNNING"), ("m2", at(0), "RUNNING")])
    write_counts(events, [("m1", at(10), 100, 4)], product="sedan", rework=[6])
    write_counts(events, [("m1", at(20), 50, 0), ("m2", at(20), 50, 5)], product="suv")
    write_counts(events, [("m1", at(-30), 999, 0)], product="sedan")  # before the shift: not planned
    rows = {r["product_id"]: r for r in products(oee, "acme", at(-60), at(60)).rows}
    sedan, suv = rows["sedan"], rows["suv"]
    assert (sedan["name"], sedan["machines"]) == ("Sedan door", 1)
    assert sedan["inputs"]["produced"] == 100
    assert (sedan["inputs"]["good"], sedan["inputs"]["scrap"], sedan["inputs"]["rework"]) == (90, 4, 6)
    assert sedan["inputs"]["ideal_s"] == 200.0  # 100 units × its own 2 s on m1
    assert (sedan["quality_ratio"], sedan["scrap_ratio"], sedan["rework_ratio"]) == (0.9, 0.04, 0.06)
    assert suv["machines"] == 2
    assert suv["inputs"]["ideal_s"] == 50 * 1.0 + 50 * 2.0  # m1 and m2 defaults
    assert sedan["ideal_time_share"] + suv["ideal_time_share"] == 1.0
    assert sedan["ideal_time_share"] == 200 / 350
    # the products of one line only, and the same window's OEE counts the same units
    line = products(oee, "acme", at(-60), at(60), within="l1").rows
    oee_m1 = next(r for r in oee.compute("acme", at(-60), at(60)).rows if r["id"] == "m1")
    assert sum(r["inputs"]["produced"] for r in line if r["product_id"] == "sedan") == 100
    assert oee_m1["inputs"]["produced"] == 150


def test_the_products_endpoint(runtime: Runtime, client: TestClient, admin: dict) -> None:
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=7)
    piece = runtime.oee.planned("acme", start, end).slice(0, 1).to_pylist()[0]  # some planned time
    machine = "hh-press-l1-m1"
    runtime.events.write(
        [
            WriteBatch(
                RecordKind.COUNTS,
                pa.Table.from_pylist(
                    [
                        {
                            "tenant": "acme",
                            "asset_id": machine,
                            "ts": piece["end_ts"] - timedelta(seconds=i),
                            "product_id": p,
                            "produced": n,
                            "scrap": 0,
                            "rework": 0,
                        }
                        for i, (p, n) in enumerate((("door-inner-left", 10), (None, 4)))
                    ],
                    schema=COUNTS.schema,
                ),
            )
        ]
    )
    window = f"start={start.isoformat()}&end={end.isoformat()}".replace("+", "%2B")
    answer = client.get(f"/api/v1/kpi/products?{window}", headers=admin).json()
    rows = {r["product_id"]: r for r in answer["rows"]}
    assert rows["door-inner-left"]["inputs"]["produced"] == 10
    assert rows["door-inner-left"]["inputs"]["ideal_s"] == 35.0  # its own 3.5 s on this press
    assert rows[None]["inputs"]["produced"] == 4  # units without a product are shown, not dropped
    assert rows[None]["name"] is None
