"""Shared fixtures: a runtime on temporary stores, an API client, and a real server with demo data."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from fastapi.testclient import TestClient

from leitstand.api.app import create_app
from leitstand.api.runtime import Runtime
from leitstand.api.settings import load_settings
from leitstand.domain.assets import parse_asset_model
from leitstand.domain.tenancy import Role

EXAMPLE_MODEL = Path(__file__).parent.parent / "examples" / "asset-model.yaml"
PASSWORD = "correct horse battery"
# Limits high enough that only the tests of the limits meet them.
TEST_SETTINGS: dict[str, object] = {
    "ingest_queue_records": 100_000,
    "login_attempts_per_min": 100_000,
    "tenant_requests_per_s": 100_000,
    "tenant_request_burst": 100_000,
    # the tests' connections are disabled or on loopback
    "connection_allowed_hosts": ["127.0.0.1"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def example_model() -> dict[str, object]:
    return yaml.safe_load(EXAMPLE_MODEL.read_text())  # type: ignore[no-any-return]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime on fresh stores with two tenants (acme, rival), each with an admin and a viewer."""
    rt = Runtime.build(load_settings(data_dir=tmp_path / "data", **TEST_SETTINGS))
    for tenant in ("acme", "rival"):
        rt.identity.create_tenant(tenant, tenant.title())
        rt.identity.create_user(tenant, f"{tenant}-admin", PASSWORD, Role.TENANT_ADMIN)
        rt.identity.create_user(tenant, f"{tenant}-viewer", PASSWORD, Role.VIEWER)
    model = parse_asset_model(yaml.safe_load(EXAMPLE_MODEL.read_text()))
    rt.metadata.import_asset_model("acme", model)
    yield rt
    rt.stop()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as c:
        yield c


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
def admin(client: TestClient) -> dict[str, str]:
    return login(client, "acme-admin")


@dataclass
class DemoServer:
    """A real uvicorn server on loopback with a simulated enterprise and a few hours of history."""

    base_url: str
    username: str
    password: str
    token: str
    runtime: Runtime
    _simulator: object
    _clock: list[datetime]
    suppliers: dict[str, str]  # user name -> password of each supplier tenant's admin

    def ingest_more(self, minutes: int = 5) -> None:
        """Feed the next minutes of simulated data through the HTTP API (live pages update)."""
        from leitstand.sim.http_sink import HttpSink

        start = self._clock[0]
        end = min(start + timedelta(minutes=minutes), datetime.now(UTC))
        with HttpSink(self.base_url, self.token) as sink:
            self._simulator.backfill(sink, "nordwerk", start, end)  # type: ignore[attr-defined]
        self._clock[0] = end


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    from leitstand.cli.demo import seed_demo

    port = free_port()
    data_dir = tmp_path_factory.mktemp("demo")
    # A Unified Namespace connection on the machine's broker, for the connections page.
    uns = {
        "protocol": "mqtt",
        "name": "plant-uns",
        "tenant": "nordwerk",
        "broker": {"client_id": f"leitstand-test-{port}"},
    }
    rt = Runtime.build(load_settings(data_dir=data_dir, port=port, live_interval_s=0.5, connections=[uns]))
    rt.start()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    resume = now - timedelta(minutes=30)
    # History covers the pages' 24-hour window, so planned time in it (a Friday evening, seen on a
    # Saturday) has its records; 10 hours left plants at 0 % OEE on weekends.
    feeds, access = seed_demo(rt, plants=2, history=timedelta(hours=26), end=resume)
    server = uvicorn.Server(uvicorn.Config(create_app(rt), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("demo server did not start")
        time.sleep(0.05)
    assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    yield DemoServer(
        f"http://127.0.0.1:{port}",
        access.username,
        access.password,
        access.token,
        rt,
        feeds[0].simulator,
        [resume],
        {a.username: a.password for a in access.suppliers},
    )
    server.should_exit = True
    thread.join(timeout=15)
