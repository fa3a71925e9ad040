"""The MQTT Unified Namespace connector: subscribe, batch, decode, hand to ingest, acknowledge.

Messages collect in memory for at most `flush_interval_ms` (or until `batch_messages` wait), then one
batch is decoded into one table per record kind and queued for the writer. A QoS 1 message is
acknowledged to the broker only after the batch holding it is committed, in arrival order, so a crash
or a broker restart redelivers what was not yet stored; duplicates change nothing (natural keys).
When ingest is full, the network thread stops reading once `4 × batch_messages` wait, and TCP
flow control holds the broker back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from leitstand.connect.base import AssetRegistrar, Health, Inlet
from leitstand.connect.mqtt.config import MqttConfig
from leitstand.connect.mqtt.decode import UnsDecoder
from leitstand.connect.mqtt.session import MqttSession
from leitstand.ingest.sink import IngestResult, RecordTarget

_PENDING_BATCHES = 4


class MqttConnector:
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
        self._clock = clock
        self._stop = threading.Event()
        self._inlet = Inlet(target, config.tenant, self.health, self._stop)
        self._decoder = UnsDecoder(config.tenant, config.max_payload_bytes)
        self._cond = threading.Condition()
        self._topics: list[str] = []
        self._payloads: list[bytes] = []
        self._arrived: list[float] = []
        self._acks: list[int] = []  # mids of QoS 1 messages in the batch, in arrival order
        group = config.shared_group
        filters = [(f"$share/{group}/{f}" if group else f, config.qos) for f in config.filters]
        self._session = MqttSession(
            config.broker,
            config.broker.client_id or f"leitstand-{config.tenant}-{config.name}",
            self.health,
            filters,
            self._message,
            manual_ack=True,
        )
        self._flusher: threading.Thread | None = None

    def start(self) -> None:
        self._flusher = threading.Thread(
            target=self._flush_loop, name=f"mqtt-flush-{self.config.key}", daemon=True
        )
        self._flusher.start()
        self._session.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect, then store what arrived (messages not committed by then stay unacknowledged)."""
        self._session.stop(timeout)
        with self._cond:
            self._stop.set()
            self._cond.notify_all()
        if self._flusher is not None:
            self._flusher.join(timeout)
            self._flusher = None

    # network thread --------------------------------------------------------------------------------

    def _message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        limit = _PENDING_BATCHES * self.config.batch_messages
        with self._cond:
            while len(self._topics) >= limit and not self._stop.is_set():
                self._cond.wait(0.5)
            self._topics.append(topic)
            self._payloads.append(payload)
            self._arrived.append(self._clock())
            if qos:
                self._acks.append(mid)
            if len(self._topics) >= self.config.batch_messages:
                self._cond.notify_all()

    # flusher thread --------------------------------------------------------------------------------

    def _flush_loop(self) -> None:
        interval = self.config.flush_interval_ms / 1000
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: len(self._topics) >= self.config.batch_messages or self._stop.is_set(),
                    timeout=interval,
                )
                batch = self._topics, self._payloads, self._arrived, self._acks
                self._topics, self._payloads, self._arrived, self._acks = [], [], [], []
                self._cond.notify_all()
                stopping = self._stop.is_set()
            if batch[0]:
                try:
                    self._deliver(*batch)
                except Exception as exc:  # the batch stays unacknowledged; the broker resends it
                    self.health.failed("deliver_failed", f"{type(exc).__name__}: {exc}")
            if stopping:
                return

    def _deliver(
        self, topics: list[str], payloads: list[bytes], arrived: list[float], acks: list[int]
    ) -> None:
        decoded = self._decoder.decode(topics, payloads, arrived)
        if self._registrar is not None:
            seen = self._decoder.take_seen()
            if seen:
                self._registrar.ensure(self.config.tenant, seen)
        futures: list[Future[IngestResult]] = []
        records = 0
        for kind, batch in decoded.items():
            if batch.table.num_rows or batch.rejects:
                future = self._inlet.submit(kind, batch.table, batch.rejects)
                if future is None:  # stopping before ingest took it: leave it unacknowledged
                    return
                futures.append(future)
                records += batch.table.num_rows
        self.health.received(len(topics), records)
        if acks:
            self._ack_when_committed(futures, acks)

    def _ack_when_committed(self, futures: list[Future[IngestResult]], acks: list[int]) -> None:
        remaining = [len(futures)]
        lock = threading.Lock()

        def one_done(future: Future[IngestResult]) -> None:
            if future.exception() is not None:
                self.health.failed("store_failed", f"{future.exception()}; the broker will resend")
                return
            with lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            for mid in acks:
                self._session.ack(mid, 1)

        if not futures:
            for mid in acks:
                self._session.ack(mid, 1)
        for future in futures:
            future.add_done_callback(one_done)
