"""Live data: the SSE stream pushes a snapshot at once and again after new data commits."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from fastapi.testclient import TestClient

from leitstand.api.runtime import Runtime
from tests.conftest import DemoServer


def snapshots(response: httpx.Response, deadline: float):
    event = None
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            raise TimeoutError("no snapshot in time")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "snapshot":
            yield orjson.loads(line[6:])


def test_the_stream_sends_a_snapshot_now_and_another_after_new_data(demo_server: DemoServer) -> None:
    headers = {"authorization": f"Bearer {demo_server.token}"}
    deadline = time.monotonic() + 30
    with httpx.stream(
        "GET", f"{demo_server.base_url}/api/v1/live/stream?hours=8", headers=headers, timeout=30
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = snapshots(response, deadline)
        first = next(stream)
        assert {r["level"] for r in first["oee"]} >= {"enterprise", "site", "machine"}
        assert first["states"], "machines report their current state"
        demo_server.ingest_more(minutes=3)  # commits while the stream paces itself: must not be missed
        second = next(stream)
    assert second["generated_at"] > first["generated_at"]


def test_a_running_machine_shows_no_stale_reason(client: TestClient, admin: dict, runtime: Runtime) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    records = [
        {
            "asset_id": "hh-press-l1-m1",
            "ts": (now - timedelta(minutes=5)).isoformat(),
            "state": "DOWN",
            "reason": "TOOL_BREAK",
        },
        {"asset_id": "hh-press-l1-m1", "ts": now.isoformat(), "state": "RUNNING"},
    ]
    client.post("/api/v1/ingest/states", json=records, headers=admin)
    states = client.get("/api/v1/live/snapshot", headers=admin).json()["states"]
    assert states == [
        {"asset_id": "hh-press-l1-m1", "state": "RUNNING", "reason": None, "since": now.isoformat()}
    ]


def test_the_session_cookie_is_secure_when_configured(tmp_path) -> None:
    from leitstand.api.app import create_app
    from leitstand.api.settings import load_settings
    from leitstand.domain.tenancy import Role
    from tests.conftest import PASSWORD

    rt = Runtime.build(load_settings(data_dir=tmp_path, session_cookie_secure=True))
    rt.identity.create_tenant("acme", "ACME")
    rt.identity.create_user("acme", "ada", PASSWORD, Role.VIEWER)
    with TestClient(create_app(rt)) as client:
        api = client.post("/api/v1/auth/login", json={"username": "ada", "password": PASSWORD})
        page = client.post(
            "/login",
            data={"username": "ada", "password": PASSWORD},
            headers={"origin": "http://testserver"},
            follow_redirects=False,
        )
    assert "secure" in api.headers["set-cookie"].lower()
    assert "secure" in page.headers["set-cookie"].lower()


def test_a_stream_ends_when_its_session_is_logged_out(demo_server: DemoServer) -> None:
    login = httpx.post(
        f"{demo_server.base_url}/api/v1/auth/login",
        json={"username": demo_server.username, "password": demo_server.password},
    )
    token = login.json()["token"]
    headers = {"authorization": f"Bearer {token}"}
    events: list[str] = []
    with httpx.stream(
        "GET", f"{demo_server.base_url}/api/v1/live/stream?hours=1", headers=headers, timeout=30
    ) as response:
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("event: "):
                events.append(line[7:])
                if events == ["snapshot"]:
                    httpx.post(f"{demo_server.base_url}/api/v1/auth/logout", headers=headers)
                    demo_server.ingest_more(minutes=1)  # wakes the stream, which re-checks its credential
                if line == "event: end":
                    break
    assert events[0] == "snapshot"
    assert events[-1] == "end"
