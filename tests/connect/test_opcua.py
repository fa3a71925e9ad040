"""The OPC UA connector against real asyncua servers on loopback (the simulator's server), into a real
runtime: streaming, quality, counters, refused nodes, wrong types, security and reconnects."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from asyncua import ua
from asyncua.ua.status_codes import StatusCodes
from pydantic import ValidationError

from leitstand.api.runtime import Runtime
from leitstand.connect.base import CounterIncrements, LinkState
from leitstand.connect.opcua.client import OpcUaConnector, browse
from leitstand.connect.opcua.config import OpcUaConfig
from leitstand.connect.opcua.decode import NodeTarget, TargetColumns, decode
from leitstand.domain.records import RecordKind
from leitstand.sim import Simulator
from leitstand.sim.opcua_server import PRODUCED, STATE, OpcUaSimServer, write_self_signed_certificate
from tests.conftest import free_port
from tests.connect.helpers import wait_for

M1, M2 = "hh-press-l1-m1", "hh-press-l1-m2"  # machines of the example asset model (tenant acme)
MACHINES = {M1: ["temperature", "motor_current"], M2: ["temperature"]}


def rows(rt: Runtime, sql: str) -> list[dict[str, Any]]:
    return rt.events.query(sql).to_pylist()  # type: ignore[no-any-return]


def samples(rt: Runtime, asset: str, signal: str) -> list[tuple[datetime, float, str]]:
    return [
        (r["ts"], r["value"], r["quality"])
        for r in rows(
            rt,
            f"select ts, value, quality from samples where tenant = 'acme' and asset_id = '{asset}' "
            f"and signal = '{signal}' order by ts",
        )
    ]


def rejects(rt: Runtime) -> list[dict[str, Any]]:
    table = rt.events.rejects("acme", limit=1000)
    return [{**r, "record": orjson.loads(r["record"])} for r in table.to_pylist()]


def at(seconds_ago: float) -> datetime:
    """A source timestamp a little in the past, whole milliseconds (stored at microsecond precision)."""
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).replace(microsecond=0)


def sample_node(server: OpcUaSimServer, machine: str, signal: str, **extra: Any) -> dict[str, Any]:
    return {
        "node_id": server.node_id(machine, signal),
        "asset_id": machine,
        "signal": signal,
        "record": "sample",
        "sampling_interval_ms": 50,
        **extra,
    }


def config(endpoint: str, nodes: list[dict[str, Any]], **options: Any) -> OpcUaConfig:
    settings: dict[str, Any] = {
        "name": "press-shop",
        "security_policy": "None",
        "allow_insecure": True,
        **options,
    }
    return OpcUaConfig(
        tenant="acme",
        endpoint=endpoint,
        publishing_interval_ms=100,
        nodes=nodes,
        **settings,
    )


@pytest.fixture
def started(runtime: Runtime) -> Runtime:
    runtime.pipeline.start()
    return runtime


@pytest.fixture(scope="module")
def shared_server() -> Iterator[OpcUaSimServer]:
    with OpcUaSimServer(MACHINES, port=free_port()) as s:
        yield s


@pytest.fixture
def server(shared_server: OpcUaSimServer) -> OpcUaSimServer:
    """The module's server (starting one takes seconds), without the values earlier tests set."""
    shared_server.reset()
    return shared_server


@pytest.fixture
def connect(started: Runtime) -> Iterator[Callable[..., OpcUaConnector]]:
    """Start connectors into the runtime (waiting until connected unless told not to); all are stopped
    at the end."""
    running: list[OpcUaConnector] = []

    def start(cfg: OpcUaConfig, wait: bool = True) -> OpcUaConnector:
        c = OpcUaConnector(cfg, started.pipeline, flush_interval_s=0.05)
        running.append(c)
        c.start()
        if wait:
            wait_for(lambda: c.health.state is LinkState.CONNECTED, "the connector to connect")
        return c

    yield start
    for c in running:
        c.stop(timeout=10)
        assert c.health.state is LinkState.STOPPED


# configuration -----------------------------------------------------------------------------------


def test_security_policy_none_is_refused_unless_insecure_is_allowed() -> None:
    with pytest.raises(ValidationError, match="allow_insecure"):
        OpcUaConfig(name="c", tenant="acme", endpoint="opc.tcp://plc:4840", security_policy="None")
    assert OpcUaConfig(
        name="c", tenant="acme", endpoint="opc.tcp://plc:4840", security_policy="None", allow_insecure=True
    ).allow_insecure
    with pytest.raises(ValidationError, match="certificate"):
        OpcUaConfig(name="c", tenant="acme", endpoint="opc.tcp://plc:4840")  # Basic256Sha256 by default


@pytest.mark.parametrize(
    ("node", "error"),
    [
        ({"node_id": "ns=2;s=a", "asset_id": "m1", "record": "sample"}, "needs `signal`"),
        (
            {"node_id": "ns=two;i=1", "asset_id": "m1", "signal": "t", "record": "sample"},
            "not an OPC UA node id",
        ),
        ({"node_id": "Press1.Temperature", "asset_id": "m1", "signal": "t", "record": "sample"}, "node id"),
        ({"node_id": "ns=2;s=a", "asset_id": "m1", "signal": "t", "record": "state"}, "sample nodes only"),
        ({"node_id": "ns=2;s=a", "asset_id": "m 1", "signal": "t", "record": "sample"}, "asset_id"),
        (
            {
                "node_id": "ns=2;s=a",
                "asset_id": "m1",
                "record": "counter",
                "deadband": {"type": "absolute", "value": 1},
            },
            "deadband",
        ),
    ],
)
def test_node_mappings_are_checked_when_configured(node: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        config("opc.tcp://plc:4840", [node])


def test_endpoint_and_duplicate_targets_are_checked() -> None:
    with pytest.raises(ValidationError, match=r"opc\.tcp"):
        config("http://plc:4840", [])
    twice = {"asset_id": "m1", "signal": "t", "record": "sample"}
    with pytest.raises(ValidationError, match="two nodes feed signal 't'"):
        config("opc.tcp://plc:4840", [{"node_id": "ns=2;s=a", **twice}, {"node_id": "ns=2;s=b", **twice}])
    ok = config(
        "opc.tcp://plc:4840",
        [{"node_id": "nsu=urn:plc;s=a", **twice, "deadband": {"type": "percent", "value": 2.5}}],
    )
    assert ok.nodes[0].deadband is not None
    assert ok.protocol == "opcua"
    assert OpcUaConfig.model_validate(ok.model_dump(mode="json")) == ok  # as the registry stores it


# decoding (pure) -----------------------------------------------------------------------------------


def notification(
    handle: int,
    value: Any,
    status: int = 0,
    SourceTimestamp: datetime | None = None,  # noqa: N803 - as OPC UA names them
    ServerTimestamp: datetime | None = None,  # noqa: N803
) -> ua.MonitoredItemNotification:
    dv = ua.DataValue(
        ua.Variant(value),
        ua.StatusCode(ua.UInt32(status)),
        SourceTimestamp=cast(ua.DateTime | None, SourceTimestamp),
        ServerTimestamp=cast(ua.DateTime | None, ServerTimestamp),
    )
    return ua.MonitoredItemNotification(ClientHandle=ua.UInt32(handle), Value=dv)


def test_decode_by_record_type_with_timestamp_fallbacks() -> None:
    columns = TargetColumns(
        [
            NodeTarget("ns=2;s=t", "m1", "temperature", "sample"),
            NodeTarget("ns=2;s=s", "m1", None, "state"),
            NodeTarget("ns=2;s=c", "m1", None, "counter"),
        ]
    )
    src, srv, now = at(30), at(20), at(0)
    items = [
        notification(0, True, SourceTimestamp=src),
        notification(0, 7, StatusCodes.UncertainLastUsableValue, ServerTimestamp=srv),
        notification(0, 1.5, StatusCodes.BadOutOfService),
        notification(0, None, StatusCodes.BadSensorFailure),
        notification(0, [1.0, 2.0]),
        notification(1, 3, SourceTimestamp=src),
        notification(1, "running", StatusCodes.BadCommunicationError, SourceTimestamp=src),
        notification(1, 2.5, SourceTimestamp=src),
        notification(2, 100, SourceTimestamp=src),
        notification(2, 104.0, SourceTimestamp=srv),
        notification(2, "many", SourceTimestamp=srv),
        notification(2, "more", SourceTimestamp=srv),  # the same fault goes on: counted, not rejected again
        notification(2, 1, SourceTimestamp=now),  # a reset (the reading fell): 1 unit since
        notification(2, "again", SourceTimestamp=now),  # after a good value, a new fault
    ]
    faults: dict[int, str] = {}
    batch = decode(columns, items, now, CounterIncrements(), "opc.tcp://plc:4840", faults)
    s = batch.tables[RecordKind.SAMPLES].to_pylist()
    assert [(r["ts"], r["value"], r["quality"]) for r in s] == [
        (src, 1.0, "GOOD"),
        (srv, 7.0, "UNCERTAIN"),
        (now, 1.5, "BAD"),
    ]
    assert [(r["asset_id"], r["signal"], r["tenant"]) for r in s] == [("m1", "temperature", None)] * 3
    assert batch.tables[RecordKind.STATES].select(["ts", "state"]).to_pylist() == [{"ts": src, "state": "3"}]
    counts = batch.tables[RecordKind.COUNTS].to_pylist()
    assert [(r["ts"], r["produced"], r["scrap"]) for r in counts] == [(srv, 4, 0), (now, 1, 0)]
    assert [r.code for r in batch.rejects[RecordKind.SAMPLES]] == ["no_value", "wrong_type"]
    assert [r.code for r in batch.rejects[RecordKind.STATES]] == ["bad_status", "wrong_type"]
    assert [r.code for r in batch.rejects[RecordKind.COUNTS]] == ["wrong_type", "wrong_type"]
    assert batch.repeated["wrong_type"][0] == 1
    assert faults == {0: "wrong_type", 1: "wrong_type", 2: "wrong_type"}
    raw = batch.rejects[RecordKind.COUNTS][0].raw
    assert (raw["node_id"], raw["value"], raw["type"], raw["source"]) == (
        "ns=2;s=c",
        "many",
        "String",
        "opc.tcp://plc:4840",
    )
    assert (batch.values, batch.records) == (len(items), 6)


# against a server ------------------------------------------------------------------------------------


def test_browse_lists_the_variables_to_map(server: OpcUaSimServer) -> None:
    found = browse(config(server.endpoint, []))
    by_path = {v.path: v for v in found}
    assert set(by_path) == {
        f"{M1}/temperature",
        f"{M1}/motor_current",
        f"{M1}/{STATE}",
        f"{M1}/{PRODUCED}",
        f"{M2}/temperature",
        f"{M2}/{STATE}",
        f"{M2}/{PRODUCED}",
    }
    temperature = by_path[f"{M1}/temperature"]
    assert (temperature.node_id, temperature.data_type) == (server.node_id(M1, "temperature"), "Double")
    assert by_path[f"{M1}/{STATE}"].data_type == "String"
    assert by_path[f"{M1}/{PRODUCED}"].data_type == "Int64"
    # A browse root narrows it down (given with the namespace URI, as the index may change).
    under = browse(config(server.endpoint, [], browse_root=f"nsu=urn:leitstand:sim;s={M2}"))
    assert {v.path for v in under} == {"temperature", STATE, PRODUCED}


def test_nodes_stream_into_the_store(
    started: Runtime, server: OpcUaSimServer, connect: Callable[..., OpcUaConnector]
) -> None:
    nodes = [
        sample_node(server, M1, "temperature"),
        sample_node(server, M1, "motor_current", deadband={"type": "absolute", "value": 0.5}),
        {
            "node_id": f"nsu=urn:leitstand:sim;s={M2}.temperature",
            "asset_id": M2,
            "signal": "temperature",
            "record": "sample",
        },
        {"node_id": server.node_id(M1, STATE), "asset_id": M1, "record": "state"},
    ]
    server.update(M1, "motor_current", 9.0, at(20))  # asyncua's deadband needs a previous value
    c = connect(config(server.endpoint, nodes))
    t = [at(10 - i) for i in range(4)]
    for i, ts in enumerate(t):
        server.update(M1, "temperature", 60.0 + i, ts)
        server.update(M1, "motor_current", [10.0, 10.2, 11.0, 11.1][i], ts)  # 10.2, 11.1: within 0.5
        server.update(M2, "temperature", 40.0 - i, ts)
    server.update(M1, STATE, "running", t[0])
    server.update(M1, STATE, "setup", t[2])
    wait_for(lambda: len(samples(started, M2, "temperature")) == 4, "M2's temperatures")
    wait_for(lambda: len(rows(started, "select * from states")) == 2, "the states")
    assert samples(started, M1, "temperature") == [(ts, 60.0 + i, "GOOD") for i, ts in enumerate(t)]
    assert samples(started, M2, "temperature") == [(ts, 40.0 - i, "GOOD") for i, ts in enumerate(t)]
    wait_for(lambda: len(samples(started, M1, "motor_current")) == 3, "motor current")
    assert [v for _, v, _ in samples(started, M1, "motor_current")] == [9.0, 10.0, 11.0]
    states = rows(started, "select ts, state from states where tenant = 'acme' order by ts")
    assert states == [{"ts": t[0], "state": "running"}, {"ts": t[2], "state": "setup"}]
    assert rejects(started) == []  # a server without values yet (BadWaitingForInitialData) is no fault
    health = c.health.snapshot()
    assert (health["state"], health["detail"]) == ("connected", server.endpoint)
    # Every notification counts as a message, also the three "waiting for initial data" ones.
    assert (health["messages"], health["records"]) == (3 + 4 + 3 + 4 + 2, 4 + 3 + 4 + 2)
    assert health["errors"] == {}


def test_quality_comes_from_the_status_code(
    started: Runtime, server: OpcUaSimServer, connect: Callable[..., OpcUaConnector]
) -> None:
    connect(config(server.endpoint, [sample_node(server, M1, "temperature")]))
    t = [at(10 - i) for i in range(4)]
    server.update(M1, "temperature", 20.5, t[0])
    server.update(M1, "temperature", 21.5, t[1], StatusCodes.UncertainLastUsableValue)
    server.update(M1, "temperature", 22.5, t[2], StatusCodes.BadSensorFailure)  # a value kept (gateway)
    server.update(M1, "temperature", None, t[3], StatusCodes.BadCommunicationError)  # as the spec says
    wait_for(lambda: any(r["reason_code"] == "no_value" for r in rejects(started)), "the value-less one")
    wait_for(lambda: len(samples(started, M1, "temperature")) == 3, "the samples")
    assert samples(started, M1, "temperature") == [
        (t[0], 20.5, "GOOD"),
        (t[1], 21.5, "UNCERTAIN"),
        (t[2], 22.5, "BAD"),
    ]
    [reject] = rejects(started)
    assert reject["kind"] == "samples"
    assert "BadCommunicationError" in reject["reason"]
    assert reject["record"]["node_id"] == server.node_id(M1, "temperature")
    assert reject["record"]["status"] == "BadCommunicationError"


def test_a_counter_becomes_increments(
    started: Runtime, server: OpcUaSimServer, connect: Callable[..., OpcUaConnector]
) -> None:
    server.update(M1, PRODUCED, 1000)  # the PLC counted before the connector came
    connect(
        config(
            server.endpoint, [{"node_id": server.node_id(M1, PRODUCED), "asset_id": M1, "record": "counter"}]
        )
    )
    t = [at(10 - i) for i in range(4)]
    for ts, reading in zip(t, [1003, 1010, 1010, 4], strict=True):  # unchanged, then a reset (PLC reboot)
        server.update(M1, PRODUCED, reading, ts)
    wait_for(lambda: len(rows(started, "select * from counts")) == 3, "the increments")
    counts = rows(started, "select ts, produced, scrap from counts where tenant = 'acme' order by ts")
    assert counts == [
        {"ts": t[0], "produced": 3, "scrap": 0},
        {"ts": t[1], "produced": 7, "scrap": 0},
        {"ts": t[3], "produced": 4, "scrap": 0},
    ]


def test_a_node_the_server_does_not_have_is_dead_lettered_and_the_rest_stream(
    started: Runtime, server: OpcUaSimServer, connect: Callable[..., OpcUaConnector]
) -> None:
    nodes = [
        sample_node(server, M1, "temperature"),
        {
            "node_id": "ns=2;s=Press9.Temperature",
            "asset_id": M1,
            "signal": "motor_current",
            "record": "sample",
        },
        {"node_id": "nsu=urn:other:plc;i=7", "asset_id": M2, "record": "state"},
    ]
    c = connect(config(server.endpoint, nodes))
    ts = at(5)
    server.update(M1, "temperature", 71.0, ts)
    wait_for(lambda: (ts, 71.0, "GOOD") in samples(started, M1, "temperature"), "the good node's value")
    wait_for(lambda: len(rejects(started)) == 2, "the refused nodes")
    refused = sorted(rejects(started), key=lambda r: r["kind"])
    assert [(r["kind"], r["reason_code"]) for r in refused] == [
        ("samples", "bad_node_id"),
        ("states", "bad_node_id"),
    ]
    assert "ns=2;s=Press9.Temperature" in refused[0]["reason"]
    assert "BadNodeIdUnknown" in refused[0]["reason"]
    assert refused[0]["record"] == {
        "source": server.endpoint,
        "node_id": "ns=2;s=Press9.Temperature",
        "asset_id": M1,
        "signal": "motor_current",
        "record": "sample",
        "status": "BadNodeIdUnknown",
    }
    assert refused[1]["record"]["node_id"] == "nsu=urn:other:plc;i=7"
    health = c.health.snapshot()
    assert (health["state"], health["errors"]) == ("connected", {"bad_node_id": 2})


def test_a_value_of_the_wrong_type_is_dead_lettered(
    started: Runtime, server: OpcUaSimServer, connect: Callable[..., OpcUaConnector]
) -> None:
    # The state variable (a String) mapped as a sample by mistake, next to a correct mapping.
    nodes = [
        {"node_id": server.node_id(M2, STATE), "asset_id": M2, "signal": "temperature", "record": "sample"},
        sample_node(server, M1, "temperature"),
    ]
    c = connect(config(server.endpoint, nodes))
    ts = at(3)
    server.update(M2, STATE, "running", ts)
    server.update(M1, "temperature", 55.0, ts)
    wait_for(lambda: any(r["record"].get("value") == "running" for r in rejects(started)), "the wrong type")
    wait_for(lambda: (ts, 55.0, "GOOD") in samples(started, M1, "temperature"), "the right one")
    wrong = next(r for r in rejects(started) if r["record"].get("value") == "running")
    assert (wrong["reason_code"], wrong["kind"]) == ("wrong_type", "samples")
    assert "String" in wrong["reason"]
    assert wrong["record"]["node_id"] == server.node_id(M2, STATE)
    assert wrong["record"]["ts"] == ts.isoformat()
    assert samples(started, M2, "temperature") == []
    assert c.health.errors["wrong_type"] >= 1


def test_a_simulated_window_served_over_opc_ua_is_stored_as_generated(
    started: Runtime,
    server: OpcUaSimServer,
    connect: Callable[..., OpcUaConnector],
    example_model: dict[str, Any],
) -> None:
    nodes = [
        *(sample_node(server, m, s) for m, signals in MACHINES.items() for s in signals),
        *({"node_id": server.node_id(m, STATE), "asset_id": m, "record": "state"} for m in MACHINES),
        *({"node_id": server.node_id(m, PRODUCED), "asset_id": m, "record": "counter"} for m in MACHINES),
    ]
    connect(config(server.endpoint, nodes))
    # Five minutes of a working morning within the last week (ingest keeps seven days).
    day = (datetime.now(UTC) - timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    tables = Simulator(example_model).generate(day, day + timedelta(minutes=5))
    while not tables[RecordKind.COUNTS].num_rows:  # a weekend or a holiday
        day -= timedelta(days=1)
        tables = Simulator(example_model).generate(day, day + timedelta(minutes=5))
    server.feed(tables)
    generated = tables[RecordKind.SAMPLES].select(["asset_id", "signal", "ts", "value", "quality"])
    expected = sorted(tuple(r.values()) for r in generated.to_pylist())
    query = "select asset_id, signal, ts, value, quality from samples where tenant = 'acme'"
    wait_for(lambda: len(rows(started, query)) == len(expected), "the samples")
    assert sorted(tuple(r.values()) for r in rows(started, query)) == expected
    # States are sent as their code (a change of reason alone is no change of the variable).
    states: list[tuple[str, datetime, str]] = []
    for r in tables[RecordKind.STATES].sort_by([("asset_id", "ascending"), ("ts", "ascending")]).to_pylist():
        if not states or states[-1][0] != r["asset_id"] or states[-1][2] != r["state"]:
            states.append((r["asset_id"], r["ts"], r["state"]))
    state_query = "select asset_id, ts, state from states order by asset_id, ts"
    wait_for(lambda: len(rows(started, state_query)) == len(states), "the states")
    assert [tuple(r.values()) for r in rows(started, state_query)] == states
    # Counts: the first reading of each counter gives nothing; every later one what was counted since.
    counts: list[tuple[str, datetime, int]] = []
    first: set[str] = set()
    for r in tables[RecordKind.COUNTS].sort_by([("asset_id", "ascending"), ("ts", "ascending")]).to_pylist():
        if r["asset_id"] in first and r["produced"]:
            counts.append((r["asset_id"], r["ts"], r["produced"]))
        first.add(r["asset_id"])
    count_query = "select asset_id, ts, produced from counts order by asset_id, ts"
    wait_for(lambda: len(rows(started, count_query)) == len(counts), "the counts")
    assert [tuple(r.values()) for r in rows(started, count_query)] == counts


def test_basic256sha256_sign_and_encrypt_with_self_signed_certificates(
    started: Runtime, tmp_path: Path, connect: Callable[..., OpcUaConnector]
) -> None:
    server_cert, server_key = write_self_signed_certificate(
        tmp_path / "server.der", tmp_path / "server-key.pem", "urn:leitstand:sim:server", server=True
    )
    client_cert, client_key = write_self_signed_certificate(
        tmp_path / "client.der", tmp_path / "client-key.pem", "urn:acme:leitstand:press-shop"
    )
    with OpcUaSimServer(
        MACHINES, port=free_port(), certificate=server_cert, private_key=server_key
    ) as server:
        secure = config(
            server.endpoint,
            [sample_node(server, M1, "temperature")],
            security_policy="Basic256Sha256",
            security_mode="SignAndEncrypt",
            allow_insecure=False,
            certificate=client_cert,
            private_key=client_key,
            server_certificate=server_cert,
        )
        c = connect(secure)
        signed = connect(secure.model_copy(update={"name": "press-shop-signed", "security_mode": "Sign"}))
        ts = at(2)
        server.update(M1, "temperature", 88.0, ts)
        wait_for(lambda: (ts, 88.0, "GOOD") in samples(started, M1, "temperature"), "the encrypted value")
        wait_for(lambda: signed.health.messages >= 1, "the signed value")
        assert c.health.snapshot()["errors"] == signed.health.snapshot()["errors"] == {}
        # A key that is not there is named in health, and retried (it may be provisioned later).
        keyless = connect(
            secure.model_copy(update={"name": "no-key", "private_key": tmp_path / "gone.pem"}), wait=False
        )
        wait_for(lambda: "gone.pem does not exist" in keyless.health.detail, "the missing key")
        assert "certificate_error" in keyless.health.errors
        # The server offers no unsecured endpoint: an insecure client is turned away, with the reason.
        insecure = connect(config(server.endpoint, [sample_node(server, M1, "temperature")]), wait=False)
        wait_for(lambda: insecure.health.state is LinkState.DISCONNECTED, "the refusal")
        assert "security_rejected" in insecure.health.errors


def test_reconnects_after_a_server_restart(started: Runtime, connect: Callable[..., OpcUaConnector]) -> None:
    port = free_port()
    server = OpcUaSimServer(MACHINES, port=port).start()
    nodes = [
        sample_node(server, M1, "temperature"),
        {"node_id": server.node_id(M1, PRODUCED), "asset_id": M1, "record": "counter"},
    ]
    try:
        c = connect(config(server.endpoint, nodes))
        before = at(20)
        server.update(M1, PRODUCED, 50, before)
        server.update(M1, "temperature", 1.0, before)
        wait_for(lambda: (before, 1.0, "GOOD") in samples(started, M1, "temperature"), "a value before")
        server.stop()
        wait_for(lambda: c.health.state is LinkState.DISCONNECTED, "the loss to be noticed", timeout=5)
        assert c.health.errors["connection_lost"] == 1
        server = OpcUaSimServer(MACHINES, port=port).start()  # a new server: same nodes, fresh values
        wait_for(lambda: c.health.state is LinkState.CONNECTED, "the reconnect")
        after = at(5)
        server.update(M1, "temperature", 2.0, after)
        server.update(M1, PRODUCED, 8, after)  # the new server counts from 0: 8 units since
        wait_for(lambda: (after, 2.0, "GOOD") in samples(started, M1, "temperature"), "a value after")
        wait_for(lambda: len(rows(started, "select * from counts")) == 1, "the counter after the restart")
        assert rows(started, "select ts, produced from counts") == [{"ts": after, "produced": 8}]
    finally:
        server.stop()


def test_a_hung_server_is_noticed_within_seconds(
    started: Runtime, server: OpcUaSimServer, connect: Callable[..., OpcUaConnector]
) -> None:
    c = connect(config(server.endpoint, [sample_node(server, M1, "temperature")], watchdog_interval_s=0.5))
    server.hang(4.0)  # the socket stays open; nothing answers
    hung = time.monotonic()
    wait_for(lambda: c.health.state is LinkState.DISCONNECTED, "the hang to be noticed", timeout=3.5)
    assert time.monotonic() - hung < 3.5
    wait_for(lambda: c.health.state is LinkState.CONNECTED, "the reconnect once it answers again")
    ts = at(1)
    server.update(M1, "temperature", 9.0, ts)
    wait_for(lambda: (ts, 9.0, "GOOD") in samples(started, M1, "temperature"), "values again")
