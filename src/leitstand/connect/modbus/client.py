"""The Modbus TCP poller: reads a device's register map on its cadences and hands the values to ingest.

One thread per connection, blocking on one socket. Modbus TCP is request/response on one connection,
and most devices answer one request at a time, so an event loop would add nothing but a second
scheduler; a blocking socket with a deadline keeps the link plain to follow: one request, then one
answer or one timeout. pymodbus builds the requests and parses the answers (its MBAP framer and PDU
classes, exception responses included); the connector owns the socket rather than using pymodbus's sync
client, whose transaction manager retries, counts its own disconnects and logs an error with a frame
dump for every unanswered request. Here a silent device costs one health fault per request, the link
state changes once, reconnects back off with `Backoff`, and only transitions are logged.

Registers of the same unit, table and cadence form a poll group, read in as few requests as the limits
allow (contiguous or nearly contiguous addresses are read together). Each poll cycle (the groups that
are due at one moment) hands one columnar batch per record kind to the Inlet. Faults are counted in the
connection's health on every occurrence and dead-lettered when they begin: a range that keeps answering
with an exception, or a float register that keeps reading NaN, is one dead-letter entry, not one per poll.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsRequest, ReadDiscreteInputsRequest
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, ReadInputRegistersRequest

from leitstand.connect.base import Backoff, CounterIncrements, Health, Inlet, LinkState, Reject
from leitstand.connect.modbus.config import BIT_TABLES, ModbusConfig, ModbusRegister
from leitstand.connect.modbus.decode import (
    ReadLayout,
    apply_scale,
    counts_table,
    samples_table,
    states_table,
)
from leitstand.domain.records import SPECS, RecordKind
from leitstand.ingest.sink import IngestResult, RecordTarget

log = logging.getLogger(__name__)

# Read functions by table: (function code, name as the Modbus specification calls it).
FUNCTIONS: dict[str, tuple[int, str]] = {
    "coil": (1, "read coils"),
    "discrete": (2, "read discrete inputs"),
    "holding": (3, "read holding registers"),
    "input": (4, "read input registers"),
}
_REQUESTS: dict[str, type[ModbusPDU]] = {
    "coil": ReadCoilsRequest,
    "discrete": ReadDiscreteInputsRequest,
    "holding": ReadHoldingRegistersRequest,
    "input": ReadInputRegistersRequest,
}
# Exception codes (Modbus application protocol 1.1b3, section 7).
EXCEPTION_NAMES: dict[int, str] = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
_KINDS = {"sample": RecordKind.SAMPLES, "state": RecordKind.STATES, "counter": RecordKind.COUNTS}


# ---- the poll plan ---------------------------------------------------------------------------------


@dataclass(eq=False)
class Read:
    """One read request of a poll group and how to decode its answer into records."""

    unit_id: int
    table: str
    address: int
    count: int
    registers: tuple[ModbusRegister, ...]
    samples: tuple[ModbusRegister, ...] = field(init=False)
    states: tuple[ModbusRegister, ...] = field(init=False)
    counters: tuple[ModbusRegister, ...] = field(init=False)
    sample_layout: ReadLayout = field(init=False)
    state_layout: ReadLayout = field(init=False)
    counter_layout: ReadLayout = field(init=False)
    scale: np.ndarray = field(init=False)  # of each sample register, in the order of `samples`
    offset: np.ndarray = field(init=False)
    sample_assets: np.ndarray = field(init=False)
    sample_signals: np.ndarray = field(init=False)
    # What is dead-lettered now, so a lasting fault is dead-lettered once: the exception code this read
    # answers with, and the sample registers that read a non-finite value.
    fault: int | None = None
    non_finite: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        by_kind: dict[str, list[ModbusRegister]] = defaultdict(list)
        for reg in self.registers:
            by_kind[reg.record].append(reg)
        self.samples = tuple(by_kind["sample"])
        self.states = tuple(by_kind["state"])
        self.counters = tuple(by_kind["counter"])
        bits = self.table in BIT_TABLES
        self.sample_layout, self.state_layout, self.counter_layout = (
            ReadLayout([(r.address - self.address, r.type, r.byte_order, r.word_order) for r in regs], bits)
            for regs in (self.samples, self.states, self.counters)
        )
        self.scale = np.array([r.scale for r in self.samples], dtype=np.float64)
        self.offset = np.array([r.offset for r in self.samples], dtype=np.float64)
        self.sample_assets = np.array([r.asset_id for r in self.samples], dtype=object)
        self.sample_signals = np.array([r.signal for r in self.samples], dtype=object)

    @property
    def function_code(self) -> int:
        return FUNCTIONS[self.table][0]

    @property
    def function(self) -> str:
        return FUNCTIONS[self.table][1]

    @property
    def last_address(self) -> int:
        return self.address + self.count - 1

    def describe(self) -> str:
        """`read holding registers (function 3) of unit 1, addresses 100..131`."""
        return (
            f"{self.function} (function {self.function_code}) of unit {self.unit_id},"
            f" addresses {self.address}..{self.last_address}"
        )


@dataclass(eq=False)
class PollGroup:
    """Registers of one unit and table read on one cadence."""

    unit_id: int
    table: str
    cadence_ms: int
    reads: list[Read]
    next_due: float = 0.0  # time.monotonic() when the group is to be read next

    def advance(self, now: float) -> None:
        """Schedule the next read one cadence on, keeping the phase; skip polls missed while blocked."""
        period = self.cadence_ms / 1000
        self.next_due += period
        if self.next_due <= now:
            self.next_due = now + period


def plan(config: ModbusConfig) -> list[PollGroup]:
    """The poll groups of a register map: one per unit, table and cadence, each with its reads
    coalesced — registers at most `max_gap` unmapped addresses apart share a request while the request
    stays within the protocol's (or the configured) size limit."""
    members: dict[tuple[int, str, int], list[ModbusRegister]] = defaultdict(list)
    for reg in config.registers:
        members[(config.unit_of(reg), reg.table, config.cadence_of(reg))].append(reg)
    groups = []
    for (unit_id, table, cadence_ms), regs in sorted(members.items()):
        limit = config.max_bits_per_request if table in BIT_TABLES else config.max_registers_per_request
        reads: list[Read] = []
        batch: list[ModbusRegister] = []
        start = end = 0  # the current request's first address and one past its last
        for reg in sorted(regs, key=lambda r: (r.address, -r.width)):
            reg_end = reg.address + reg.width
            if batch and reg.address - end <= config.max_gap and max(end, reg_end) - start <= limit:
                batch.append(reg)
                end = max(end, reg_end)
                continue
            if batch:
                reads.append(Read(unit_id, table, start, end - start, tuple(batch)))
            batch, start, end = [reg], reg.address, reg_end
        reads.append(Read(unit_id, table, start, end - start, tuple(batch)))
        groups.append(PollGroup(unit_id, table, cadence_ms, reads))
    return groups


# ---- one poll cycle's records ----------------------------------------------------------------------


@dataclass
class _Batch:
    """What one poll cycle read: records per kind (columns), rejects per kind, requests answered."""

    answered: int = 0
    sample_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    state_rows: tuple[list[str], list[int], list[str]] = field(default_factory=lambda: ([], [], []))
    count_rows: tuple[list[str], list[int], list[int]] = field(default_factory=lambda: ([], [], []))
    rejects: dict[RecordKind, list[Reject]] = field(default_factory=lambda: defaultdict(list))

    def tables(self) -> list[tuple[RecordKind, pa.Table]]:
        out = []
        if self.sample_parts:
            assets, signals, ts, values = (np.concatenate(c) for c in zip(*self.sample_parts, strict=True))
            out.append((RecordKind.SAMPLES, samples_table(assets, signals, ts, values)))
        if self.state_rows[0]:
            out.append((RecordKind.STATES, states_table(*self.state_rows)))
        if self.count_rows[0]:
            out.append((RecordKind.COUNTS, counts_table(*self.count_rows)))
        for kind in self.rejects:  # faults without records of their kind
            if kind not in {k for k, _ in out}:
                out.append((kind, SPECS[kind].schema.empty_table()))
        return out


class _LinkFault(Exception):
    """The link failed a request: no answer in time, the connection dropped, or a garbled answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Link:
    """One TCP connection to the device: sends a request and waits for its answer until a deadline."""

    def __init__(self, sock: socket.socket, timeout_s: float) -> None:
        self.sock = sock
        self._timeout_s = timeout_s
        self._framer = FramerSocket(DecodePDU(False))
        self._tid = 0

    def request(self, pdu: ModbusPDU) -> ModbusPDU:
        """The answer to `pdu`. Raises TimeoutError without one in time, ConnectionError when the device
        closes the connection, ModbusException for an answer that cannot be parsed."""
        self._tid = self._tid % 0xFFFF + 1
        pdu.transaction_id = self._tid
        deadline = time.monotonic() + self._timeout_s
        self.sock.settimeout(self._timeout_s)
        self.sock.sendall(self._framer.buildFrame(pdu))
        buffer = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the device closed the connection")
            buffer += chunk
            # frames of other transactions (a late answer) are skipped; a partial frame waits for more
            used, answer = self._framer.handleFrame(buffer, pdu.dev_id, self._tid)
            buffer = buffer[used:]
            if answer is not None:
                return answer

    def abort(self) -> None:
        """Cut a request in flight short (from another thread)."""
        with contextlib.suppress(OSError):  # already closed
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


def _now_us() -> int:
    return time.time_ns() // 1000


def _iso(ts_us: int) -> str:
    return datetime.fromtimestamp(ts_us / 1e6, UTC).isoformat()


# ---- the connector ---------------------------------------------------------------------------------


class ModbusConnector:
    """Polls one Modbus TCP device by its register map; `start` returns at once, `stop` ends the poller."""

    def __init__(self, config: ModbusConfig, target: RecordTarget) -> None:
        self.config = config
        self.health = Health(config.key, "modbus")
        self._stop = threading.Event()
        self._inlet = Inlet(target, config.tenant, self.health, self._stop)
        self._groups = plan(config)
        self._counters = CounterIncrements()
        self._last_state: dict[str, str] = {}  # register name → state last handed to ingest
        self._link: _Link | None = None
        self._thread: threading.Thread | None = None
        self._failures = 0  # failed requests in a row
        self._down = False  # DISCONNECTED: wait before each reconnect attempt
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s)

    @property
    def groups(self) -> list[PollGroup]:
        return self._groups

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"modbus-{self.config.key}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling; a request in flight is cut short by shutting its socket down."""
        self._stop.set()
        link = self._link
        if link is not None:
            link.abort()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("connection %s: the poller did not stop within %.1f s", self.config.key, timeout)
        self.health.set_state(LinkState.STOPPED)

    # the poll loop ---------------------------------------------------------------------------------

    def _run(self) -> None:
        now = time.monotonic()
        for group in self._groups:
            group.next_due = now
        try:
            while not self._stop.is_set():
                if self._link is None:
                    if self._down and self._stop.wait(self._backoff.next()):
                        break
                    self._link = self._connect()
                    continue
                now = time.monotonic()
                due = [g for g in self._groups if g.next_due <= now]
                if not due:
                    self._stop.wait(min(g.next_due for g in self._groups) - now)
                    continue
                self._cycle(self._link, due)
        except Exception:  # a bug, not a device fault: say so loudly, once
            log.exception("connection %s: the Modbus poller failed", self.config.key)
            self.health.set_state(LinkState.DISCONNECTED, "internal error; see the log")
        finally:
            self._close()

    def _connect(self) -> _Link | None:
        host, port = self.config.host, self.config.port
        try:
            sock = socket.create_connection((host, port), timeout=self.config.timeout_s)
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            self._disconnected(f"cannot connect to {host}:{port}: {reason}")
            self.health.failed("connect_failed", f"cannot connect to {host}:{port}: {reason}")
            return None
        return _Link(sock, self.config.timeout_s)

    def _close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()

    def _disconnected(self, detail: str) -> None:
        self._down = True
        self._last_state.clear()  # the state after reconnecting is reported again, whatever it is
        self.health.set_state(LinkState.DISCONNECTED, detail)

    def _cycle(self, link: _Link, due: list[PollGroup]) -> None:
        """Read the due groups and hand their records to ingest; a link fault ends the cycle early
        (what was read by then is kept) and closes the connection."""
        batch = _Batch()
        fault: _LinkFault | None = None
        try:
            for group in due:
                for read in group.reads:
                    self._poll(link, read, batch)
                group.advance(time.monotonic())
        except _LinkFault as exc:
            fault = exc
        if batch.answered:
            self._failures = 0
            if self._down or self.health.state is not LinkState.CONNECTED:
                self._down = False
                self._backoff.reset()
                self.health.set_state(LinkState.CONNECTED, f"{self.config.host}:{self.config.port}")
        tables = batch.tables()
        if batch.answered:  # counted before ingest may hold the poller back
            self.health.received(messages=batch.answered, records=sum(t.num_rows for _, t in tables))
        self._submit(tables, batch.rejects)
        if fault is not None:
            self._close()
            if self._stop.is_set():
                return  # stop() cut the request short: not a fault of the device
            self._failures += 1
            # a device may drop an idle connection: the first loss is retried at once, not a disconnect
            dropped_once = fault.code == "connection_lost" and self._failures == 1
            if not dropped_once and (self._failures >= self.config.max_failures or self._down):
                self._disconnected(f"{fault.message} ({self._failures} failed requests in a row)")
            self.health.failed(fault.code, fault.message)

    def _poll(self, link: _Link, read: Read, batch: _Batch) -> None:
        response = self._request(link, read)
        ts = _now_us()
        batch.answered += 1
        if isinstance(response, ExceptionResponse):
            self._exception(read, response, ts, batch)
            return
        if response.function_code != read.function_code:
            raise _LinkFault(
                "invalid_response",
                f"{read.describe()} was answered with function {response.function_code}",
            )
        data: Sequence[int] | Sequence[bool] = (
            response.bits if read.table in BIT_TABLES else response.registers
        )
        if len(data) < read.count:
            raise _LinkFault(
                "invalid_response",
                f"{read.describe()} answered {len(data)} values instead of {read.count}",
            )
        data = data[: read.count]
        read.fault = None
        if read.samples:
            self._samples(read, data, ts, batch)
        if read.states:
            self._states(read, data, ts, batch)
        if read.counters:
            for reg, value in zip(read.counters, read.counter_layout.values(data), strict=True):
                produced = self._counters.increment(reg.name, int(value))
                if produced:  # the first reading and readings without progress give no count
                    batch.count_rows[0].append(reg.asset_id)
                    batch.count_rows[1].append(ts)
                    batch.count_rows[2].append(produced)

    def _request(self, link: _Link, read: Read) -> ModbusPDU:
        pdu = _REQUESTS[read.table](address=read.address, count=read.count, dev_id=read.unit_id)
        try:
            return link.request(pdu)
        except TimeoutError as exc:
            raise _LinkFault(
                "timeout", f"no answer within {self.config.timeout_s} s to {read.describe()}"
            ) from exc
        except OSError as exc:  # reset, closed, broken pipe
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise _LinkFault(
                "connection_lost", f"connection lost during {read.describe()}: {reason}"
            ) from exc
        except ModbusException as exc:
            raise _LinkFault("invalid_response", f"{read.describe()}: {exc}") from exc

    def _exception(self, read: Read, response: ExceptionResponse, ts: int, batch: _Batch) -> None:
        code = response.exception_code
        message = f"{read.describe()}: exception {code} ({EXCEPTION_NAMES.get(code, 'unknown')})"
        if read.fault == code:
            self.health.failed("modbus_exception", message)  # still failing: counted, not dead-lettered again
            return
        read.fault = code
        for record, regs in (("sample", read.samples), ("state", read.states), ("counter", read.counters)):
            if regs:
                raw = self._source(read, ts) | {
                    "exception_code": code,
                    "exception": EXCEPTION_NAMES.get(code, "unknown"),
                    "registers": [r.name for r in regs],
                }
                batch.rejects[_KINDS[record]].append(Reject("modbus_exception", message, raw))

    def _source(self, read: Read, ts: int) -> dict[str, Any]:
        return {
            "source": f"modbus://{self.config.host}:{self.config.port}",
            "connection": self.config.name,
            "unit_id": read.unit_id,
            "function": read.function,
            "function_code": read.function_code,
            "table": read.table,
            "address_first": read.address,
            "address_last": read.last_address,
            "at": _iso(ts),
        }

    def _samples(self, read: Read, data: Sequence[int] | Sequence[bool], ts: int, batch: _Batch) -> None:
        values = apply_scale(read.sample_layout.floats(data), read.scale, read.offset)
        finite = np.isfinite(values)
        bad = frozenset(np.flatnonzero(~finite).tolist())
        for position in sorted(bad):
            reg = read.samples[position]
            message = (
                f"register {reg.name!r} ({reg.describe()}) read {float(values[position])}; samples must be"
                " finite"
            )
            if position in read.non_finite:
                self.health.failed("non_finite_value", message)
                continue
            raw = self._source(read, ts) | {
                "register": reg.name,
                "asset_id": reg.asset_id,
                "signal": reg.signal,
                "address": reg.address,
                "type": reg.type,
                "words": [f"0x{w:04x}" for w in read.sample_layout.raw(data, position)],
                "value": repr(float(values[position])),
            }
            batch.rejects[RecordKind.SAMPLES].append(Reject("non_finite_value", message, raw))
        read.non_finite = bad
        if bad:
            values = values[finite]
        if len(values):
            batch.sample_parts.append(
                (
                    read.sample_assets[finite] if bad else read.sample_assets,
                    read.sample_signals[finite] if bad else read.sample_signals,
                    np.full(len(values), ts, dtype=np.int64),
                    values,
                )
            )

    def _states(self, read: Read, data: Sequence[int] | Sequence[bool], ts: int, batch: _Batch) -> None:
        """A state is handed on when it changes (and first after connecting): it holds until the next."""
        for reg, value in zip(read.states, read.state_layout.values(data), strict=True):
            code = int(value)
            state = reg.states.get(code) if reg.states else str(code)
            if state is None:
                state = str(code)
                if self._last_state.get(reg.name) != state:
                    self.health.failed(
                        "unmapped_state_value",
                        f"register {reg.name!r} read {code}, which `states` does not map",
                    )
            if self._last_state.get(reg.name) == state:
                continue
            self._last_state[reg.name] = state
            batch.state_rows[0].append(reg.asset_id)
            batch.state_rows[1].append(ts)
            batch.state_rows[2].append(state)

    def _submit(
        self, tables: list[tuple[RecordKind, pa.Table]], rejects: dict[RecordKind, list[Reject]]
    ) -> None:
        for kind, table in tables:
            future = self._inlet.submit(kind, table, rejects.get(kind, ()))
            if future is None:  # stopped while ingest was full
                return
            future.add_done_callback(self._committed(table.num_rows))

    def _committed(self, rows: int) -> Any:
        """Count records ingest rejected (an undeclared signal, say) in the connection's health."""

        def done(future: Future[IngestResult]) -> None:
            exc = future.exception()
            if exc is not None:
                self.health.failed("ingest_failed", f"records were not stored: {exc}")
                return
            rejected: dict[str, list[str]] = defaultdict(list)
            for error in future.result().errors:
                if error.index < rows:  # the connector's own rejects are counted already
                    rejected[error.code].append(error.message)
            for code, messages in rejected.items():
                self.health.failed(code, messages[0], count=len(messages))

        return done
