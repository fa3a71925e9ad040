"""The Modbus TCP poller against real pymodbus TCP servers on loopback (and a listener that never
answers), plus the pure parts: decoding, the poll plan and the register map's validation."""

from __future__ import annotations

import asyncio
import itertools
import math
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from pydantic import ValidationError
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from leitstand.api.runtime import Runtime
from leitstand.connect.base import LinkState
from leitstand.connect.modbus.client import ModbusConnector, plan
from leitstand.connect.modbus.config import ModbusConfig
from leitstand.connect.modbus.decode import ReadLayout, decode_words, encode_value
from leitstand.domain.assets import parse_asset_model
from leitstand.domain.records import RecordKind
from leitstand.ingest.conform import Decoded
from leitstand.ingest.sink import IngestResult
from tests.conftest import EXAMPLE_MODEL, free_port
from tests.connect.helpers import wait_for

M1, M2 = "hh-press-l1-m1", "hh-press-l1-m2"
WAIT_S = 10.0
TYPES = ["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
ORDERS = list(itertools.product(["big", "little"], repeat=2))  # (byte_order, word_order)
# A value of each type that float64 holds exactly (so scale and offset can be checked exactly).
VALUES: dict[str, float] = {
    "int16": -1234,
    "uint16": 54321,
    "int32": -123456789,
    "uint32": 4_000_000_000,
    "int64": -(2**40) - 7,
    "uint64": 2**50 + 3,
    "float32": 123.456,
    "float64": -98765.4321,
}
FC = {"coil": 15, "discrete": 2, "holding": 16, "input": 4}  # a function code addressing each table


# ---- helpers ---------------------------------------------------------------------------------------


def samples(rt: Runtime, signal: str | None = None) -> list[tuple[str, float]]:
    where = "" if signal is None else f" and signal = '{signal}'"
    rows = rt.events.query(f"select signal, value from samples where tenant = 'acme'{where} order by ts")
    return list(zip(rows["signal"].to_pylist(), rows["value"].to_pylist(), strict=True))


def rejects(rt: Runtime, code: str) -> list[dict[str, Any]]:
    table = rt.events.rejects("acme", limit=1000)
    return [
        {"reason": r["reason"], "kind": r["kind"], "record": orjson.loads(r["record"])}
        for r in table.to_pylist()
        if r["reason_code"] == code
    ]


def config(port: int, registers: list[dict[str, Any]], **options: Any) -> ModbusConfig:
    settings: dict[str, Any] = {
        "name": "press-plc",
        "tenant": "acme",
        "host": "127.0.0.1",
        "port": port,
        "timeout_s": 0.5,
        "cadence_ms": 50,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.3,
    }
    return ModbusConfig.model_validate(settings | options | {"registers": registers})


class Recorder:
    """The runtime's ingest pipeline, noting each batch a connector hands it (kind, records, rejects)."""

    def __init__(self, rt: Runtime) -> None:
        self._pipeline = rt.pipeline
        self.batches: list[tuple[RecordKind, int, int]] = []

    def submit(self, tenant: str, kind: RecordKind, decoded: Decoded) -> Future[IngestResult]:
        self.batches.append((kind, decoded.table.num_rows, len(decoded.errors)))
        return self._pipeline.submit(tenant, kind, decoded)


class PlcServer:
    """A pymodbus Modbus TCP server on loopback (unit 1), in its own thread and event loop. Values set
    through `set` survive a restart, as a PLC's memory would."""

    def __init__(self, port: int, registers: int = 200, bits: int = 64) -> None:
        self.port = port
        self._size = (registers, bits)
        self._values: list[tuple[str, int, list[Any]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ModbusTcpServer | None = None

    def start(self) -> PlcServer:
        registers, bits = self._size
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="plc-server", daemon=True)
        self._thread.start()

        async def serve() -> ModbusTcpServer:
            device = SimDevice(
                id=1,
                simdata=(
                    [SimData(0, count=bits, values=False, datatype=DataType.BITS)],
                    [SimData(0, count=bits, values=False, datatype=DataType.BITS)],
                    [SimData(0, count=registers, values=0, datatype=DataType.REGISTERS)],
                    [SimData(0, count=registers, values=0, datatype=DataType.REGISTERS)],
                ),
            )
            server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
            await server.serve_forever(background=True)
            return server

        self._server = asyncio.run_coroutine_threadsafe(serve(), loop).result(WAIT_S)
        for table, address, values in self._values:
            self._write(table, address, values)
        return self

    def set(self, table: str, address: int, values: list[Any]) -> None:
        self._values.append((table, address, values))
        if self._server is not None:
            self._write(table, address, values)

    def _write(self, table: str, address: int, values: list[Any]) -> None:
        assert self._server is not None
        assert self._loop is not None
        failed = asyncio.run_coroutine_threadsafe(
            self._server.async_setValues(1, FC[table], address, values), self._loop
        ).result(WAIT_S)
        assert failed is None

    def stop(self) -> None:
        loop, server, thread = self._loop, self._server, self._thread
        if loop is None or server is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(WAIT_S)  # type: ignore[no-untyped-call]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT_S)
        loop.close()
        self._loop = self._server = self._thread = None


class SilentListener:
    """Accepts TCP connections and reads what arrives, but never answers: a device that hangs."""

    def __init__(self, port: int) -> None:
        self.received = 0  # bytes of requests that went unanswered
        self._listener = socket.create_server(("127.0.0.1", port))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="silent-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conns: list[socket.socket] = []
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([self._listener, *conns], [], [], 0.05)
                for sock in readable:
                    if sock is self._listener:
                        conns.append(self._listener.accept()[0])
                    elif data := sock.recv(4096):
                        self.received += len(data)
                    else:
                        conns.remove(sock)
                        sock.close()
        finally:
            for sock in conns:
                sock.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_S)
        self._listener.close()


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    """The runtime with its writer running and test signals on machine 1 (one per type and order)."""
    model = yaml.safe_load(EXAMPLE_MODEL.read_text())
    machine = model["sites"][0]["areas"][0]["lines"][0]["machines"][0]
    assert machine["id"] == M1
    machine["signals"] += [{"name": f"{t}_{b}_{w}"} for t in TYPES for b, w in ORDERS]
    machine["signals"] += [{"name": n} for n in ("input_int32", "input_uint16", "coil_3", "coil_9", "di_5")]
    runtime.metadata.import_asset_model("acme", parse_asset_model(model))
    runtime.pipeline.start()
    return runtime


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def connectors() -> Iterator[list[ModbusConnector]]:
    """Connectors a test starts; stopped (and checked to stop promptly) at the end."""
    started: list[ModbusConnector] = []
    yield started
    for connector in started:
        begun = time.monotonic()
        connector.stop()
        assert time.monotonic() - begun < 2.0
        assert connector.health.state is LinkState.STOPPED


@pytest.fixture
def servers() -> Iterator[list[PlcServer | SilentListener]]:
    running: list[PlcServer | SilentListener] = []
    yield running
    for server in running:
        server.stop()


def run(connectors: list[ModbusConnector], cfg: ModbusConfig, target: Any) -> ModbusConnector:
    connector = ModbusConnector(cfg, target)
    connectors.append(connector)
    connector.start()
    return connector


# ---- decoding (pure) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("byte_order", "word_order", "words"),
    [
        ("big", "big", [0x42F6, 0xE979]),  # ABCD
        ("big", "little", [0xE979, 0x42F6]),  # CDAB
        ("little", "big", [0xF642, 0x79E9]),  # BADC
        ("little", "little", [0x79E9, 0xF642]),  # DCBA
    ],
)
def test_float32_in_each_byte_and_word_order(byte_order: Any, word_order: Any, words: list[int]) -> None:
    value = decode_words(words, "float32", byte_order, word_order)
    assert value.tolist() == [pytest.approx(123.456, rel=1e-7)]
    assert encode_value(123.456, "float32", byte_order, word_order) == words


@pytest.mark.parametrize("type_", TYPES)
@pytest.mark.parametrize(("byte_order", "word_order"), ORDERS)
def test_every_type_decodes_from_its_registers(type_: Any, byte_order: Any, word_order: Any) -> None:
    fmt = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q"}
    fmt |= {"float32": "f", "float64": "d"}
    data = struct.pack(">" + fmt[type_], VALUES[type_])  # the value's bytes, most significant first
    words = [data[i : i + 2] for i in range(0, len(data), 2)]
    if word_order == "little":
        words.reverse()
    if byte_order == "little":
        words = [w[::-1] for w in words]
    registers = [int.from_bytes(w, "big") for w in words]
    # two values in a row, as a response holds them
    decoded = decode_words(registers + registers, type_, byte_order, word_order).tolist()
    expected = struct.unpack(">" + fmt[type_], data)[0]
    assert decoded == [expected, expected]
    assert all(type(v) is type(expected) for v in decoded)  # integers stay exact integers


def test_a_read_layout_decodes_mixed_encodings_in_field_order() -> None:
    layout = ReadLayout(
        [(0, "uint16", "big", "big"), (1, "float32", "big", "little"), (3, "int16", "little", "big")]
    )
    response = [
        7,
        *encode_value(1.5, "float32", "big", "little"),
        *encode_value(-2, "int16", "little", "big"),
    ]
    assert layout.values(response) == [7, 1.5, -2]
    assert layout.floats(response).tolist() == [7.0, 1.5, -2.0]
    assert layout.raw(response, 1) == response[1:3]
    bits = ReadLayout([(2, "bool", "big", "big"), (0, "bool", "big", "big")], bits=True)
    assert bits.values([True, False, False, True]) == [False, True]


# ---- the poll plan and the register map (pure) ----------------------------------------------------


def reg(name: str, address: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "asset_id": M1, "signal": name, "address": address} | extra


def test_registers_of_one_cadence_and_table_are_read_in_as_few_requests_as_allowed() -> None:
    cfg = config(
        502,
        [
            reg("a", 0, type="float32"),
            reg("b", 2),
            reg("c", 11),  # 8 unmapped addresses after b (max_gap): still the same request
            reg("d", 21),  # 9 after c: a new one
            reg("f", 0, table="input"),
            reg("g", 30, cadence_ms=1000),
            reg("h", 0, table="coil"),
            reg("i", 5, table="coil"),
            reg("k", 3, unit_id=7),
        ],
    )
    groups = {(g.unit_id, g.table, g.cadence_ms): g for g in plan(cfg)}
    assert {
        key: [(r.address, r.count, [x.name for x in r.registers]) for r in g.reads]
        for key, g in groups.items()
    } == {
        (1, "holding", 50): [(0, 12, ["a", "b", "c"]), (21, 1, ["d"])],
        (1, "holding", 1000): [(30, 1, ["g"])],
        (1, "input", 50): [(0, 1, ["f"])],
        (1, "coil", 50): [(0, 6, ["h", "i"])],
        (7, "holding", 50): [(3, 1, ["k"])],
    }
    # requests stay within 125 registers and 2000 bits, however near the addresses
    wide = config(
        502,
        [
            reg("a", 0),
            reg("b", 123, type="uint32"),  # 0..124: 125 registers
            reg("c", 125),
            reg("h", 0, table="coil"),
            reg("i", 1999, table="coil"),  # 0..1999: 2000 bits
            reg("j", 2000, table="coil"),
        ],
        max_gap=2000,
    )
    assert [[(r.address, r.count) for r in g.reads] for g in plan(wide)] == [
        [(0, 2000), (2000, 1)],
        [(0, 125), (125, 1)],
    ]
    exact = plan(config(502, [reg("a", 0), reg("b", 2)], max_gap=0))
    assert [(r.address, r.count) for r in exact[0].reads] == [(0, 1), (2, 1)]


@pytest.mark.parametrize(
    ("registers", "options", "message"),
    [
        ([reg("a", 0, type="int8")], {}, "register 'a': unknown type 'int8'; use one of int16"),
        ([reg("a", 70000)], {}, "register 'a': address 70000 is outside 0..65535"),
        ([reg("a", -1)], {}, "register 'a': address -1 is outside 0..65535"),
        ([reg("a", 65535, type="uint32")], {}, "needs 2 registers and would run past 65535"),
        ([reg("a", 65533, type="float64")], {}, "needs 4 registers and would run past 65535"),
        (
            [reg("a", 10, type="float32"), reg("b", 11)],
            {},
            "registers 'a' (holding 10..11 float32, big/big) and 'b' (holding 11 uint16, big/big) overlap"
            " but disagree",
        ),
        (
            [reg("a", 10, type="float32"), reg("b", 10, type="float32", word_order="little")],
            {},
            "overlap but disagree",
        ),
        (
            [{"name": "a", "asset_id": M1, "address": 0}],
            {},
            "register 'a': a sample needs the asset's `signal`",
        ),
        ([reg("a", 0, cadence_ms=0)], {}, "register 'a': cadence_ms must be greater than 0, not 0"),
        ([reg("a", 0)], {"cadence_ms": -5}, "cadence_ms must be greater than 0, not -5"),
        ([reg("a", 0, table="coil", type="uint16")], {}, "a coil is a single bit; its type must be bool"),
        ([reg("a", 0, table="register")], {}, "register 'a': unknown table 'register'"),
        (
            [{"name": "a", "asset_id": M1, "record": "counter", "address": 0, "type": "float32"}],
            {},
            "a counter needs an integer type",
        ),
        (
            [{"name": "a", "asset_id": M1, "record": "state", "address": 0, "scale": 2}],
            {},
            "scale and offset apply to samples only",
        ),
        ([reg("a", 0, states={1: "RUNNING"})], {}, "`states` applies to records of kind state only"),
        ([reg("a", 0), reg("a", 5)], {}, "register name 'a' is used twice"),
        ([reg("a", 0), reg("b", 5, signal="a")], {}, "both deliver signal 'a' of asset"),
        ([reg("a", 0, scale=0)], {}, "scale 0 would make every value 0"),
        ([], {}, "registers"),
    ],
)
def test_the_register_map_is_validated_with_clear_errors(
    registers: list[dict[str, Any]], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        config(502, registers, **options)
    assert message in str(caught.value)


def test_registers_may_share_addresses_when_they_read_them_alike() -> None:
    cfg = config(
        502,
        [
            reg("a", 10, type="float32"),
            {"name": "b", "asset_id": M2, "signal": "temperature", "address": 10, "type": "float32"},
        ],
    )
    assert cfg.registers[1].type == "float32"
    assert config(502, [reg("c", 0, table="discrete")]).registers[0].type == "bool"  # the bit default
    assert config(502, [reg("d", 65532, type="float64")]).registers[0].last_address == 65535
    assert (
        ModbusConfig.model_validate(
            {"name": "x", "tenant": "acme", "host": "plc", "registers": [reg("a", 0)]}
        ).port
        == 502
    )


def test_the_documented_example_is_a_valid_configuration_read_as_documented() -> None:
    text = (Path(__file__).parents[2] / "docs" / "connect" / "modbus.md").read_text()
    example = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    [cfg] = [ModbusConfig.model_validate(c) for c in example["connections"]]
    requests = [(g.table, g.cadence_ms, r.address, r.count) for g in plan(cfg) for r in g.reads]
    assert requests == [
        ("discrete", 1000, 4, 1),
        ("holding", 1000, 100, 11),
        ("holding", 5000, 120, 2),
        ("input", 1000, 10, 1),
    ]


# ---- against a real server -------------------------------------------------------------------------


def test_values_of_every_type_and_order_arrive_scaled_in_one_batch_per_cycle(
    rt: Runtime, port: int, servers: list[Any], connectors: list[ModbusConnector]
) -> None:
    plc = PlcServer(port).start()
    servers.append(plc)
    registers, expected, address = [], {}, 0
    for type_, (byte_order, word_order) in itertools.product(TYPES, ORDERS):
        name = f"{type_}_{byte_order}_{word_order}"
        scaled = word_order == "little"  # half of them with scale and offset
        words = encode_value(VALUES[type_], type_, byte_order, word_order)  # type: ignore[arg-type]
        plc.set("holding", address, words)
        registers.append(
            reg(name, address, type=type_, byte_order=byte_order, word_order=word_order)
            | ({"scale": 0.5, "offset": 10} if scaled else {})
        )
        raw = (
            float(struct.unpack(">f", struct.pack(">f", VALUES[type_]))[0])
            if type_ == "float32"
            else VALUES[type_]
        )
        expected[name] = raw * 0.5 + 10 if scaled else float(raw)
        address += len(words)
    plc.set("input", 10, encode_value(-250_000, "int32"))
    plc.set("input", 12, [42])
    plc.set("coil", 3, [True])
    plc.set("discrete", 5, [False])
    registers += [
        reg("input_int32", 10, table="input", type="int32", scale=0.01, unit="bar"),
        reg("input_uint16", 12, table="input"),
        reg("coil_3", 3, table="coil"),
        reg("coil_9", 9, table="coil"),
        reg("di_5", 5, table="discrete"),
    ]
    expected |= {"input_int32": -2500.0, "input_uint16": 42.0, "coil_3": 1.0, "coil_9": 0.0, "di_5": 0.0}
    recorder = Recorder(rt)
    begun = time.time()
    connector = run(connectors, config(port, registers), recorder)
    # 32 holding values (80 registers) in one request, the input registers in one, coils 3..9 in one
    assert [[(r.address, r.count) for r in g.reads] for g in connector.groups] == [
        [(3, 7)],
        [(5, 1)],
        [(0, 80)],
        [(10, 3)],
    ]
    wait_for(lambda: len(samples(rt)) >= 2 * len(expected), "two cycles of samples")
    first = dict(samples(rt)[: len(expected)])
    assert first == pytest.approx(expected, rel=1e-12)
    # one batch per record kind and cycle, never one per value
    sample_batches = [rows for kind, rows, _ in recorder.batches if kind is RecordKind.SAMPLES]
    assert sample_batches[:2] == [len(expected), len(expected)]
    assert {kind for kind, _, _ in recorder.batches} == {RecordKind.SAMPLES}
    ts = rt.events.query("select min(ts) lo, max(ts) hi from samples where tenant = 'acme'").to_pylist()[0]
    assert begun - 1 <= ts["lo"].timestamp() <= ts["hi"].timestamp() <= time.time() + 1
    health = connector.health
    assert health.state is LinkState.CONNECTED
    assert health.errors == {}
    assert health.messages >= 8  # 4 requests per cycle
    assert health.records >= 2 * len(expected)


def test_a_state_register_is_mapped_through_states_and_reported_on_change(
    rt: Runtime, port: int, servers: list[Any], connectors: list[ModbusConnector]
) -> None:
    plc = PlcServer(port).start()
    servers.append(plc)
    plc.set("holding", 0, [1])
    states = {0: "STOPPED", 1: "RUNNING", 2: "SETUP"}
    connector = run(
        connectors,
        config(port, [{"name": "mode", "asset_id": M1, "record": "state", "address": 0, "states": states}]),
        rt.pipeline,
    )

    def stored() -> list[str]:
        table = rt.events.query("select state from states where tenant = 'acme' order by ts")
        return [str(s) for s in table["state"].to_pylist()]

    wait_for(lambda: stored() == ["RUNNING"], "the first state")
    plc.set("holding", 0, [2])
    wait_for(lambda: stored() == ["RUNNING", "SETUP"], "the change to SETUP")
    plc.set("holding", 0, [7])  # a value the map does not know passes as its digits
    wait_for(lambda: stored() == ["RUNNING", "SETUP", "7"], "the unmapped value")
    polled = connector.health.messages
    wait_for(lambda: connector.health.messages >= polled + 3, "three more polls")
    assert stored() == ["RUNNING", "SETUP", "7"]  # an unchanged state is not repeated
    assert connector.health.errors == {"unmapped_state_value": 1}


def test_a_counter_register_becomes_increments_across_a_reset(
    rt: Runtime, port: int, servers: list[Any], connectors: list[ModbusConnector]
) -> None:
    plc = PlcServer(port).start()
    servers.append(plc)
    plc.set("holding", 20, encode_value(100, "uint32"))
    connector = run(
        connectors,
        config(
            port, [{"name": "parts", "asset_id": M2, "record": "counter", "address": 20, "type": "uint32"}]
        ),
        rt.pipeline,
    )

    def produced() -> list[int]:
        table = rt.events.query("select produced from counts where tenant = 'acme' order by ts")
        return [int(p) for p in table["produced"].to_pylist()]

    wait_for(lambda: connector.health.messages >= 2, "the first readings")
    assert produced() == []  # the first reading says nothing about what came before
    for reading, expected in ((105, [5]), (112, [5, 7]), (3, [5, 7, 3])):  # 3: the PLC reset its counter
        plc.set("holding", 20, encode_value(reading, "uint32"))
        wait_for(lambda expected=expected: produced() == expected, f"the increment to {reading}")  # type: ignore[misc]


def test_an_exception_response_is_dead_lettered_once_while_other_groups_keep_polling(
    rt: Runtime, port: int, servers: list[Any], connectors: list[ModbusConnector]
) -> None:
    plc = PlcServer(port, registers=120).start()
    servers.append(plc)
    plc.set("holding", 10, encode_value(61.5, "float32"))
    plc.set("holding", 20, encode_value(math.nan, "float32"))
    registers = [
        reg("temperature", 10, type="float32"),
        reg("motor_current", 20, type="float32"),
        # beyond the server's 120 registers: every read of this group answers "illegal data address"
        {"name": "beyond", "asset_id": M2, "signal": "temperature", "address": 500, "cadence_ms": 80},
    ]
    connector = run(connectors, config(port, registers), rt.pipeline)
    wait_for(lambda: connector.health.errors.get("modbus_exception", 0) >= 3, "three exception responses")
    wait_for(lambda: len(samples(rt, "temperature")) >= 3, "temperatures")
    seen = len(samples(rt, "temperature"))
    wait_for(lambda: len(samples(rt, "temperature")) >= seen + 3, "more temperatures")  # still polling
    assert set(samples(rt, "temperature")) == {("temperature", 61.5)}

    [exception] = rejects(rt, "modbus_exception")  # once, although every poll fails
    assert exception["reason"] == (
        "read holding registers (function 3) of unit 1, addresses 500..500:"
        " exception 2 (illegal data address)"
    )
    assert exception["kind"] == "samples"
    assert exception["record"] | {"at": None} == {
        "source": f"modbus://127.0.0.1:{port}",
        "connection": "press-plc",
        "unit_id": 1,
        "function": "read holding registers",
        "function_code": 3,
        "table": "holding",
        "address_first": 500,
        "address_last": 500,
        "exception_code": 2,
        "exception": "illegal data address",
        "registers": ["beyond"],
        "at": None,
    }
    # NaN from a float register: dead-lettered when it begins, again after a finite value
    [nan] = rejects(rt, "non_finite_value")
    assert nan["record"]["register"] == "motor_current"
    assert nan["record"]["value"] == "nan"
    assert nan["record"]["words"] == ["0x7fc0", "0x0000"]
    plc.set("holding", 20, encode_value(12.25, "float32"))
    wait_for(lambda: ("motor_current", 12.25) in samples(rt, "motor_current"), "a finite current")
    plc.set("holding", 20, encode_value(math.inf, "float32"))
    wait_for(lambda: len(rejects(rt, "non_finite_value")) == 2, "the second non-finite episode")
    assert connector.health.state is LinkState.CONNECTED
    assert connector.health.errors["non_finite_value"] >= 3


def test_a_device_that_never_answers_is_disconnected_and_recovers_once_a_server_answers(
    rt: Runtime, port: int, servers: list[Any], connectors: list[ModbusConnector]
) -> None:
    silent = SilentListener(port)
    connector = run(
        connectors,
        config(port, [reg("temperature", 0)], timeout_s=0.2, max_failures=2),
        rt.pipeline,
    )
    try:
        wait_for(lambda: connector.health.state is LinkState.DISCONNECTED, "a disconnected link")
        errors, detail = dict(connector.health.errors), connector.health.detail
    finally:
        silent.stop()
    assert set(errors) == {"timeout"}  # TCP connects; the requests go unanswered
    assert detail.startswith(
        "no answer within 0.2 s to read holding registers (function 3) of unit 1, addresses 0..0 ("
    )
    plc = PlcServer(port).start()
    servers.append(plc)
    plc.set("holding", 0, [77])
    wait_for(lambda: connector.health.state is LinkState.CONNECTED, "the link back")
    wait_for(lambda: ("temperature", 77.0) in samples(rt), "a value from the real server")


def test_a_server_restart_is_survived_by_reconnecting_with_backoff(
    rt: Runtime, port: int, servers: list[Any], connectors: list[ModbusConnector]
) -> None:
    plc = PlcServer(port).start()
    servers.append(plc)
    plc.set("holding", 0, [1])
    connector = run(connectors, config(port, [reg("temperature", 0)], reconnect_max_s=0.4), rt.pipeline)
    wait_for(lambda: connector.health.state is LinkState.CONNECTED, "the link")
    plc.stop()
    wait_for(lambda: connector.health.state is LinkState.DISCONNECTED, "the lost link")
    down_since = time.monotonic()
    time.sleep(1.2)
    attempts = connector.health.errors.get("connect_failed", 0)
    # 0.05 s doubling to 0.4 s: about 5 attempts in 1.2 s (±20 % jitter), not a tight loop
    assert 2 <= attempts <= 8, attempts
    plc.set("holding", 0, [2])  # the PLC comes back with a new value
    plc.start()
    wait_for(lambda: connector.health.state is LinkState.CONNECTED, "the link back")
    assert time.monotonic() - down_since < 3
    wait_for(lambda: ("temperature", 2.0) in samples(rt), "a value after the restart")
    assert connector.health.errors.get("connection_lost", 0) >= 1


def test_stop_cuts_a_request_in_flight_short(rt: Runtime, port: int) -> None:
    silent = SilentListener(port)
    try:
        connector = ModbusConnector(config(port, [reg("temperature", 0)], timeout_s=30), rt.pipeline)
        connector.start()
        wait_for(lambda: silent.received > 0, "a request in flight")
        begun = time.monotonic()
        connector.stop()
        assert time.monotonic() - begun < 1.0  # not the 30 s timeout
    finally:
        silent.stop()
    assert connector.health.state is LinkState.STOPPED
    assert connector.health.errors == {}  # stopping is not a fault of the device
