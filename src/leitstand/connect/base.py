"""What every connector shares: the common part of its configuration, its health, the way it hands records
to ingest (the Inlet), and reconnect backoff.

Each protocol lives in its own folder with the same file roles:
  config.py   the connection's settings (a pydantic model, validated at configuration time)
  decode.py   bytes or protocol values → Arrow tables in the record schemas (no I/O)
  client.py   the connector: connects, subscribes or polls, reconnects, reports health
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import pyarrow as pa
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field

from leitstand.domain.errors import NotReady, Overloaded
from leitstand.domain.records import SPECS, RecordKind
from leitstand.ingest.conform import Decoded
from leitstand.ingest.sink import IngestResult, RecordError, RecordTarget

log = logging.getLogger(__name__)

ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
# What a dead-letter entry keeps of a message's payload; larger payloads are cut (and say so).
MAX_KEPT_PAYLOAD_BYTES = 4096

UP = Gauge("leitstand_connection_up", "1 while the connection is connected", ["connection", "protocol"])
MESSAGES = Counter("leitstand_connection_messages_total", "Messages received", ["connection"])
RECORDS = Counter("leitstand_connection_records_total", "Records handed to ingest", ["connection"])
ERRORS = Counter("leitstand_connection_errors_total", "Faults by reason", ["connection", "code"])
LAST_MESSAGE = Gauge(
    "leitstand_connection_last_message_timestamp_seconds", "When the last message arrived", ["connection"]
)


class ConnectionConfig(BaseModel):
    """Fields every connection has; each protocol's config adds its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: str
    name: str = Field(pattern=ID, description="Unique per tenant; names the connection in health and logs.")
    tenant: str = Field(pattern=ID, description="The tenant whose records this connection delivers.")
    enabled: bool = Field(True, description="A disabled connection is kept but not started.")
    description: str = Field("", max_length=500)

    @property
    def key(self) -> str:
        """`tenant/name`: unique across the installation, used as the metrics label."""
        return f"{self.tenant}/{self.name}"


class LinkState(StrEnum):
    STARTING = "starting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


_RATE_WINDOW_S = 10.0


class Health:
    """A connection's health: link state since when, last message, message rate, faults by reason.

    Thread-safe. Logs when the link state changes and the first time each fault reason occurs after
    a change, never once per failure, so a flapping PLC or a stream of bad payloads does not flood the log.
    """

    def __init__(self, key: str, protocol: str, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.protocol = protocol
        self._clock = clock
        self._lock = threading.Lock()
        self.state = LinkState.STARTING
        self.since = clock()
        self.detail = ""
        self.last_message_at: float | None = None
        self.messages = 0
        self.records = 0
        self.errors: dict[str, int] = {}
        self.last_error: dict[str, object] | None = None
        self._logged: set[str] = set()
        self._rate_marks: deque[tuple[float, int]] = deque()
        UP.labels(key, protocol).set(0)

    def set_state(self, state: LinkState, detail: str = "") -> None:
        with self._lock:
            if state is self.state and detail == self.detail:
                return
            changed = state is not self.state
            self.state, self.detail = state, detail
            if changed:
                self.since = self._clock()
                self._logged.clear()
        UP.labels(self.key, self.protocol).set(1 if state is LinkState.CONNECTED else 0)
        if changed:
            level = logging.WARNING if state is LinkState.DISCONNECTED else logging.INFO
            log.log(level, "connection %s: %s%s", self.key, state.value, f" ({detail})" if detail else "")

    def received(self, messages: int, records: int = 0) -> None:
        now = self._clock()
        with self._lock:
            marks = self._rate_marks
            if not marks or now - marks[-1][0] >= 1.0:  # the count before this arrival, once a second
                marks.append((now, self.messages))
                while marks and now - marks[0][0] > _RATE_WINDOW_S:
                    marks.popleft()
            self.messages += messages
            self.records += records
            self.last_message_at = now
        MESSAGES.labels(self.key).inc(messages)
        if records:
            RECORDS.labels(self.key).inc(records)
        LAST_MESSAGE.labels(self.key).set(now)

    def failed(self, code: str, message: str, count: int = 1) -> None:
        """Count `count` faults of one reason (e.g. `invalid_json`, `timeout`)."""
        with self._lock:
            self.errors[code] = self.errors.get(code, 0) + count
            self.last_error = {"code": code, "message": message, "at": self._clock()}
            first = code not in self._logged
            self._logged.add(code)
        ERRORS.labels(self.key, code).inc(count)
        if first:
            log.warning("connection %s: %s: %s", self.key, code, message)

    def rate(self) -> float:
        """Messages per second over the last ten seconds (since the first arrival, if that is later)."""
        now = self._clock()
        with self._lock:
            marks = [m for m in self._rate_marks if now - m[0] <= _RATE_WINDOW_S]
            total = self.messages
        if not marks:
            return 0.0
        return (total - marks[0][1]) / max(now - marks[0][0], 1.0)

    def snapshot(self) -> dict[str, object]:
        rate = self.rate()
        with self._lock:
            return {
                "state": self.state.value,
                "since": self.since,
                "detail": self.detail,
                "last_message_at": self.last_message_at,
                "messages": self.messages,
                "records": self.records,
                "messages_per_s": round(rate, 3),
                "errors": dict(self.errors),
                "last_error": dict(self.last_error) if self.last_error else None,
            }


# An asset's path of ids from the enterprise, and a signal on it (None: the asset itself)
SeenAsset = tuple[tuple[str, ...], str | None]


class AssetRegistrar(Protocol):
    """Creates the assets and signals that a connection's data names and the asset model lacks."""

    def ensure(self, tenant: str, seen: set[SeenAsset]) -> None: ...


class Connector(Protocol):
    """A running connection: started once, stopped once; `health` is readable at any time."""

    @property
    def config(self) -> ConnectionConfig: ...

    @property
    def health(self) -> Health: ...

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...


@dataclass(frozen=True, slots=True)
class Reject:
    """A message (or a value in it) that cannot become a record, with the reason and what arrived."""

    code: str
    message: str
    raw: Mapping[str, Any]


def describe_payload(topic_or_source: str, payload: bytes) -> dict[str, Any]:
    """What a dead-letter entry keeps of a raw message: where it came from and its payload, as text when
    it is UTF-8 and as hex otherwise, cut to MAX_KEPT_PAYLOAD_BYTES."""
    kept = payload[:MAX_KEPT_PAYLOAD_BYTES]
    out: dict[str, Any] = {"source": topic_or_source, "bytes": len(payload)}
    try:
        out["payload"] = kept.decode()
    except UnicodeDecodeError:
        out["payload_hex"] = kept.hex()
    if len(payload) > len(kept):
        out["truncated"] = True
    return out


class Inlet:
    """Where a connector hands records: the ingest pipeline's validation, dead-letter store and writer.

    `submit` waits while ingest is full (back-pressure reaches the source: a broker holds QoS 1
    messages, a poller polls later) and gives up only when `stop` is set. The returned future resolves
    once the records are committed, so a connector acknowledges a message only after that.
    """

    def __init__(self, target: RecordTarget, tenant: str, health: Health, stop: threading.Event) -> None:
        self._target = target
        self.tenant = tenant
        self._health = health
        self._stop = stop

    def submit(
        self, kind: RecordKind, table: pa.Table, rejects: Sequence[Reject] = ()
    ) -> Future[IngestResult] | None:
        """Queue records (in the kind's schema, tenant may be null) and message-level rejects; None when
        stopped before ingest took them."""
        errors = [RecordError(table.num_rows + i, r.code, r.message) for i, r in enumerate(rejects)]
        raw = {table.num_rows + i: dict(r.raw) for i, r in enumerate(rejects)}
        for r in rejects:
            self._health.failed(r.code, r.message)
        decoded = Decoded(table, None, errors, raw, table.num_rows + len(rejects))
        delay = 0.05
        while True:
            try:
                return self._target.submit(self.tenant, kind, decoded)
            except (Overloaded, NotReady) as exc:
                self._health.failed("ingest_busy", str(exc))
                if self._stop.wait(delay):
                    return None
                delay = min(delay * 2, 2.0)

    def reject(self, kind: RecordKind, rejects: Sequence[Reject]) -> Future[IngestResult] | None:
        """Dead-letter messages that yielded no record."""
        return self.submit(kind, SPECS[kind].schema.empty_table(), rejects)


class Backoff:
    """Reconnect delays: exponential from `first_s` to `max_s` with ±20 % jitter; `reset` after success."""

    def __init__(self, first_s: float = 0.5, max_s: float = 30.0) -> None:
        self.first_s, self.max_s = first_s, max_s
        self._next = first_s

    def next(self) -> float:
        delay = self._next * random.uniform(0.8, 1.2)
        self._next = min(self._next * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._next = self.first_s


class CounterIncrements:
    """Turns readings of running counters (a PLC's parts counter) into the increments that counts are.

    The first reading of a counter gives no increment (nothing is known about before it). A reading
    below the previous one is a reset (a PLC reboot, a counter wrap): the units since the reset are the
    new reading itself, which is what a counter starting again from zero has counted.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def increment(self, key: str, reading: int) -> int | None:
        previous = self._last.get(key)
        self._last[key] = reading
        if previous is None:
            return None
        return reading - previous if reading >= previous else reading

    # Readings are kept across disconnects: units counted while the link was down arrive with the next
    # reading after it, so none are lost.
