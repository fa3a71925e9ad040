"""One MQTT client session in its own thread, for the UNS and the Sparkplug B connections alike.

paho-mqtt does the protocol (3.1.1 and 5, QoS, TLS, keep-alive, reconnect). This module adds what a
connector needs around it: a stable persistent session so the broker keeps QoS 1 messages while we are
away, subscriptions renewed on every connect, acknowledgements sent by the connector once records are
committed (not when the callback returns), health on every link transition, and a read buffer.

Two shortcuts, measured with many small messages on 2 cores:
- paho reads each packet with two or three `recv` calls and one `select`, so the receive thread spends
  most of its time in system calls. `_BufferedClient` reads up to 256 KiB per call and serves paho's
  small reads from memory (30k → 41k messages/s for one paho client).
- For each PUBLISH paho builds a message object and, with MQTT 5, a Properties object and a debug log
  line; `_BufferedClient._handle_publish` parses QoS 0 and 1 PUBLISH packets itself (topic, packet id,
  payload) and hands them on.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from leitstand.connect.base import Health, LinkState
from leitstand.connect.mqtt.config import BrokerConfig
from leitstand.domain.errors import InputError

log = logging.getLogger(__name__)

_READ_BYTES = 256 * 1024
_DRAIN_PACKETS = 2000

# (topic, payload, mid, qos) of one received message
OnMessage = Callable[[str, bytes, int, int], None]


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes for us if our connection dies without a clean disconnect."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class _BufferedClient(mqtt.Client):
    """paho's client with its socket reads served from a 256 KiB buffer, and incoming QoS 0 and 1
    PUBLISH packets handed straight to `deliver` (see the module docstring)."""

    _rbuf: bytes = b""
    _rpos: int = 0
    _rsock: object = None
    deliver: OnMessage | None = None

    def _handle_publish(self) -> MQTTErrorCode:
        """A PUBLISH without paho's per-message objects (MQTTMessage, MQTT 5 Properties, debug log
        formatting), which cost more than everything else a message needs. QoS 2, which Leitstand never
        subscribes with, goes to paho."""
        command = self._in_packet["command"]
        qos = (command & 0x06) >> 1
        deliver = self.deliver
        if qos > 1 or deliver is None:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        try:
            end = 2 + int.from_bytes(packet[:2], "big")
            topic = packet[2:end]
            mid = 0
            if qos:
                mid = int.from_bytes(packet[end : end + 2], "big")
                end += 2
            if self._protocol == MQTTProtocolVersion.MQTTv5:  # skip the properties
                length, shift = 0, 0
                while True:
                    byte = packet[end]
                    end += 1
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80 or shift > 21:
                        break
                end += length
            if end > len(packet) or (qos and mid == 0):
                raise ValueError("truncated PUBLISH")
        except (IndexError, ValueError):
            return MQTTErrorCode.MQTT_ERR_PROTOCOL  # paho drops the connection, as for any bad packet
        try:
            name = topic.decode()
        except UnicodeDecodeError:
            name = topic.decode(errors="replace")
        deliver(name, bytes(packet[end:]), mid, qos)
        if qos and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: nothing buffered belongs to it
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(_READ_BYTES)
            if not data:
                return data
            self._rbuf, self._rpos = data, 0
        out = self._rbuf[self._rpos : self._rpos + bufsize]
        self._rpos += len(out)
        return out

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        # Packets already in the buffer would otherwise wait for the socket to become readable again.
        # Bounded, so that under a constant stream the loop still gets round to keep-alive and writes.
        for _ in range(_DRAIN_PACKETS):
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._rpos >= len(self._rbuf):
                break
            rc = super().loop_read(1)
        return rc


class MqttSession:
    """Connects (and reconnects) to a broker, subscribes on every connect, hands messages to `on_message`
    on the network thread, and reports the link state to `health`."""

    def __init__(
        self,
        broker: BrokerConfig,
        client_id: str,
        health: Health,
        subscriptions: Sequence[tuple[str, int]],
        on_message: OnMessage,
        manual_ack: bool = True,
        will: Will | None = None,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self.broker = broker
        self.health = health
        self._subscriptions = list(subscriptions)
        self._on_message = on_message
        self._on_connected = on_connected
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._reconnect = threading.Event()
        self.generation = 0  # counts connections; acknowledgements belong to the one they came on
        v5 = broker.mqtt_version == "5"
        client = _BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=manual_ack,
        )
        if broker.username is not None:
            client.username_pw_set(broker.username, broker.password)
        if broker.tls is not None:
            for name in ("ca_file", "cert_file", "key_file"):
                path = getattr(broker.tls, name)
                if path is not None and not os.access(path, os.R_OK):
                    raise InputError(f"tls.{name} {path} cannot be read")
            client.tls_set(
                ca_certs=str(broker.tls.ca_file) if broker.tls.ca_file else None,
                certfile=str(broker.tls.cert_file) if broker.tls.cert_file else None,
                keyfile=str(broker.tls.key_file) if broker.tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will is not None:
            client.will_set(will.topic, will.payload, will.qos, will.retain)
        client.reconnect_delay_set(
            broker.reconnect_min_s, max(broker.reconnect_min_s, broker.reconnect_max_s)
        )
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_connect_fail = self._connect_failed
        client.on_message = self._message  # QoS 2 only
        client.deliver = self._deliver
        self.client = client

    def start(self) -> None:
        properties = None
        if self.broker.mqtt_version == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.broker.session_expiry_s
            # Messages are acknowledged once committed, ~100 ms after they arrive; without this the
            # broker would send only its default of 20 unacknowledged messages at a time.
            properties.ReceiveMaximum = self.broker.receive_maximum
        self.client.connect_async(
            self.broker.host,
            self.broker.port,
            self.broker.keepalive_s,
            clean_start=False if self.broker.mqtt_version == "5" else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{self.health.key}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Marks this as paho's network thread (as loop_start does): packets queued by other threads
        # (acknowledgements from the writer, commands) then wake this loop, which alone writes.
        self.client._thread = threading.current_thread()
        while not self._stopping.is_set():
            try:
                if self._reconnect.is_set():
                    self._reconnect.clear()
                    self.client.reconnect()
                self.client.loop_forever(retry_first_connection=True)
                if not self._reconnect.is_set():
                    return
            except OSError as exc:
                self.health.failed("connect_failed", f"cannot reach {self.broker.host}: {exc}")
                self._reconnect.set()
                if self._stopping.wait(self.broker.reconnect_min_s):
                    return
            except Exception as exc:  # a fault in paho or a callback must not end the connection
                self.health.failed("client_error", f"{type(exc).__name__}: {exc}")
                self.health.set_state(LinkState.DISCONNECTED, str(exc))
                if self._stopping.wait(self.broker.reconnect_min_s):
                    return

    def request_reconnect(self) -> None:
        """Reconnect, so that the broker sends again what was not acknowledged (the session is kept)."""
        self._reconnect.set()
        self.client.disconnect()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.client._reset_sockets()  # paho leaves its wake-up socket pair to the garbage collector
        self.health.set_state(LinkState.STOPPED)

    def ack(self, mid: int, generation: int) -> None:
        """Acknowledge a QoS 1 message (call once its records are committed, in arrival order). A
        message of an earlier connection is not acknowledged: its packet id may now be another
        message's, and the broker sends it again on the new connection anyway."""
        if generation == self.generation:
            self.client.ack(mid, 1)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos, retain)

    # paho callbacks (network thread) ---------------------------------------------------------------

    def _connected(self, client: mqtt.Client, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.health.failed("connect_refused", str(reason))
            self.health.set_state(LinkState.DISCONNECTED, f"refused: {reason}")
            return
        self.generation += 1
        if self._subscriptions:
            client.subscribe(self._subscriptions)
        self.health.set_state(LinkState.CONNECTED, f"{self.broker.host}:{self.broker.port}")
        if self._on_connected is not None:
            self._on_connected()

    def _disconnected(self, _c: mqtt.Client, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if self._stopping.is_set():
            return
        self.health.set_state(LinkState.DISCONNECTED, str(reason))

    def _connect_failed(self, _c: mqtt.Client, _u: Any) -> None:
        self.health.failed("connect_failed", f"cannot reach {self.broker.host}:{self.broker.port}")
        self.health.set_state(LinkState.DISCONNECTED, "cannot connect")

    def _message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._deliver(
            message._topic.decode(errors="replace"), bytes(message.payload), message.mid, message.qos
        )

    def _deliver(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        try:
            self._on_message(topic, payload, mid, qos)
        except Exception as exc:  # never let a fault end the network loop
            log.exception("handling a message on %s failed", topic)
            self.health.failed("handler_error", f"{type(exc).__name__}: {exc}")
