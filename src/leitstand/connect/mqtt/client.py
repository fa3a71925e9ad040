"""MQTT connectors: a batching subscriber shared by the Unified Namespace and the Sparkplug B host.

Messages collect in memory for at most `flush_interval_ms` (or until `batch_messages` wait), then one
batch is decoded into one table per record kind and queued for the writer. A QoS 1 message is
acknowledged to the broker only after the batch holding it is committed, in arrival order, so a crash
or a broker restart redelivers what was not yet stored; duplicates change nothing (natural keys).
When ingest is full, the network thread stops reading once `4 × batch_messages` wait, and TCP
flow control holds the broker back.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from leitstand.connect.base import AssetRegistrar, ConnectionConfig, Health, Inlet
from leitstand.connect.mqtt.config import BrokerConfig, MqttConfig
from leitstand.connect.mqtt.decode import KindBatch, UnsDecoder
from leitstand.connect.mqtt.session import MqttSession, Will
from leitstand.domain.records import RecordKind
from leitstand.ingest.sink import IngestResult, RecordTarget

_PENDING_BATCHES = 4

# topics, payloads, arrival times → one batch per record kind
Decode = Callable[[list[str], list[bytes], list[float]], dict[RecordKind, KindBatch]]


class BatchSettings(Protocol):
    """What a subscriber needs of a connection's settings (the UNS and Sparkplug B configs have it)."""

    @property
    def tenant(self) -> str: ...

    @property
    def flush_interval_ms(self) -> int: ...

    @property
    def batch_messages(self) -> int: ...


@dataclass(slots=True)
class _AckBatch:
    """A batch's QoS 1 messages (packet id, connection) and how many of its writes are outstanding."""

    remaining: int
    acks: list[tuple[int, int]]
    failed: bool = False


class BatchingSubscriber:
    """Subscribes through an MqttSession, decodes in batches on its own thread, acknowledges after
    commit. `decode` runs on that one thread only, so it may keep state (the Sparkplug host does)."""

    def __init__(
        self,
        health: Health,
        inlet: Inlet,
        stop: threading.Event,
        decode: Decode,
        flush_interval_ms: int,
        batch_messages: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.health = health
        self._inlet = inlet
        self._stop = stop
        self._decode = decode
        self._interval = flush_interval_ms / 1000
        self._batch_messages = batch_messages
        self._clock = clock
        # (topic, payload, arrival, mid, qos) from the network thread; deque appends and pops are atomic,
        # so handing over a message takes no lock
        self._pending: deque[tuple[str, bytes, float, int, int]] = deque()
        self._limit = _PENDING_BATCHES * batch_messages
        self._wake = threading.Event()
        self._ack_lock = threading.Lock()
        self._ack_queue: deque[_AckBatch] = deque()
        self.session: MqttSession | None = None
        self._flusher: threading.Thread | None = None

    @classmethod
    def for_connection(
        cls,
        config: BatchSettings,
        health: Health,
        target: RecordTarget,
        decode: Decode,
        clock: Callable[[], float] = time.time,
    ) -> BatchingSubscriber:
        """The subscriber of a connection, delivering to `target` for the connection's tenant."""
        stop = threading.Event()
        return cls(
            health,
            Inlet(target, config.tenant, health, stop),
            stop,
            decode,
            config.flush_interval_ms,
            config.batch_messages,
            clock,
        )

    def start(self, session: MqttSession) -> None:
        self.session = session
        self._flusher = threading.Thread(
            target=self._flush_loop, name=f"flush-{self.health.key}", daemon=True
        )
        self._flusher.start()
        session.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect, then store what arrived (messages not committed by then stay unacknowledged)."""
        if self.session is not None:
            self.session.stop(timeout)
        self._stop.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join(timeout)
            self._flusher = None

    # network thread --------------------------------------------------------------------------------

    def message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        pending = self._pending
        while len(pending) >= self._limit and not self._stop.is_set():  # ingest is behind: stop reading
            self._wake.set()
            time.sleep(0.01)
        # a QoS 1 message is acknowledged on the connection it came on: remember which
        generation = self.session.generation if qos and self.session is not None else -1
        pending.append((topic, payload, self._clock(), mid, generation))
        if len(pending) >= self._batch_messages:
            self._wake.set()

    # flusher thread --------------------------------------------------------------------------------

    def _flush_loop(self) -> None:
        pending = self._pending
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            stopping = self._stop.is_set()
            items = [pending.popleft() for _ in range(min(len(pending), self._limit))]
            topics = [m[0] for m in items]
            payloads = [m[1] for m in items]
            arrived = [m[2] for m in items]
            acks = [(m[3], m[4]) for m in items if m[4] >= 0]  # QoS 1 (packet id, connection)
            try:
                # an empty batch too: decoders with timers (the Sparkplug reorder timeout) need the tick
                self._deliver(topics, payloads, arrived, acks)
            except Exception as exc:  # unacknowledged: a new connection makes the broker send it again
                self.health.failed("deliver_failed", f"{type(exc).__name__}: {exc}")
                if acks and self.session is not None:
                    self.session.request_reconnect()
            if stopping and not pending:
                return

    def _deliver(
        self, topics: list[str], payloads: list[bytes], arrived: list[float], acks: list[tuple[int, int]]
    ) -> None:
        decoded = self._decode(topics, payloads, arrived)
        futures: list[Future[IngestResult]] = []
        records = 0
        for kind, batch in decoded.items():
            if batch.table.num_rows or batch.rejects:
                future = self._inlet.submit(kind, batch.table, batch.rejects)
                if future is None:  # stopping before ingest took it: leave it unacknowledged
                    return
                futures.append(future)
                records += batch.table.num_rows
        if topics:
            self.health.received(len(topics), records)
        if acks:
            self._ack_when_committed(futures, acks)

    def _ack_when_committed(
        self, futures: Sequence[Future[IngestResult]], acks: list[tuple[int, int]]
    ) -> None:
        """Acknowledge the batch's QoS 1 messages once all its futures are committed, and only after
        every earlier batch's (acknowledgements go out in arrival order)."""
        batch = _AckBatch(len(futures), acks)
        with self._ack_lock:
            self._ack_queue.append(batch)
        for future in futures:
            future.add_done_callback(functools.partial(self._committed, batch))
        self._send_acks()

    def _committed(self, batch: _AckBatch, future: Future[IngestResult]) -> None:
        with self._ack_lock:
            batch.remaining -= 1
            if future.exception() is not None:
                batch.failed = True
        self._send_acks()

    def _send_acks(self) -> None:
        reconnect = False
        with self._ack_lock:
            queue = self._ack_queue
            while queue and queue[0].remaining == 0:
                batch = queue.popleft()
                if batch.failed:  # not stored: not acknowledged; the broker sends it again
                    reconnect = True
                elif self.session is not None:
                    for mid, generation in batch.acks:
                        self.session.ack(mid, generation)
        if reconnect and self.session is not None:
            self.health.failed("store_failed", "a batch was not stored; reconnecting to receive it again")
            self.session.request_reconnect()


def default_client_id(config: ConnectionConfig) -> str:
    """`leitstand:<tenant>:<name>`: ':' occurs in no id, so no two connections share it."""
    return f"leitstand:{config.tenant}:{config.name}"


def session_for(
    subscriber: BatchingSubscriber,
    config: ConnectionConfig,
    broker: BrokerConfig,
    filters: Sequence[tuple[str, int]],
    will: Will | None = None,
    on_connected: Callable[[], None] | None = None,
) -> MqttSession:
    """The session of a connection; its client id stays the same across restarts (see BrokerConfig)."""
    return MqttSession(
        broker,
        broker.client_id or default_client_id(config),
        subscriber.health,
        filters,
        subscriber.message,
        manual_ack=True,
        will=will,
        on_connected=on_connected,
    )


class MqttConnector:
    """An MQTT Unified Namespace subscription (see decode.py for the topic tree)."""

    def __init__(
        self,
        config: MqttConfig,
        target: RecordTarget,
        registrar: AssetRegistrar | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.health = Health(config.key, "mqtt")
        self._registrar = registrar if config.unknown_assets == "create" else None
        self._decoder = UnsDecoder(config.tenant, config.max_payload_bytes)
        self._subscriber = BatchingSubscriber.for_connection(config, self.health, target, self._decode, clock)
        group = config.shared_group
        self._filters = [(f"$share/{group}/{f}" if group else f, config.qos) for f in config.filters]

    def start(self) -> None:
        self._subscriber.start(session_for(self._subscriber, self.config, self.config.broker, self._filters))

    def stop(self, timeout: float = 10.0) -> None:
        self._subscriber.stop(timeout)

    def _decode(
        self, topics: list[str], payloads: list[bytes], arrived: list[float]
    ) -> dict[RecordKind, KindBatch]:
        decoded = self._decoder.decode(topics, payloads, arrived)
        if self._decoder.foreign:
            self.health.failed(
                "foreign_topic",
                "messages outside this tenant's tree arrived; they are not stored (check `topics`)",
                self._decoder.foreign,
            )
            self._decoder.foreign = 0
        if self._registrar is not None:
            seen = self._decoder.take_seen()
            if seen:
                self._registrar.ensure(self.config.tenant, seen)
        return decoded
