"""The Sparkplug B host application connector: STATE birth and death, subscriptions, the host."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import paho.mqtt.client as mqtt

from leitstand.connect.base import AssetRegistrar, Health
from leitstand.connect.mqtt.client import BatchingSubscriber, session_for
from leitstand.connect.mqtt.decode import KindBatch
from leitstand.connect.mqtt.session import MqttSession, Will
from leitstand.connect.sparkplug.config import SparkplugConfig
from leitstand.connect.sparkplug.decode import NAMESPACE
from leitstand.connect.sparkplug.host import SparkplugHost
from leitstand.domain.records import RecordKind
from leitstand.ingest.sink import RecordTarget


class SparkplugConnector:
    """Leitstand as a Sparkplug B 3.0 primary host application on one broker.

    STATE: on every connect it publishes `{"online": true, "timestamp": t}` retained at QoS 1 on
    `spBv1.0/STATE/<host_id>`, where t is the timestamp of the Will registered with the connection
    (`{"online": false, "timestamp": t}`, retained, QoS 1), as Sparkplug 3.0 requires. Edge nodes wait
    for it before they publish. A clean stop publishes the offline STATE itself.
    """

    def __init__(
        self,
        config: SparkplugConfig,
        target: RecordTarget,
        registrar: AssetRegistrar | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.health = Health(config.key, "sparkplug")
        self._registrar = registrar if config.unknown_assets == "create" else None
        self._subscriber = BatchingSubscriber.for_connection(config, self.health, target, self._decode, clock)
        self.host = SparkplugHost(config, self.health, self._send_command, clock)
        self.state_topic = f"{NAMESPACE}/STATE/{config.host}"
        self._state_ts = int(clock() * 1000)
        self._session: MqttSession | None = None

    def _state(self, online: bool) -> bytes:
        return orjson.dumps({"online": online, "timestamp": self._state_ts})

    def start(self) -> None:
        groups = self.config.groups or ("+",)
        self._session = session_for(
            self._subscriber,
            self.config,
            self.config.broker,
            [(f"{NAMESPACE}/{g}/#", 1) for g in groups],
            will=Will(self.state_topic, self._state(False), qos=1, retain=True),
            on_connected=self._online,
        )
        self._subscriber.start(self._session)

    def stop(self, timeout: float = 10.0) -> None:
        if self._session is not None:
            info = self._publish(self.state_topic, self._state(False), qos=1, retain=True)
            if info is not None:
                info.wait_for_publish(min(timeout, 2.0))
        self._subscriber.stop(timeout)

    def _online(self) -> None:
        self._publish(self.state_topic, self._state(True), qos=1, retain=True)

    def _publish(
        self, topic: str, payload: bytes, qos: int = 0, retain: bool = False
    ) -> mqtt.MQTTMessageInfo | None:
        if self._session is None:
            return None
        return self._session.publish(topic, payload, qos, retain)

    def _send_command(self, topic: str, payload: bytes) -> None:
        self._publish(topic, payload, qos=0)

    def nodes(self) -> list[dict[str, object]]:
        """The edge nodes the host knows (read from the API while the host changes them: retried)."""
        for _ in range(5):
            try:
                return [n.view() for n in list(self.host.nodes.values())]
            except RuntimeError:  # a dict changed size while it was read
                continue
        return []

    def _decode(
        self, topics: list[str], payloads: list[bytes], arrived: list[float]
    ) -> dict[RecordKind, KindBatch]:
        decoded = self.host.decode(topics, payloads, arrived)
        if self._registrar is not None:
            seen = self.host.take_seen()
            if seen:
                self._registrar.ensure(self.config.tenant, seen)
        return decoded
