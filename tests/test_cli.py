"""The `leitstand` command: demo, serve, simulate, import-assets and create-user, each really run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from leitstand.cli import app
from tests.brokers import Mosquitto
from tests.conftest import EXAMPLE_MODEL, DemoServer, free_port

LEITSTAND = [sys.executable, "-m", "leitstand.cli"]


def wait_until(predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise TimeoutError("condition not met in time")


def test_demo_prints_and_writes_credentials_that_log_in(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "demo"
    process = subprocess.Popen(
        [
            *LEITSTAND,
            "demo",
            "--plants",
            "1",
            "--history-days",
            "0.3",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--duration",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: (data_dir / "credentials.json").exists())
        credentials = json.loads((data_dir / "credentials.json").read_text())
        url = credentials["url"]
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200)
        login = httpx.post(
            f"{url}/api/v1/auth/login",
            json={"username": credentials["username"], "password": credentials["password"]},
        )
        assert login.status_code == 200
        records = httpx.get(
            f"{url}/api/v1/records", headers={"authorization": f"Bearer {credentials['token']}"}
        )
        assert records.json()["states"]["count"] > 0
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "Leitstand demo ready" in output
    assert credentials["password"] in output


def test_serve_uses_create_user_and_import_assets_from_the_same_data_dir(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"LEITSTAND_NEW_PASSWORD": "a long enough password"}
    created = runner.invoke(
        app,
        ["create-user", "ops", "--tenant", "acme", "--role", "tenant_admin", "--data-dir", str(tmp_path)],
        env=env,
    )
    assert created.exit_code == 0, created.output
    imported = runner.invoke(
        app, ["import-assets", str(EXAMPLE_MODEL), "--tenant", "acme", "--data-dir", str(tmp_path)]
    )
    assert imported.exit_code == 0, imported.output
    assert "assets_created" in imported.output
    port = free_port()
    server = subprocess.Popen(
        [*LEITSTAND, "serve", "--data-dir", str(tmp_path), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LEITSTAND_LOG_LEVEL": "WARNING"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200)
        token = httpx.post(
            f"{url}/api/v1/auth/login", json={"username": "ops", "password": "a long enough password"}
        ).json()["token"]
        assets = httpx.get(f"{url}/api/v1/assets", headers={"authorization": f"Bearer {token}"}).json()
        assert len(assets["assets"]) == 6
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_create_user_refuses_a_short_password_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["create-user", "ops", "--tenant", "acme", "--data-dir", str(tmp_path)],
        env={"LEITSTAND_NEW_PASSWORD": "short"},
    )
    assert result.exit_code == 2
    assert "at least 12 characters" in result.output


def test_a_bad_config_file_names_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "leitstand.yaml"
    config.write_text("port: not-a-number\n")
    result = CliRunner().invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "port" in result.output


def test_simulate_feeds_a_running_server_over_http(demo_server: DemoServer) -> None:
    headers = {"authorization": f"Bearer {demo_server.token}"}
    before = httpx.get(f"{demo_server.base_url}/api/v1/records", headers=headers).json()
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--url",
            demo_server.base_url,
            "--token",
            demo_server.token,
            "--plants",
            "2",
            "--history-hours",
            "0.5",
            "--duration",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    after = httpx.get(f"{demo_server.base_url}/api/v1/records", headers=headers).json()
    assert after["samples"]["count"] > before["samples"]["count"]


def test_mqtt_acl_writes_each_gateways_site_topics_and_rotate_keys_retires(tmp_path: Path) -> None:
    from datetime import timedelta

    from leitstand.access.audit import AuditLog
    from leitstand.access.identity import IdentityService
    from leitstand.access.tokens import KeyRing
    from leitstand.store.sql import SqlMetadataStore

    runner = CliRunner()
    env = {"LEITSTAND_NEW_PASSWORD": "a long enough password", "LEITSTAND_MQTT_PASSWORD": "ingest secret"}
    created = runner.invoke(
        app, ["create-user", "ops", "--tenant", "acme", "--data-dir", str(tmp_path)], env=env
    )
    assert created.exit_code == 0, created.output
    metadata = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    keys = KeyRing(metadata, "leitstand")
    identity = IdentityService(metadata, keys, AuditLog(metadata))
    _, token, _ = identity.create_gateway("acme", "gw-1", "hh", timedelta(days=1))
    result = runner.invoke(
        app, ["mqtt-acl", "--out", str(tmp_path / "mqtt"), "--data-dir", str(tmp_path)], env=env
    )
    assert result.exit_code == 0, result.output
    acl = (tmp_path / "mqtt" / "acl").read_text()
    assert "user acme/gw-1\ntopic write acme/hh/#" in acl
    assert "user leitstand-ingest" in acl
    passwd = (tmp_path / "mqtt" / "passwd").read_text()
    assert passwd.count("$7$") == 2
    assert token not in passwd

    rotated = runner.invoke(app, ["rotate-keys", "--retire-others", "--data-dir", str(tmp_path)])
    assert rotated.exit_code == 0, rotated.output
    assert [k.retired_at is None for k in metadata.signing_keys()] == [False, True]
    actions = {e.action: e.actor for e in metadata.audit("platform")}
    assert actions["keys_rotated"].startswith("cli:")
    assert {e.action for e in metadata.audit("acme")} >= {
        "tenant_created",
        "user_created",
        "gateway_created",
    } - {"gateway_created"}
    metadata.close()


@pytest.mark.parametrize(("via", "connection"), [("mqtt", "demo-uns"), ("sparkplug", "demo-sparkplug")])
def test_demo_via_a_broker_runs_through_a_real_broker(tmp_path: Path, via: str, connection: str) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    port = free_port()
    data_dir = tmp_path / "demo"
    process = subprocess.Popen(
        [
            *LEITSTAND,
            "demo",
            "--via",
            via,
            "--broker",
            f"127.0.0.1:{broker.port}",
            "--plants",
            "1",
            "--history-days",
            "0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--duration",
            "90",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: (data_dir / "credentials.json").exists(), 120)
        credentials = json.loads((data_dir / "credentials.json").read_text())
        headers = {"authorization": f"Bearer {credentials['token']}"}
        url = credentials["url"]
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200)
        records = httpx.get(f"{url}/api/v1/records", headers=headers).json()
        [link] = httpx.get(f"{url}/api/v1/connections", headers=headers).json()["connections"]
        assert link["name"] == connection
        assert link["health"]["state"] == "connected"
        # every stored record came through the broker: the connection handed over at least as many
        # (no counts on a weekend: the simulated plants work Monday to Friday)
        assert records["samples"]["count"] > 0
        assert records["states"]["count"] > 0
        assert link["health"]["records"] >= sum(records[k]["count"] for k in ("samples", "states", "counts"))
        assert link["health"]["errors"] == {}, link["health"]
        assert "leitstand-sim-" in broker.log_text()  # the simulated machines published there
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
        broker.stop()
    assert "Leitstand demo ready" in output
