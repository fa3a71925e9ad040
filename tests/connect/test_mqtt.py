"""The MQTT Unified Namespace connector against real mosquitto brokers: the machine's on 1883 and ones
this module starts (restarts, TLS, logins)."""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from leitstand.access.mosquitto import mosquitto_password_hash
from leitstand.api.runtime import Runtime
from leitstand.connect.assets import ModelRegistrar
from leitstand.connect.base import LinkState
from leitstand.connect.mqtt.client import MqttConnector
from leitstand.connect.mqtt.config import BrokerConfig, MqttConfig
from leitstand.connect.mqtt.decode import UnsDecoder, parse_topic
from leitstand.domain.records import RecordKind
from leitstand.ingest.conform import Decoded
from leitstand.ingest.sink import IngestResult, RecordTarget
from tests.brokers import Mosquitto
from tests.connect.helpers import count, wait_for

MACHINE = "acme/hh/hh-press/hh-press-l1/hh-press-l1-m1"


def reject_codes(rt: Runtime) -> list[str]:
    return sorted(rt.events.rejects("acme", limit=1000)["reason_code"].to_pylist())


class Publisher:
    """A plain paho client publishing as a machine would; `acked` holds what the broker acknowledged."""

    def __init__(self, port: int = 1883, version: str = "5", persistent: bool = False, **login: Any) -> None:
        v5 = version == "5"
        self.paho = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else not persistent,
        )
        if login.get("username"):
            self.paho.username_pw_set(login["username"], login.get("password"))
        if login.get("ca_file"):
            self.paho.tls_set(ca_certs=str(login["ca_file"]), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.acked: set[int] = set()
        self._lock = threading.Lock()
        self.paho.on_publish = self._on_publish
        self.paho.reconnect_delay_set(1, 2)
        self.paho.connect(
            "127.0.0.1", port, 30, clean_start=not persistent if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY
        )
        self.paho.loop_start()

    def _on_publish(self, _c: Any, _u: Any, mid: int, _r: Any, _p: Any) -> None:
        with self._lock:
            self.acked.add(mid)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> int:
        info = self.paho.publish(topic, payload, qos)
        return int(info.mid)

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()
        self.paho._reset_sockets()


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    p = Publisher()
    yield p
    p.close()


@pytest.fixture
def started(runtime: Runtime) -> Runtime:
    runtime.pipeline.start()
    return runtime


def connector(
    rt: Runtime, port: int = 1883, target: RecordTarget | None = None, **options: Any
) -> MqttConnector:
    broker = BrokerConfig(port=port, client_id=f"ls-{uuid.uuid4().hex[:8]}", **options.pop("broker", {}))
    config = MqttConfig(name="uns", tenant="acme", broker=broker, **options)
    c = MqttConnector(config, target or rt.pipeline, ModelRegistrar(rt.metadata, rt.asset_cache))
    c.start()
    wait_for(lambda: c.health.state is LinkState.CONNECTED, "the connector to connect")
    return c


def sample(ts: datetime, value: float) -> bytes:
    return orjson.dumps({"ts": ts.isoformat(), "value": value})


# topics and payloads -----------------------------------------------------------------------------


def test_topic_tree() -> None:
    t = parse_topic(f"{MACHINE}/samples/temperature", "acme")
    assert (t.kind, t.asset_id, t.signal, len(t.path)) == (
        RecordKind.SAMPLES,
        "hh-press-l1-m1",
        "temperature",
        5,
    )
    assert parse_topic("acme/hh/state", "acme").asset_id == "hh"
    assert parse_topic(f"{MACHINE}/count", "acme").kind is RecordKind.COUNTS
    for topic, code in [
        (f"{MACHINE}/temperature", "unknown_topic"),
        ("acme/state", "invalid_topic"),
        (f"{MACHINE}/extra/samples/t", "invalid_topic"),
        ("acme/hh/bad level/state", "invalid_topic"),
    ]:
        decoded = UnsDecoder("acme", 1024).decode([topic], [b"1"], [0.0])
        assert [r.code for r in decoded[RecordKind.SAMPLES].rejects] == [code], topic
    # another enterprise's message is counted, not stored in this tenant's dead letters
    decoder = UnsDecoder("acme", 1024)
    decoded = decoder.decode(["rival/hh/state"], [b'"SECRET"'], [0.0])
    assert all(not d.rejects and not d.table.num_rows for d in decoded.values())
    assert decoder.foreign == 1


def test_payload_forms_and_faults() -> None:
    now = time.time()
    ts_ms = int(now * 1000)
    topic = f"{MACHINE}/samples/temperature"
    messages = [
        (topic, b'{"ts": "2026-11-21T10:00:00Z", "value": 21.5}'),
        (topic, b'{"timestamp_ms": %d, "value": 22}' % ts_ms),
        (topic, b"23.5"),  # a bare value, stamped with its arrival
        (topic, b"true"),
        (topic, b'[{"timestamp_ms": 1, "value": 1}, {"timestamp_ms": 2, "value": "x"}]'),
        (topic, b"\xff\xfe not utf-8"),
        (topic, b'{"ts": '),
        (topic, b'{"ts": "2026-11-21T10:00:00Z", "value": 1, "asset_id": "other"}'),
        (topic, b'{"value": 1}'),
        (topic, b'"a string"'),
        (topic, b"[" + b"1," * 600 + b"1]"),
        (topic, b'{"timestamp_ms": 1e300, "value": 1}'),  # the column path checks these per batch
        (topic, b'{"timestamp_ms": 18446744073709551615, "value": 2}'),
        (topic, b'{"timestamp_ms": 1, "value": 1e999}'),
        (f"{MACHINE}/state", b'"EXECUTE"'),
        (f"{MACHINE}/state", b'{"ts": "2026-11-21T10:00:00Z", "state": "HELD", "reason": "jam"}'),
        (f"{MACHINE}/count", b'{"ts": "2026-11-21T10:00:00Z", "produced": 10, "scrap": 1}'),
        (f"{MACHINE}/count", b"5"),
    ]
    decoded = UnsDecoder("acme", 1024).decode(
        [t for t, _ in messages], [p for _, p in messages], [now] * len(messages)
    )
    samples = decoded[RecordKind.SAMPLES]
    # the common {"timestamp_ms", "value"} form comes first (it is decoded as columns), then the rest
    assert samples.table["value"].to_pylist() == [22.0, 21.5, 23.5, 1.0, 1.0]
    assert samples.table["ts"][0].as_py() == datetime.fromtimestamp(ts_ms / 1000, UTC)
    assert abs(samples.table["ts"][2].as_py().timestamp() - now) < 1e-3
    assert set(samples.table["asset_id"].to_pylist()) == {"hh-press-l1-m1"}
    assert [r.code for r in samples.rejects] == [
        "invalid_timestamp",
        "invalid_timestamp",
        "wrong_type",
        "invalid_utf8",
        "invalid_json",
        "field_in_topic",
        "missing_field",
        "wrong_type",
        "payload_too_large",
        "invalid_json",  # 1e999 is no finite number
    ]
    assert samples.rejects[3].raw["payload_hex"].startswith("fffe")
    assert decoded[RecordKind.STATES].table["state"].to_pylist() == ["EXECUTE", "HELD"]
    counts = decoded[RecordKind.COUNTS]
    assert counts.table["produced"].to_pylist() == [10]
    assert [r.code for r in counts.rejects] == ["wrong_type"]


# against a broker --------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "qos"), [("3.1.1", 1), ("5", 1), ("5", 0)])
def test_records_arrive_and_bad_messages_are_dead_lettered(
    started: Runtime, version: str, qos: int, publisher: Publisher
) -> None:
    c = connector(started, broker={"mqtt_version": version}, qos=qos)
    try:
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        for i in range(200):
            publisher.publish(
                f"{MACHINE}/samples/temperature", sample(t0 + timedelta(seconds=i), 20 + i / 10)
            )
        publisher.publish(f"{MACHINE}/state", orjson.dumps({"ts": t0.isoformat(), "state": "EXECUTE"}))
        publisher.publish(f"{MACHINE}/count", orjson.dumps({"ts": t0.isoformat(), "produced": 7}))
        publisher.publish(f"{MACHINE}/samples/temperature", b"{not json")
        publisher.publish(f"{MACHINE}/samples/no_such_signal", sample(t0, 1.0))
        publisher.publish("acme/hh/hh-press/hh-press-l1/ghost/state", b'"EXECUTE"')
        # the connection goes on after bad input
        publisher.publish(f"{MACHINE}/samples/motor_current", sample(t0, 3.0))
        wait_for(lambda: count(started, "samples") == 201 and len(reject_codes(started)) == 3, "records")
        assert count(started, "states") == 1
        assert count(started, "counts", "produced = 7") == 1
        assert reject_codes(started) == ["invalid_json", "unknown_asset", "unknown_signal"]
        health = c.health.snapshot()
        assert health["state"] == "connected"
        assert health["messages"] == 206
        assert health["errors"] == {"invalid_json": 1}  # the other two are refused by ingest's checks
    finally:
        c.stop()
    assert c.health.state is LinkState.STOPPED


def test_unknown_assets_are_created_when_the_policy_allows(started: Runtime, publisher: Publisher) -> None:
    c = connector(started, unknown_assets="create")
    try:
        now = datetime.now(UTC) - timedelta(minutes=1)
        publisher.publish("acme/hh/hh-paint/hh-paint-l1/hh-paint-l1-m7/samples/humidity", sample(now, 40.0))
        publisher.publish(f"{MACHINE}/samples/pressure", sample(now, 2.0))
        wait_for(lambda: count(started, "samples") == 2, "records of new assets")
    finally:
        c.stop()
    assets = {a.id: a for a in started.asset_cache.assets("acme")}
    assert assets["hh-paint"].level.value == "area"
    assert assets["hh-paint-l1"].parent_id == "hh-paint"
    m7 = assets["hh-paint-l1-m7"]
    assert (m7.level.value, m7.path) == ("machine", "acme/hh/hh-paint/hh-paint-l1/hh-paint-l1-m7")
    assert [s.name for s in m7.signals] == ["humidity"]
    assert "pressure" in {s.name for s in assets["hh-press-l1-m1"].signals}
    assert reject_codes(started) == []


def test_shared_subscription_splits_the_load(started: Runtime, publisher: Publisher) -> None:
    group = f"g{uuid.uuid4().hex[:6]}"
    a = connector(started, shared_group=group)
    b = connector(started, shared_group=group)
    try:
        t0 = datetime.now(UTC) - timedelta(minutes=10)
        for i in range(400):
            publisher.publish(f"{MACHINE}/samples/temperature", sample(t0 + timedelta(seconds=i), float(i)))
        wait_for(lambda: count(started, "samples") == 400, "all records")
        assert a.health.messages + b.health.messages == 400  # each message went to one of them
        assert a.health.messages > 0
        assert b.health.messages > 0
    finally:
        a.stop()
        b.stop()


def test_broker_restart_loses_nothing_acknowledged(started: Runtime, tmp_path: Path) -> None:
    """QoS 1 across a broker restart: every message the broker acknowledged to the machine is stored."""
    broker = Mosquitto(
        tmp_path, f"allow_anonymous true\npersistence true\npersistence_location {tmp_path}/\n"
    )
    broker.start()
    c = connector(started, port=broker.port)
    machine = Publisher(broker.port, persistent=True)
    mids: dict[int, int] = {}
    try:
        t0 = datetime.now(UTC) - timedelta(hours=1)
        for i in range(3000):
            if i == 1500:
                broker.restart()
            mids[machine.publish(f"{MACHINE}/samples/temperature", sample(t0 + timedelta(seconds=i), i))] = i
            if i % 100 == 0:
                time.sleep(0.01)
        wait_for(lambda: c.health.state is LinkState.CONNECTED, "the connector to reconnect")
        wait_for(lambda: len(machine.acked) > 2000, "the machine's publisher to be acknowledged", 30)
        acked = {mids[m] for m in machine.acked if m in mids}
        stored = lambda: set(  # noqa: E731
            started.events.query("select value from samples where tenant = 'acme'")["value"].to_pylist()
        )
        wait_for(lambda: {float(i) for i in acked} <= stored(), "every acknowledged message to be stored", 30)
    finally:
        machine.close()
        c.stop()
        broker.stop()
    assert c.health.snapshot()["state"] == "stopped"


class FailsOnce:
    """Ingest whose first write with records fails (a full disk, say); the rest go to the pipeline."""

    def __init__(self, target: RecordTarget) -> None:
        self.target = target
        self.failed = 0

    def submit(self, tenant: str, kind: RecordKind, decoded: Decoded) -> Future[IngestResult]:
        if not self.failed and decoded.table.num_rows:
            self.failed = decoded.table.num_rows
            future: Future[IngestResult] = Future()
            future.set_exception(OSError("no space left on device"))
            return future
        return self.target.submit(tenant, kind, decoded)


def test_a_batch_that_is_not_stored_is_received_again(started: Runtime, publisher: Publisher) -> None:
    """Not acknowledged, and the connection reconnects: the broker sends the batch again."""
    failing = FailsOnce(started.pipeline)
    c = connector(started, target=failing)
    try:
        t0 = datetime.now(UTC) - timedelta(minutes=5)
        for i in range(50):
            publisher.publish(f"{MACHINE}/samples/temperature", sample(t0 + timedelta(seconds=i), float(i)))
        wait_for(lambda: count(started, "samples") == 50, "every message, the failed batch's again")
        assert failing.failed > 0
        assert c.health.errors["store_failed"] == 1
        assert c.health.state is LinkState.CONNECTED
    finally:
        c.stop()


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1, made for this test."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test ca"))
        .issuer_name(name("test ca"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def test_tls_with_username_and_password(started: Runtime, tmp_path: Path) -> None:
    ca, cert, key = _tls_files(tmp_path)
    (tmp_path / "passwd").write_text(
        f"leitstand:{mosquitto_password_hash('s3cret')}\nmachine:{mosquitto_password_hash('m')}\n"
    )
    broker = Mosquitto(
        tmp_path,
        f"allow_anonymous false\npassword_file {tmp_path}/passwd\n"
        f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n",
    ).start()
    try:
        tls = {"tls": {"ca_file": ca}}
        refused = MqttConnector(
            MqttConfig(
                name="uns",
                tenant="acme",
                broker=BrokerConfig(port=broker.port, username="leitstand", password="wrong", **tls),
            ),
            started.pipeline,
        )
        refused.start()
        wait_for(lambda: "connect_refused" in refused.health.errors, "a refused login to show in health")
        refused.stop()
        c = connector(
            started, port=broker.port, broker={"username": "leitstand", "password": "s3cret", **tls}
        )
        machine = Publisher(broker.port, username="machine", password="m", ca_file=ca)
        try:
            machine.publish(f"{MACHINE}/samples/temperature", sample(datetime.now(UTC), 30.0))
            wait_for(lambda: count(started, "samples") == 1, "a record over TLS")
        finally:
            machine.close()
            c.stop()
    finally:
        broker.stop()
