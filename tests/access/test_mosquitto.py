"""The generated Mosquitto password and ACL files, checked against a real mosquitto process."""

from __future__ import annotations

import base64
import hashlib
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from leitstand.access.mosquitto import (
    MqttAccount,
    gateway_account,
    mosquitto_password_hash,
    platform_account,
    render_acl,
    render_listener_config,
    render_password_file,
    write_mosquitto_files,
)
from leitstand.domain.errors import InputError
from tests.brokers import Mosquitto, find_binary, free_port

WAIT_S = 5.0
# Denied messages are not delivered, so the test waits this long for their absence after a marker.
QUIET_S = 0.3
PLATFORM_KEY = "platform-secret"
GW1_KEY = "lsk_acme_gw1_api_key"
GW2_KEY = "lsk_acme_gw2_api_key"
RIVAL_KEY = "lsk_rival_gw_api_key"


def base_accounts() -> list[MqttAccount]:
    return [
        platform_account("leitstand-platform", mosquitto_password_hash(PLATFORM_KEY)),
        gateway_account("acme", "gw-1", "plant-1", mosquitto_password_hash(GW1_KEY)),
        gateway_account("rival", "gw.1", "plant-1", mosquitto_password_hash(RIVAL_KEY)),
    ]


@dataclass
class Broker:
    port: int
    directory: Path
    mosquitto: Mosquitto

    def log_text(self) -> str:
        return self.mosquitto.log_text()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A real mosquitto on a free loopback port, configured only with the generated files."""
    directory = tmp_path / "mqtt"
    passwd, acl = write_mosquitto_files(directory, base_accounts())
    port = free_port()
    mosquitto = Mosquitto(tmp_path / "broker", render_listener_config(port, passwd, acl), port).start()
    try:
        yield Broker(port, directory, mosquitto)
    finally:
        mosquitto.stop()


class Client:
    """A paho MQTT v5 client whose every wait is bounded."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.port = port
        self.paho = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-{username.replace('/', '-')}-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        self.paho.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._acks: dict[int, list[ReasonCode]] = {}
        self._acked = threading.Condition()
        self.paho.on_connect = self._on_connect
        self.paho.on_publish = self._on_publish
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_message = self._on_message
        self.paho.on_disconnect = self._on_disconnect

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Properties | None) -> None:
        self.connack = reason
        self.connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _r: ReasonCode, _p: Properties | None) -> None:
        self.disconnected.set()

    def _ack(self, mid: int, reasons: list[ReasonCode]) -> None:
        with self._acked:
            self._acks[mid] = reasons
            self._acked.notify_all()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Properties) -> None:
        self._ack(mid, [reason])

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, reasons: list[ReasonCode], _p: Properties) -> None:
        self._ack(mid, list(reasons))

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put((message.topic, bytes(message.payload)))

    def connect(self) -> ReasonCode:
        self.paho.connect("127.0.0.1", self.port, keepalive=30)
        self.paho.loop_start()
        assert self.connected.wait(WAIT_S), "no CONNACK"
        assert self.connack is not None
        return self.connack

    def _wait_ack(self, mid: int) -> list[ReasonCode]:
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self._acks, WAIT_S), f"no acknowledgement of {mid}"
            return self._acks.pop(mid)

    def publish(self, topic: str, payload: bytes = b"x") -> ReasonCode:
        """Publish with QoS 1 and return the PUBACK's reason code."""
        info = self.paho.publish(topic, payload, qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish to {topic} was not sent: {info.rc}"
        return self._wait_ack(info.mid)[0]

    def subscribe(self, topic_filter: str) -> ReasonCode:
        """Subscribe with QoS 1 and return the SUBACK's reason code."""
        rc, mid = self.paho.subscribe(topic_filter, qos=1)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe to {topic_filter} was not sent: {rc}"
        assert mid is not None
        return self._wait_ack(mid)[0]

    def topics_until(self, marker: str) -> list[str]:
        """Topics received up to and including `marker`, then any arriving within QUIET_S after it."""
        seen: list[str] = []
        deadline = time.monotonic() + WAIT_S
        while marker not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{marker} was not received; got {seen}"
            try:
                seen.append(self.messages.get(timeout=remaining)[0])
            except queue.Empty:
                continue
        time.sleep(QUIET_S)
        while not self.messages.empty():
            seen.append(self.messages.get_nowait()[0])
        return seen

    def close(self) -> None:
        if self.connack is not None and not self.connack.is_failure:
            self.paho.disconnect()
        self.paho.loop_stop()
        self.paho._reset_sockets()  # paho leaves its wake-up socket pair to the garbage collector


ConnectFn = Callable[[str, str], Client]


@pytest.fixture
def connect(broker: Broker) -> Iterator[ConnectFn]:
    """Connects clients to the broker and closes them all afterwards."""
    clients: list[Client] = []

    def _connect(username: str, password: str) -> Client:
        client = Client(broker.port, username, password)
        clients.append(client)
        reason = client.connect()
        assert not reason.is_failure, f"{username} was refused: {reason}\n{broker.log_text()}"
        return client

    yield _connect
    for client in clients:
        client.close()


def try_login(port: int, username: str, password: str) -> ReasonCode:
    client = Client(port, username, password)
    try:
        return client.connect()
    finally:
        client.close()


def test_hash_is_mosquitto_pbkdf2_sha512_and_matches_mosquitto_passwd(tmp_path: Path) -> None:
    salt = bytes(range(12))
    value = mosquitto_password_hash("s3cret", salt=salt, iterations=101)
    kind, iterations, salt_b64, hash_b64 = value.split("$")[1:]
    assert (kind, iterations, base64.b64decode(salt_b64)) == ("7", "101", salt)
    assert base64.b64decode(hash_b64) == hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101, dklen=64)
    assert mosquitto_password_hash("s3cret") != mosquitto_password_hash("s3cret"), "salt must be random"

    # The real tool's hash for the same password is what we compute with its salt and iteration count.
    tool = find_binary("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
    passwd = tmp_path / "passwd"
    subprocess.run(
        [tool, "-c", "-b", str(passwd), "gw", "pässword"], check=True, capture_output=True, timeout=10
    )
    tool_hash = passwd.read_text().strip().split(":", 1)[1]
    _, kind, iterations, salt_b64, _ = tool_hash.split("$")
    assert kind == "7"
    ours = mosquitto_password_hash("pässword", salt=base64.b64decode(salt_b64), iterations=int(iterations))
    assert ours == tool_hash


def test_broker_accepts_our_hash_and_refuses_wrong_password(broker: Broker) -> None:
    assert not try_login(broker.port, "acme/gw-1", GW1_KEY).is_failure, broker.log_text()
    wrong = try_login(broker.port, "acme/gw-1", GW1_KEY + "x")
    assert wrong.is_failure
    assert wrong.getName() in ("Bad user name or password", "Not authorized"), wrong
    unknown = try_login(broker.port, "acme/gw-9", GW1_KEY)
    assert unknown.is_failure, "an unknown user must not log in"


def test_gateway_publishes_only_under_its_own_site(connect: ConnectFn) -> None:
    platform = connect("leitstand-platform", PLATFORM_KEY)
    assert platform.subscribe("#").getName() == "Granted QoS 1"
    gateway = connect("acme/gw-1", GW1_KEY)

    allowed = "acme/plant-1/body/line-1/press-1/temperature"
    assert not gateway.publish(allowed, b"21.5").is_failure
    denied = ["acme/plant-2/body/line-1/press-1/temperature", "rival/plant-1/body/line-1/press-1/temperature"]
    for topic in denied:
        reason = gateway.publish(topic, b"666")
        assert reason.getName() == "Not authorized", f"{topic}: {reason}"
    marker = "acme/plant-1/body/line-1/press-1/marker"
    assert not gateway.publish(marker).is_failure

    # The gateway's messages arrive in order, so the denied ones would have come before the marker.
    received = platform.topics_until(marker)
    assert allowed in received
    assert not set(denied) & set(received), received


def test_gateway_cannot_read_other_tenants_or_sites(connect: ConnectFn) -> None:
    platform = connect("leitstand-platform", PLATFORM_KEY)
    rival = connect("rival/gw.1", RIVAL_KEY)
    gateway = connect("acme/gw-1", GW1_KEY)

    forbidden = [
        "rival/plant-1/#",
        "#",
        "acme/plant-1/#",  # its own site's data is write-only for the gateway
        "spBv1.0/rival:plant-1/NCMD/#",
        "spBv1.0/acme:plant-2/DCMD/#",
        "spBv1.0/+/NDATA/#",
    ]
    for topic_filter in forbidden:
        # Mosquitto 2.0's acl_file grants every SUBACK and applies `topic read` when it delivers.
        reason = gateway.subscribe(topic_filter)
        assert reason.getName() in ("Not authorized", "Granted QoS 1"), f"{topic_filter}: {reason}"
    assert gateway.subscribe("spBv1.0/acme:plant-1/NCMD/#").getName() == "Granted QoS 1"

    assert not rival.publish("rival/plant-1/body/line-1/press-1/secret").is_failure
    assert not rival.publish("spBv1.0/rival:plant-1/NDATA/edge-1").is_failure
    assert not gateway.publish("acme/plant-1/body/line-1/press-1/own").is_failure
    assert not platform.publish("spBv1.0/rival:plant-1/NCMD/edge-1").is_failure
    assert not platform.publish("spBv1.0/acme:plant-2/DCMD/edge-1/press-1").is_failure
    # Each of those was acknowledged, so anything routed to the gateway was queued before this marker.
    marker = "spBv1.0/acme:plant-1/NCMD/edge-1"
    assert platform.publish(marker).getName() == "Success"
    assert set(gateway.topics_until(marker)) == {marker}


def test_sparkplug_gateway_topics(connect: ConnectFn) -> None:
    platform = connect("leitstand-platform", PLATFORM_KEY)
    assert not platform.subscribe("spBv1.0/#").is_failure
    gateway = connect("acme/gw-1", GW1_KEY)

    allowed = ["spBv1.0/acme:plant-1/NBIRTH/edge-1", "spBv1.0/acme:plant-1/DDATA/edge-1/press-1"]
    denied = [
        "spBv1.0/acme:plant-2/NDATA/edge-1",
        "spBv1.0/acme:plant-1/NCMD/edge-1",
        "spBv1.0/rival:plant-1/NDATA/edge-1",
        "spBv1.0/STATE/leitstand",
    ]
    for topic in allowed:
        assert not gateway.publish(topic).is_failure, topic
    for topic in denied:
        assert gateway.publish(topic).getName() == "Not authorized", topic
    marker = "spBv1.0/acme:plant-1/NDATA/edge-1"
    assert not gateway.publish(marker).is_failure

    received = platform.topics_until(marker)
    assert set(allowed) <= set(received)
    assert not set(denied) & set(received), received


def test_sighup_reloads_files_for_new_and_connected_clients(broker: Broker, connect: ConnectFn) -> None:
    assert try_login(broker.port, "acme/gw-2", GW2_KEY).is_failure
    gw1 = connect("acme/gw-1", GW1_KEY)
    rival = connect("rival/gw.1", RIVAL_KEY)
    assert not gw1.publish("acme/plant-1/x").is_failure
    # gw-2 is added, gw-1 moves to plant-2, and the rival gateway's key is revoked.
    accounts = [
        platform_account("leitstand-platform", mosquitto_password_hash(PLATFORM_KEY)),
        gateway_account("acme", "gw-1", "plant-2", mosquitto_password_hash(GW1_KEY)),
        gateway_account("acme", "gw-2", "plant-2", mosquitto_password_hash(GW2_KEY)),
    ]
    write_mosquitto_files(broker.directory, accounts)
    assert broker.mosquitto.process is not None
    broker.mosquitto.process.send_signal(signal.SIGHUP)

    deadline = time.monotonic() + WAIT_S
    while try_login(broker.port, "acme/gw-2", GW2_KEY).is_failure:
        assert time.monotonic() < deadline, f"acme/gw-2 could not log in after SIGHUP:\n{broker.log_text()}"
        time.sleep(0.1)
    gw2 = connect("acme/gw-2", GW2_KEY)
    assert not gw2.publish("acme/plant-2/x").is_failure
    assert gw2.publish("acme/plant-1/x").getName() == "Not authorized"
    assert rival.disconnected.wait(WAIT_S), "a revoked gateway stays connected"
    assert try_login(broker.port, "rival/gw.1", RIVAL_KEY).is_failure
    assert gw1.publish("acme/plant-1/x").getName() == "Not authorized"
    assert not gw1.publish("acme/plant-2/x").is_failure


def test_files_are_sorted_private_and_replaced(tmp_path: Path) -> None:
    accounts = base_accounts()
    passwd, acl = write_mosquitto_files(tmp_path, reversed(accounts))
    assert (passwd.stat().st_mode & 0o777, acl.stat().st_mode & 0o777) == (0o600, 0o600)
    assert passwd.read_text() == render_password_file(accounts)
    users = [line.split(":")[0] for line in passwd.read_text().splitlines()]
    assert users == ["acme/gw-1", "leitstand-platform", "rival/gw.1"]
    text = acl.read_text()
    assert text == render_acl(accounts)
    assert "pattern" not in text
    assert "topic readwrite" not in text
    block = text.split("user acme/gw-1\n")[1].split("\n\n")[0].splitlines()
    assert block[0] == "topic write acme/plant-1/#"
    assert "topic write spBv1.0/acme:plant-1/NDATA/#" in block
    assert "topic read spBv1.0/acme:plant-1/NCMD/#" in block
    write_mosquitto_files(tmp_path, accounts[:1])
    assert passwd.read_text().startswith("leitstand-platform:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acl", "passwd"], "no temporary files are left"
    conf = render_listener_config(1883, passwd, acl)
    for line in ("per_listener_settings false", "allow_anonymous false", "listener 1883 127.0.0.1"):
        assert line in conf.splitlines()


def test_bad_input_is_refused() -> None:
    pw = mosquitto_password_hash("x")
    with pytest.raises(InputError, match=r"contains ':'"):
        render_password_file([platform_account("acme:gw", pw)])
    with pytest.raises(InputError, match=r"control character"):
        render_acl([platform_account("acme\ntopic write #", pw)])
    with pytest.raises(InputError, match=r"control character"):
        render_password_file([platform_account("acme\x00", pw)])
    with pytest.raises(InputError, match=r"'#' must be the whole last topic level"):
        render_acl([MqttAccount("acme/gw", pw, ("acme/pl#nt/x",), ())])
    with pytest.raises(InputError, match=r"'#' must be the whole last topic level"):
        render_acl([MqttAccount("acme/gw", pw, (), ("acme/#/x",))])
    with pytest.raises(InputError, match=r"'\+' must be a whole topic level"):
        render_acl([MqttAccount("acme/gw", pw, ("acme/plant+/x",), ())])
    with pytest.raises(InputError, match=r"control character"):
        render_acl([MqttAccount("acme/gw", pw, ("acme/x\ntopic write #",), ())])
    with pytest.raises(InputError, match=r"occurs more than once"):
        render_password_file([platform_account("p", pw), platform_account("p", pw)])
    with pytest.raises(InputError, match=r"not a Mosquitto '\$7\$' hash"):
        render_password_file([platform_account("p", "plain\nuser2:x")])
    with pytest.raises(InputError, match=r"gateway 'gw:1' is not a valid id"):
        gateway_account("acme", "gw:1", "plant-1", pw)
    with pytest.raises(InputError, match=r"must not contain '/'"):
        platform_account("acme/gw-1", pw)
    with pytest.raises(InputError, match=r"reserved for the Sparkplug namespace"):
        gateway_account("spBv1.0", "gw-1", "STATE", pw)
