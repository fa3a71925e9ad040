"""A RecordSink that publishes the simulator's records into an MQTT Unified Namespace, as machines do.

Each batch becomes messages on the UNS topics of connect/mqtt/decode.py, one message per topic (asset and
signal, or asset and kind) holding that topic's records as a JSON list, cut so no payload exceeds
`max_payload_bytes`. Publishing is QoS 1: `send` returns once the broker acknowledged every message,
which holds the simulator back to the pace of the broker and of Leitstand behind it.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import orjson
import paho.mqtt.client as mqtt
import pyarrow as pa
import pyarrow.compute as pc
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from leitstand.domain.errors import InputError
from leitstand.domain.records import RecordKind
from leitstand.ingest.sink import IngestResult

_SUFFIX = {RecordKind.STATES: "state", RecordKind.COUNTS: "count"}
_FIELDS = {
    RecordKind.SAMPLES: ("value", "quality"),
    RecordKind.STATES: ("state", "reason"),
    RecordKind.COUNTS: ("product_id", "produced", "scrap", "rework"),
}


class BrokerPublisher:
    """A record sink that publishes through an MQTT broker at QoS 1; subclasses turn a batch into
    messages. `send` returns once the broker has acknowledged all of them, and `published` counts
    records per tenant and kind (what Leitstand should store once it has read them)."""

    def __init__(self, host: str, port: int, timeout_s: float, client: str) -> None:
        self._timeout_s = timeout_s
        self.published: dict[tuple[str, RecordKind], int] = {}
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"leitstand-sim-{client}-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.max_inflight_messages_set(1000)
        connected = threading.Event()
        self._client.on_connect = lambda *_: connected.set()
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        if not connected.wait(timeout_s):
            self.close()
            raise InputError(f"no MQTT broker answers on {host}:{port}")

    def send(self, tenant: str, kind: RecordKind, records: pa.Table) -> IngestResult:
        """Publish one batch and wait until the broker has acknowledged all of it."""
        kind = RecordKind(kind)
        last: mqtt.MQTTMessageInfo | None = None
        for topic, payload in self.messages(kind, records):
            last = self._client.publish(topic, payload, qos=1)
        if last is not None:
            last.wait_for_publish(self._timeout_s)  # QoS 1 flows are acknowledged in order
            if not last.is_published():
                raise TimeoutError(f"the broker did not acknowledge within {self._timeout_s} s")
        n = records.num_rows
        self.published[(tenant, kind)] = self.published.get((tenant, kind), 0) + n
        return IngestResult(kind=kind, received=n, accepted=n, duplicates=0, dead_lettered=0, quarantined=0)

    def messages(self, kind: RecordKind, records: pa.Table) -> list[tuple[str, bytes]]:
        """The (topic, payload) pairs of a batch, in the order they are to be published."""
        raise NotImplementedError

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class UnsPublisher(BrokerPublisher):
    """Publishes records to `{asset path}/samples/{signal}`, `{asset path}/state`, `{asset path}/count`."""

    def __init__(
        self,
        paths: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int = 1883,
        max_payload_bytes: int = 32 * 1024,
        timeout_s: float = 60.0,
    ) -> None:
        self._paths = dict(paths)
        self._max_payload = max_payload_bytes
        super().__init__(host, port, timeout_s, "uns")

    def messages(self, kind: RecordKind, records: pa.Table) -> list[tuple[str, bytes]]:
        """The (topic, payload) pairs of a batch."""
        if records.num_rows == 0:
            return []
        ts_ms = pc.divide(records["ts"].cast(pa.int64()), 1000)  # the record schemas keep microseconds
        columns = {"timestamp_ms": ts_ms.to_pylist()}
        for name in _FIELDS[kind]:
            columns[name] = records[name].to_pylist()
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        asset_ids = records["asset_id"].to_pylist()
        signals = records["signal"].to_pylist() if kind is RecordKind.SAMPLES else None
        names = list(columns)
        for i, row in enumerate(zip(*columns.values(), strict=True)):
            path = self._paths.get(asset_ids[i])
            if path is None:
                raise InputError(f"asset {asset_ids[i]!r} has no path in the asset model")
            topic = f"{path}/samples/{signals[i]}" if signals is not None else f"{path}/{_SUFFIX[kind]}"
            grouped[topic].append({k: v for k, v in zip(names, row, strict=True) if v is not None})
        out: list[tuple[str, bytes]] = []
        for topic, rows in grouped.items():
            start = 0
            while start < len(rows):
                # records of one topic are alike in size: cut by the first one's size
                per = max(1, self._max_payload // (len(orjson.dumps(rows[start])) + 1))
                out.append((topic, orjson.dumps(rows[start : start + per])))
                start += per
        return out
