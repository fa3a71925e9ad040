"""Shared set-up for the access tests: a provider with two plants, one shared and one not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from fastapi.testclient import TestClient

from leitstand.api.runtime import Runtime
from leitstand.domain.assets import parse_asset_model
from leitstand.domain.records import RecordKind


def plant(site: str, name: str) -> dict[str, Any]:
    return {
        "id": site,
        "name": name,
        "timezone": "Europe/Berlin",
        "areas": [
            {
                "id": f"{site}-a",
                "name": f"{name} area",
                "lines": [
                    {
                        "id": f"{site}-l",
                        "name": f"{name} line",
                        "machines": [
                            {
                                "id": f"{site}-m{i}",
                                "name": f"{name} machine {i}",
                                "ideal_cycle_s": 2.0,
                                "signals": [{"name": "temperature", "unit": "degC"}],
                            }
                            for i in (1, 2)
                        ],
                    }
                ],
            }
        ],
    }


def provider_model(enterprise: str, shared: str, secret: str) -> dict[str, Any]:
    """Plant `shared` is named SHARED-…, plant `secret` SECRET-…: a response that carries a name shows
    which plant it came from."""
    return {
        "enterprise": {"id": enterprise, "name": f"{enterprise} group"},
        "sites": [plant(shared, f"SHARED-{enterprise}"), plant(secret, f"SECRET-{enterprise}")],
    }


def feed(rt: Runtime, tenant: str, machines: list[str], hours: float = 2.0) -> None:
    """A running state and some counts for each machine over the last `hours`."""
    start = datetime.now(UTC) - timedelta(hours=hours)
    n = len(machines)
    rt.pipeline.send(
        tenant,
        RecordKind.STATES,
        pa.table({"asset_id": machines, "ts": [start] * n, "state": ["RUNNING"] * n, "reason": [None] * n}),
    )
    rt.pipeline.send(
        tenant,
        RecordKind.COUNTS,
        pa.table(
            {
                "asset_id": machines,
                "ts": [start + timedelta(minutes=5)] * n,
                "produced": [100] * n,
                "scrap": [1] * n,
            }
        ),
    )


SHARED_MACHINES = ["north-m1", "north-m2"]
SECRET_MACHINES = ["south-m1", "south-m2"]


def setup_provider(rt: Runtime) -> None:
    """acme gets plants `north` (to be shared) and `south` (never shared), both running."""
    rt.metadata.import_asset_model("acme", parse_asset_model(provider_model("acme", "north", "south")))
    feed(rt, "acme", SHARED_MACHINES + SECRET_MACHINES)


def offer(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body = {
        "consumer": "rival",
        "name": "OEE and states of plant north",
        "scope": "north",
        "kinds": ["kpi", "assets", "live"],
        "purpose": "cx.quality.base:1",
        "framework": "Quality:1.0",
        **overrides,
    }
    response = client.post("/api/v1/agreements", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
