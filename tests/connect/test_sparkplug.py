"""The Sparkplug B host application: its state machine on crafted payloads, and an edge node written with
an independent library (pysparkplug, in its own environment) through the real broker."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from leitstand.api.runtime import Runtime
from leitstand.connect.assets import ModelRegistrar
from leitstand.connect.base import Health, LinkState
from leitstand.connect.mqtt.config import BrokerConfig
from leitstand.connect.sparkplug import decode as spb
from leitstand.connect.sparkplug.client import SparkplugConnector
from leitstand.connect.sparkplug.config import SparkplugConfig
from leitstand.connect.sparkplug.host import SparkplugHost
from leitstand.domain.records import SPECS, RecordKind
from leitstand.ingest.conform import conform
from leitstand.sim.sparkplug_edge import SparkplugEdgePublisher, sparkplug_connection
from tests.connect.helpers import count, wait_for

REPO = Path(__file__).parents[2]
EDGE_PYTHON = REPO / ".venv" / "sparkplug-edge" / "bin" / "python"
GROUP = "acme:hh"
T0 = 1_790_000_000_000  # epoch ms


class Recorder:
    """The host's outgoing commands, as they would be published."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def __call__(self, topic: str, payload: bytes) -> None:
        self.sent.append((topic, spb.Payload.FromString(payload)))

    @property
    def rebirths(self) -> list[str]:
        return [
            t
            for t, p in self.sent
            if any(m.name == "Node Control/Rebirth" and m.boolean_value for m in p.metrics)
        ]


class Clock:
    def __init__(self) -> None:
        self.now = T0 / 1000

    def __call__(self) -> float:
        return self.now


def payload(seq: int | None, *metrics: dict[str, Any], timestamp: int = T0) -> bytes:
    p = spb.Payload(timestamp=timestamp)
    if seq is not None:
        p.seq = seq
    for m in metrics:
        metric = p.metrics.add()
        for k, v in m.items():
            setattr(metric, k, v)
    return p.SerializeToString()


def bd(n: int) -> dict[str, Any]:
    return {"name": "bdSeq", "datatype": spb.DataType.INT64, "long_value": n}


TEMP = {"name": "temperature", "alias": 1, "datatype": spb.DataType.DOUBLE, "double_value": 20.0}


class Host:
    """A host on crafted messages; `send` decodes one batch and returns its tables."""

    def __init__(self, **options: Any) -> None:
        self.clock = Clock()
        self.commands = Recorder()
        self.health = Health(f"acme/spb-{uuid.uuid4().hex[:6]}", "sparkplug")
        config = SparkplugConfig(name="spb", tenant="acme", **options)
        self.host = SparkplugHost(config, self.health, self.commands, self.clock)

    def send(self, *messages: tuple[str, bytes]) -> dict[RecordKind, Any]:
        batches = self.host.decode(
            [t for t, _ in messages], [p for _, p in messages], [self.clock()] * len(messages)
        )
        return {k: b for k, b in batches.items()}

    def birth(self, seq: int = 0, bd_seq: int = 0) -> None:
        self.send(
            (f"spBv1.0/{GROUP}/NBIRTH/gw1", payload(seq, bd(bd_seq))),
            (f"spBv1.0/{GROUP}/DBIRTH/gw1/m1", payload((seq + 1) % 256, TEMP)),
        )

    def ddata(self, seq: int, value: float) -> tuple[str, bytes]:
        return f"spBv1.0/{GROUP}/DDATA/gw1/m1", payload(
            seq, {"alias": 1, "double_value": value, "timestamp": T0 + seq}
        )


def values(batches: dict[RecordKind, Any]) -> list[float]:
    return batches[RecordKind.SAMPLES].table["value"].to_pylist()


def codes(batches: dict[RecordKind, Any]) -> list[str]:
    return [r.code for r in batches[RecordKind.SAMPLES].rejects]


# the state machine ---------------------------------------------------------------------------------


def test_births_define_metrics_and_aliases_carry_data() -> None:
    h = Host()
    out = h.send(
        (
            f"spBv1.0/{GROUP}/NBIRTH/gw1",
            payload(0, bd(3), {"name": "Node Control/Rebirth", "datatype": 11, "boolean_value": False}),
        ),
        (f"spBv1.0/{GROUP}/DBIRTH/gw1/m1", payload(1, TEMP)),
        h.ddata(2, 21.5),
    )
    table = out[RecordKind.SAMPLES].table
    assert table["value"].to_pylist() == [20.0, 21.5]  # the birth's value, then the data
    assert set(table["asset_id"].to_pylist()) == {"m1"}
    assert set(table["signal"].to_pylist()) == {"temperature"}
    assert table["ts"][1].as_py().timestamp() * 1000 == T0 + 2
    node = h.host.nodes[(GROUP, "gw1")]
    assert (node.online, node.bd_seq, node.seq, node.devices) == (True, 3, 2, {"m1": True})


def test_datatypes_scalars_signed_and_arrays() -> None:
    h = Host()
    metrics = [
        {"name": "i8", "datatype": 1, "int_value": 0xFFFFFF80},  # -128, sign-extended
        {"name": "i16", "datatype": 2, "int_value": 0xFFFE},  # -2, as 16-bit two's complement
        {"name": "i64", "datatype": 4, "long_value": 2**64 - 5},
        {"name": "u32", "datatype": 7, "int_value": 4_000_000_000},
        {"name": "f", "datatype": 9, "float_value": 1.5},
        {"name": "b", "datatype": 11, "boolean_value": True},
        {"name": "dt", "datatype": 13, "long_value": T0},
        {"name": "Motor/Speed rpm", "datatype": 10, "double_value": 900.0},
        {
            "name": "arr",
            "datatype": 24,
            "bytes_value": (-1).to_bytes(4, "little", signed=True) + (7).to_bytes(4, "little"),
        },
        {"name": "bits", "datatype": 32, "bytes_value": (3).to_bytes(4, "little") + bytes([0b10100000])},
        {"name": "text", "datatype": 12, "string_value": "not a number"},
        {"name": "bad", "datatype": 31, "bytes_value": b"\x00" * 5},
    ]
    out = h.send((f"spBv1.0/{GROUP}/NBIRTH/gw1", payload(0, bd(0), *metrics)))
    got = dict(zip(out[RecordKind.SAMPLES].table["signal"].to_pylist(), values(out), strict=True))
    assert got == {
        "i8": -128.0,
        "i16": -2.0,
        "i64": -5.0,
        "u32": 4e9,
        "f": 1.5,
        "b": 1.0,
        "dt": float(T0),
        "Motor.Speed_rpm": 900.0,
        "arr.0": -1.0,
        "arr.1": 7.0,
        "bits.0": 1.0,
        "bits.1": 0.0,
        "bits.2": 1.0,
    }
    assert codes(out) == ["invalid_array"]  # 5 bytes are not whole doubles; the text metric is not stored


def test_seq_reorder_within_the_timeout_needs_no_rebirth() -> None:
    h = Host(reorder_timeout_ms=1000)
    h.birth()
    assert values(h.send(h.ddata(3, 3.0))) == []  # 2 is missing: 3 waits
    assert values(h.send(h.ddata(2, 2.0))) == [2.0, 3.0]  # in order once 2 arrives
    assert h.commands.rebirths == []
    assert values(h.send(h.ddata(3, 3.0))) == []  # a duplicate (redelivery) is skipped
    assert h.health.errors["duplicate"] == 1


def test_seq_gap_past_the_timeout_requests_a_rebirth() -> None:
    h = Host(reorder_timeout_ms=500)
    h.birth()
    assert values(h.send(h.ddata(4, 4.0), h.ddata(5, 5.0))) == []
    h.clock.now += 0.6
    assert values(h.send()) == [4.0, 5.0]  # given up on 2 and 3: what waited is kept
    assert h.commands.rebirths == [f"spBv1.0/{GROUP}/NCMD/gw1"]
    assert h.health.errors["seq_gap"] == 1
    assert values(h.send(h.ddata(6, 6.0))) == [6.0]


def test_seq_wraps_from_255_to_0() -> None:
    h = Host()
    h.birth(seq=253)  # NBIRTH 253, DBIRTH 254
    assert values(h.send(h.ddata(255, 1.0), h.ddata(0, 2.0), h.ddata(1, 3.0))) == [1.0, 2.0, 3.0]
    assert h.commands.rebirths == []


def test_death_with_the_sessions_bdseq_marks_metrics_stale_and_an_older_one_is_ignored() -> None:
    h = Host()
    h.birth(bd_seq=5)
    h.send(h.ddata(2, 30.0))
    h.clock.now += 10
    stale = h.send((f"spBv1.0/{GROUP}/NDEATH/gw1", payload(None, bd(4))))  # the Will of an older session
    assert values(stale) == []
    assert h.host.nodes[(GROUP, "gw1")].online
    assert h.health.errors["stale_death"] == 1
    died = h.send((f"spBv1.0/{GROUP}/NDEATH/gw1", payload(None, bd(5))))
    table = died[RecordKind.SAMPLES].table
    assert table.to_pylist()[0] | {"ts": None} == {
        "tenant": None,
        "asset_id": "m1",
        "signal": "temperature",
        "ts": None,
        "value": 30.0,
        "quality": "BAD",
    }
    assert table["ts"][0].as_py().timestamp() == pytest.approx(h.clock.now)
    assert not h.host.nodes[(GROUP, "gw1")].online
    # after death, data is refused until a new birth, and a rebirth is asked for
    assert codes(h.send(h.ddata(3, 1.0))) == ["no_birth"]
    assert h.commands.rebirths == [f"spBv1.0/{GROUP}/NCMD/gw1"]


def test_faults_are_dead_lettered_with_their_reason() -> None:
    h = Host()
    out = h.send((f"spBv1.0/{GROUP}/NDEATH/gw9", payload(None, bd(1))))  # NDEATH before NBIRTH
    assert values(out) == []
    assert h.health.errors["death_before_birth"] == 1
    h.birth()
    out = h.send(
        (f"spBv1.0/{GROUP}/DDATA/gw1/m1", b"\x0a\xff\xff garbage"),
        (f"spBv1.0/{GROUP}/DDATA/gw1/m1", payload(2, {"alias": 99, "double_value": 1.0})),
        (f"spBv1.0/{GROUP}/DDATA/gw1/m2", payload(3, {"alias": 1, "double_value": 1.0})),
        ("spBv1.0/rival:hh/NBIRTH/gw1", payload(0, bd(0))),
        (f"spBv1.0/{GROUP}/DDATA/gw1/m1", payload(4, {"alias": 1, "double_value": 9.0})),
    )
    # (data messages are read at the end of the batch, so their faults come last)
    assert codes(out) == ["invalid_protobuf", "no_birth", "unknown_alias"]
    assert h.health.errors["foreign_group"] == 1  # another tenant's group: counted, not stored
    assert values(out) == [9.0]  # the good message among them is kept
    assert h.commands.rebirths == [f"spBv1.0/{GROUP}/NCMD/gw1"]  # once, though two faults asked


# against the broker, with an independent edge node ----------------------------------------------


def _retained(topic: str) -> dict[str, Any] | None:
    got: list[bytes] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:6]}")
    c.on_message = lambda _c, _u, m: got.append(m.payload)
    c.connect("127.0.0.1", 1883)
    c.subscribe(topic, 1)
    c.loop_start()
    deadline = time.monotonic() + 3
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    c.disconnect()
    c.loop_stop()
    c._reset_sockets()
    return orjson.loads(got[0]) if got else None


@pytest.mark.skipif(not EDGE_PYTHON.exists(), reason="run `make edge-venv` (make test does)")
def test_an_independent_edge_node_shows_up_as_assets_with_live_values(runtime: Runtime) -> None:
    runtime.pipeline.start()
    host_id = f"leitstand-{uuid.uuid4().hex[:6]}"
    config = SparkplugConfig(
        name="spb",
        tenant="acme",
        host_id=host_id,
        groups=(GROUP,),
        unknown_assets="create",
        broker=BrokerConfig(client_id=f"ls-{uuid.uuid4().hex[:8]}"),
    )
    connector = SparkplugConnector(
        config, runtime.pipeline, ModelRegistrar(runtime.metadata, runtime.asset_cache)
    )
    connector.start()
    node_id = f"gw{uuid.uuid4().hex[:6]}"
    edge = subprocess.Popen(
        [
            str(EDGE_PYTHON),
            str(Path(__file__).parent / "edge" / "pysparkplug_node.py"),
            "1883",
            GROUP,
            node_id,
            "hh-press-l1-m1",
            "50",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: connector.health.state is LinkState.CONNECTED, "the host to connect")
        assert _retained(f"spBv1.0/STATE/{host_id}") == {"online": True, "timestamp": connector._state_ts}
        assert edge.stdout is not None
        assert edge.stdout.readline().strip() == "sent"
        where = "asset_id = 'hh-press-l1-m1' and signal = 'temperature'"
        wait_for(lambda: count(runtime, "samples", where) == 51, "the birth value and 50 updates")
        temps = runtime.events.query(f"select value from samples where {where} order by ts, value")["value"]
        assert temps.to_pylist()[-1] == 70.0
        offsets = runtime.events.query("select min(value) v from samples where signal = 'Offset'")["v"]
        assert offsets[0].as_py() == -49.0  # a signed Int16 from another implementation
        assets = {a.id: a for a in runtime.asset_cache.assets("acme")}
        assert assets[node_id].path == f"acme/hh/hh-edge/{node_id}"
        signals = {s.name for s in assets["hh-press-l1-m1"].signals}
        assert {"Motor.Current", "Offset", "Running", "Profile.0", "Profile.2"} <= signals
        [view] = [n for n in connector.nodes() if n["node"] == node_id]
        assert view["online"] is True
        assert view["devices"] == {"hh-press-l1-m1": True}
        # The edge node's process dies: the broker publishes its Will (NDEATH with the session's bdSeq),
        # which marks its metrics stale. (pysparkplug's clean disconnect sends the NEXT session's bdSeq,
        # which a host must ignore, so only the Will can show this with this library.)
        edge.kill()
        edge.wait(timeout=10)
        wait_for(lambda: count(runtime, "samples", "quality = 'BAD'") >= 1, "stale marks after NDEATH")
        assert not next(n for n in connector.nodes() if n["node"] == node_id)["online"]
    finally:
        if edge.poll() is None:
            edge.kill()
        edge.communicate(timeout=10)  # closes the pipes
        connector.stop()
    assert _retained(f"spBv1.0/STATE/{host_id}") == {"online": False, "timestamp": connector._state_ts}
    assert runtime.events.rejects("acme")["reason_code"].to_pylist() == []


def test_generated_payload_classes_match_the_schema(tmp_path: Path) -> None:
    """sparkplug_b_pb2.py is generated from sparkplug_b.proto (`make proto`); a schema change without
    regenerating fails here."""
    source = REPO / "src" / "leitstand" / "connect" / "sparkplug"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{source}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            "sparkplug_b.proto",
        ],
        check=True,
        timeout=60,
    )
    for name in ("sparkplug_b_pb2.py", "sparkplug_b_pb2.pyi"):
        assert (tmp_path / name).read_text() == (source / name).read_text(), (
            f"{name} is out of date: make proto"
        )


def test_the_simulators_edge_nodes_deliver_samples_states_and_counts(runtime: Runtime) -> None:
    """sim/sparkplug_edge.py publishes a line as an edge node; the host stores what it published, with
    the running counter turned back into the counts that were sent."""
    runtime.pipeline.start()
    config = SparkplugConfig(
        **sparkplug_connection("acme", ["hh"], "127.0.0.1:1883")
        | {"host_id": f"ls-{uuid.uuid4().hex[:6]}", "broker": {"client_id": f"ls-{uuid.uuid4().hex[:8]}"}}
    )
    connector = SparkplugConnector(config, runtime.pipeline)
    connector.start()
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    at = [now + timedelta(minutes=i) for i in range(3)]
    machine = "hh-press-l1-m1"
    tables = {
        RecordKind.SAMPLES: pa.table(
            {"asset_id": [machine] * 3, "signal": ["temperature"] * 3, "ts": at, "value": [20.0, 21.0, 22.0]}
        ),
        RecordKind.STATES: pa.table(
            {"asset_id": [machine, machine], "ts": at[:2], "state": ["RUNNING", "DOWN"]}
        ),
        RecordKind.COUNTS: pa.table({"asset_id": [machine] * 3, "ts": at, "produced": [5, 7, 4]}),
    }
    try:
        wait_for(lambda: connector.health.state is LinkState.CONNECTED, "the host to connect")
        with SparkplugEdgePublisher(runtime.asset_cache.assets("acme")) as edge:
            for kind, table in tables.items():
                edge.send("acme", kind, conform(table, SPECS[kind]))
        wait_for(lambda: count(runtime, "counts") == 3 and count(runtime, "states") == 2, "all records")
        wait_for(lambda: count(runtime, "samples") == 3, "samples")
    finally:
        connector.stop()
    produced = runtime.events.query("select produced from counts where tenant = 'acme' order by ts")
    assert produced["produced"].to_pylist() == [5, 7, 4]
    states = runtime.events.query("select state from states where tenant = 'acme' order by ts")
    assert states["state"].to_pylist() == ["RUNNING", "DOWN"]
    assert runtime.events.rejects("acme")["reason_code"].to_pylist() == []


# (datatype, value field, ranges of wire values of one varint length each; None: a float)
NEGATIVE_32 = (0xF0000000, 0xFFFFFFFF)  # sign-extended to 32 bits
KINDS = [
    (spb.DataType.INT8, "int_value", [(0, 127), (128, 255), NEGATIVE_32]),  # 128–255: 8-bit form
    (spb.DataType.INT16, "int_value", [(0, 127), (2**15, 2**16 - 1), NEGATIVE_32]),
    (spb.DataType.INT32, "int_value", [(0, 127), (2**21, 2**28 - 1), NEGATIVE_32]),
    (spb.DataType.INT64, "long_value", [(0, 127), (2**63, 2**64 - 1)]),
    (spb.DataType.UINT32, "int_value", [(0, 127), NEGATIVE_32]),
    (spb.DataType.UINT64, "long_value", [(0, 127), (2**63, 2**64 - 1)]),
    (spb.DataType.FLOAT, "float_value", None),
    (spb.DataType.DOUBLE, "double_value", None),
    (spb.DataType.BOOLEAN, "boolean_value", [(0, 1)]),
    (spb.DataType.DATETIME, "long_value", [(2**42, 2**49 - 1)]),
]


def same_width(draw: st.DrawFn, ranges: list[tuple[int, int]] | None) -> st.SearchStrategy[Any]:
    """Values of one metric that keep the payload's shape: floats, or integers of one varint length."""
    if ranges is None:
        return st.floats(width=32, allow_nan=False, allow_infinity=False)
    lo, hi = draw(st.sampled_from(ranges))
    return st.integers(lo, hi).map(bool) if hi == 1 else st.integers(lo, hi)


@st.composite
def data_stream(draw: st.DrawFn) -> tuple[list[tuple[int, str]], list[bytes]]:
    """A DBIRTH's metrics (datatype, field) and DDATA payloads of one shape with random values, some
    with metric timestamps and some without, now and then a message of another shape."""
    kinds = draw(st.lists(st.sampled_from(range(len(KINDS))), min_size=1, max_size=12))
    values = [same_width(draw, KINDS[k][2]) for k in kinds]
    stamped = [draw(st.booleans()) for _ in kinds]
    payloads = []
    for seq in range(2, 2 + draw(st.integers(8, 30))):
        p = spb.Payload(timestamp=T0 + seq * 1000, seq=seq % 256)
        # after the first eight (enough for the columnar path), now and then a message of another shape
        odd = seq >= 10 and draw(st.integers(0, 9)) == 0
        for alias, k in enumerate(kinds):
            metric = p.metrics.add()
            metric.alias = alias
            if stamped[alias] != odd:
                metric.timestamp = T0 + seq * 1000 + alias
            setattr(metric, KINDS[k][1], draw(values[alias]))
        payloads.append(p.SerializeToString())
    return [(KINDS[k][0], KINDS[k][1]) for k in kinds], payloads


@settings(max_examples=60, deadline=None)
@given(stream=data_stream())
def test_columnar_decoding_equals_protobuf_objects(stream: tuple[list[tuple[int, str]], list[bytes]]) -> None:
    metrics, payloads = stream
    birth = [
        {"name": f"m{alias}", "alias": alias, "datatype": datatype, "is_null": True}
        for alias, (datatype, _) in enumerate(metrics)
    ]
    tables = {}
    for columnar in (True, False):
        h = Host()
        h.host._columnar_min = 8 if columnar else 10**9  # type: ignore[attr-defined]
        h.send(
            (f"spBv1.0/{GROUP}/NBIRTH/gw1", payload(0, bd(0))),
            (f"spBv1.0/{GROUP}/DBIRTH/gw1/m1", payload(1, *birth)),
        )
        out = h.send(*[(f"spBv1.0/{GROUP}/DDATA/gw1/m1", p) for p in payloads])
        assert codes(out) == []
        assert (h.host.columnar_messages > 0) is columnar
        tables[columnar] = out[RecordKind.SAMPLES].table.sort_by(
            [("signal", "ascending"), ("ts", "ascending")]
        )
    assert tables[True].num_rows == len(metrics) * len(payloads)
    assert tables[True].to_pylist() == tables[False].to_pylist()


def test_a_long_gap_is_given_up_early_instead_of_dropping_what_follows() -> None:
    h = Host(reorder_timeout_ms=60_000)
    h.birth()  # NBIRTH 0, DBIRTH 1; seq 2 is lost, 100 messages follow
    stored = values(h.send(*[h.ddata(seq % 256, float(seq)) for seq in range(3, 103)]))
    assert sorted(stored) == [float(s) for s in range(3, 103)]  # none taken for a redelivery
    assert h.health.errors["seq_gap"] == 1
    assert "duplicate" not in h.health.errors
    assert h.commands.rebirths == [f"spBv1.0/{GROUP}/NCMD/gw1"]


def test_rebirth_requests_to_a_node_without_birth_are_rate_limited() -> None:
    h = Host()
    out = h.send(
        *[(f"spBv1.0/{GROUP}/NDATA/gw7", payload(seq, {"alias": 1, "double_value": 1.0})) for seq in range(5)]
    )
    assert codes(out) == ["no_birth"] * 5
    assert h.commands.rebirths == [f"spBv1.0/{GROUP}/NCMD/gw7"]


def test_messages_held_behind_a_gap_are_stored_before_the_death() -> None:
    h = Host()
    h.birth(bd_seq=2)
    assert values(h.send(h.ddata(3, 33.0))) == []  # held: seq 2 is missing
    died = h.send((f"spBv1.0/{GROUP}/NDEATH/gw1", payload(None, bd(2))))
    table = died[RecordKind.SAMPLES].table
    assert table.column("value").to_pylist() == [33.0, 33.0]  # the held value, then its stale mark
    assert table.column("quality").to_pylist() == ["GOOD", "BAD"]


def test_counters_count_in_arrival_order_across_payload_shapes() -> None:
    h = Host(counter_metrics=["Parts"])
    parts = {"name": "Parts", "alias": 5, "datatype": spb.DataType.UINT32, "int_value": 0}
    h.send(
        (f"spBv1.0/{GROUP}/NBIRTH/gw1", payload(0, bd(0))),
        (f"spBv1.0/{GROUP}/DBIRTH/gw1/m1", payload(1, parts)),
    )
    readings = [130, 140, 141, 150, 160, 170, 180, 190, 200, 210]
    # every other message carries its own timestamp: two payload shapes, interleaved
    metrics = [
        {"alias": 5, "int_value": r} | ({"timestamp": T0 + i} if i % 2 else {})
        for i, r in enumerate(readings)
    ]
    out = h.send(*[(f"spBv1.0/{GROUP}/DDATA/gw1/m1", payload(i + 2, m)) for i, m in enumerate(metrics)])
    produced = out[RecordKind.COUNTS].table["produced"].to_pylist()
    assert produced == [130, 10, 1, 9, 10, 10, 10, 10, 10, 10]


def test_timestamps_that_cannot_be_stored_are_dead_lettered_alone() -> None:
    h = Host()
    h.birth()
    out = h.send(
        (
            f"spBv1.0/{GROUP}/DDATA/gw1/m1",
            payload(2, {"alias": 1, "double_value": 1.0, "timestamp": 2**63 + 5}),
        ),
        h.ddata(3, 2.0),
    )
    assert values(out) == [2.0]
    assert codes(out) == ["invalid_timestamp"]
