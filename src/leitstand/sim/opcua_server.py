"""A real OPC UA server (asyncua) that serves simulated machines, for tests, benchmarks and demos.

Each machine is an object under Objects, with one Double variable per signal, a String `state` and an
Int64 `produced_total` counter; until the first update, a variable has no value and the status
BadWaitingForInitialData. Node ids are `ns=<index>;s=<machine>.<variable>` in the namespace
NAMESPACE (or, independent of the index, `nsu=urn:leitstand:sim;s=<machine>.<variable>`).

The server runs its own thread with an asyncio loop; `update`, `update_many` and `feed` are called from
any thread and return once the server has taken the values (and queued the notifications).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import pyarrow as pa
from asyncua import ua
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from leitstand.connect.opcua.decode import standard_node
from leitstand.domain.records import Quality, RecordKind

NAMESPACE = "urn:leitstand:sim"
STATE = "state"
PRODUCED = "produced_total"
SERVER_URI = "urn:leitstand:sim:server"
_BATCH = 2000  # nodes per AddNodes call
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Update:
    """One value for one machine variable; `status` is an OPC UA status code (e.g. BadSensorFailure)."""

    machine_id: str
    variable: str
    value: Any
    ts: datetime | None = None
    status: int = StatusCodes.Good


def write_self_signed_certificate(
    cert_path: Path, key_path: Path, application_uri: str, hostname: str | None = None, server: bool = False
) -> tuple[Path, Path]:
    """A self-signed OPC UA application instance certificate (DER) and its key (PEM), valid for a year,
    with the application URI and the host name as subject alternative names."""
    from asyncua.crypto import cert_gen

    key = cert_gen.generate_private_key()
    host = hostname or socket.gethostname()
    cert = cert_gen.generate_self_signed_app_certificate(
        key,
        application_uri,
        {},
        [x509.UniformResourceIdentifier(application_uri), x509.DNSName(host), x509.DNSName("localhost")],
        extended=[ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))
    key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
    key_path.chmod(0o600)
    return cert_path, key_path


class OpcUaSimServer:
    """Serves `machines` ({machine id: signal names}) on opc.tcp://host:port.

    With a certificate and key the server offers Basic256Sha256 (Sign and SignAndEncrypt); the
    unsecured endpoint is offered only when `allow_insecure` is true (the default without a certificate).
    """

    def __init__(
        self,
        machines: Mapping[str, Sequence[str]],
        port: int = 4840,
        host: str = "127.0.0.1",
        certificate: Path | None = None,
        private_key: Path | None = None,
        allow_insecure: bool | None = None,
    ) -> None:
        self.machines = {m: list(signals) for m, signals in machines.items()}
        self.host, self.port = host, port
        self._certificate, self._private_key = certificate, private_key
        self._allow_insecure = certificate is None if allow_insecure is None else allow_insecure
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._variables: dict[tuple[str, str], tuple[ua.NodeId, ua.VariantType]] = {}
        self.namespace_index = 0
        self.totals: dict[str, int] = {}  # what `feed` has counted per machine (produced_total)

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}"

    def node_id(self, machine_id: str, variable: str) -> str:
        """The node id of a machine's variable (a signal name, STATE or PRODUCED)."""
        return f"ns={self.namespace_index or 2};s={machine_id}.{variable}"

    # lifecycle -------------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> OpcUaSimServer:
        """Build the address space and listen; returns once clients can connect."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        self._ready.clear()
        self._failure = None
        self._thread = threading.Thread(target=self._run, name=f"opcua-sim-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the OPC UA server on port {self.port} did not start in {timeout} s")
        if self._failure is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError(f"the OPC UA server did not start: {self._failure}") from self._failure
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Close every session and the listening socket."""
        thread, loop, stopped = self._thread, self._loop, self._stopped
        if thread is None or loop is None or stopped is None:
            return
        loop.call_soon_threadsafe(stopped.set)
        thread.join(timeout)
        self._thread = None

    def hang(self, seconds: float) -> None:
        """Stop answering for `seconds` with every socket left open, as a hung server (or a cable pulled
        somewhere along the way) does; returns at once."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the OPC UA server is not running")
        loop.call_soon_threadsafe(time.sleep, seconds)

    def __enter__(self) -> OpcUaSimServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        # The runner cancels what the server leaves behind (per-session tasks of clients still connected).
        try:
            with asyncio.Runner() as runner:
                self._loop = runner.get_loop()
                runner.run(self._serve())
        finally:
            self._loop = None
            self._ready.set()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        server = Server()
        try:
            await self._build(server)
            await server.start()
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            return
        self._server = server
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await server.stop()
            self._server = None

    async def _build(self, server: Server) -> None:
        await server.init()
        server.set_endpoint(f"opc.tcp://{self.host}:{self.port}")
        server.set_server_name("Leitstand simulated plant")
        policies = []
        if self._certificate is not None and self._private_key is not None:
            await server.load_certificate(str(self._certificate))
            await server.load_private_key(str(self._private_key))
            await server.set_application_uri(SERVER_URI)
            policies += [
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                ua.SecurityPolicyType.Basic256Sha256_Sign,
            ]
        if self._allow_insecure:
            policies.append(ua.SecurityPolicyType.NoSecurity)
        server.set_security_policy(policies)
        self.namespace_index = idx = await server.register_namespace(NAMESPACE)
        await self._add_nodes(server, idx)

    async def _add_nodes(self, server: Server, idx: int) -> None:
        objects = standard_node(ObjectIds.ObjectsFolder)
        items: list[ua.AddNodesItem] = []
        for machine_id, signals in self.machines.items():
            machine = _node(machine_id, idx)
            items.append(_object_item(objects, machine, ua.QualifiedName(machine_id, idx)))
            variables = [(s, ua.Variant(0.0, ua.VariantType.Double)) for s in signals]
            variables.append((STATE, ua.Variant("", ua.VariantType.String)))
            variables.append((PRODUCED, ua.Variant(0, ua.VariantType.Int64)))
            for name, variant in variables:
                node = _node(f"{machine_id}.{name}", idx)
                self._variables[machine_id, name] = (node, variant.VariantType)
                items.append(_variable_item(machine, node, ua.QualifiedName(name, idx), variant))
        for first in range(0, len(items), _BATCH):
            results = await server.iserver.isession.add_nodes(items[first : first + _BATCH])
            for result in results:
                result.StatusCode.check()
        await self._clear(server)

    async def _clear(self, server: Server) -> None:
        # Until a machine reports, its variables have no value, and say so as OPC UA servers do.
        waiting = ua.DataValue(
            ua.Variant(None, ua.VariantType.Null),
            ua.StatusCode(ua.UInt32(StatusCodes.BadWaitingForInitialData)),
        )
        for node, _ in self._variables.values():
            await server.write_attribute_value(node, waiting)

    def reset(self, timeout: float = 30.0) -> None:
        """Forget every value (back to BadWaitingForInitialData), as after a fresh start."""
        server = self._server
        if server is None:
            raise RuntimeError("the OPC UA server is not running")
        self.totals.clear()
        self._call(self._clear(server), timeout)

    # values ----------------------------------------------------------------------------------------

    def update(
        self,
        machine_id: str,
        variable: str,
        value: Any,
        ts: datetime | None = None,
        status: int = StatusCodes.Good,
    ) -> None:
        """Set one variable (a signal, STATE, or PRODUCED as an absolute reading) with a source timestamp
        (now if None)."""
        self.update_many([Update(machine_id, variable, value, ts, status)])

    def update_many(self, updates: Iterable[Update], timeout: float = 30.0) -> int:
        """Set many variables in one go; returns how many values the server took."""
        return self._call(self._write_all(list(updates)), timeout)

    def feed(self, tables: Mapping[RecordKind, pa.Table], timeout: float = 60.0) -> int:
        """Serve a Simulator window (`Simulator.generate(start, end)`): samples set the signals (with a
        Good, Uncertain or Bad status after their quality), states the `state` variable, and counts
        advance `produced_total`, each with the record's timestamp, in time order. Records of machines
        or signals the server does not serve are skipped. A variable keeps a queue of changes only as
        long as its subscribers' monitored items do: feed windows at most a few values per variable
        long, or at the pace they happened."""
        timed: list[tuple[datetime, int, Update]] = []
        samples = tables.get(RecordKind.SAMPLES)
        if samples is not None and samples.num_rows:
            columns = ("asset_id", "signal", "ts", "value", "quality")
            for a, s, ts, v, q in zip(*(samples[c].to_pylist() for c in columns), strict=True):
                if s in self.machines.get(a, ()):
                    timed.append((ts, 0, Update(a, s, float(v), ts, _STATUS.get(q, StatusCodes.Good))))
        states = tables.get(RecordKind.STATES)
        if states is not None and states.num_rows:
            for a, ts, state in zip(
                *(states[c].to_pylist() for c in ("asset_id", "ts", "state")), strict=True
            ):
                if a in self.machines:
                    timed.append((ts, 1, Update(a, STATE, state, ts)))
        counts = tables.get(RecordKind.COUNTS)
        if counts is not None and counts.num_rows:
            for a, ts, produced in zip(
                *(counts[c].to_pylist() for c in ("asset_id", "ts", "produced")), strict=True
            ):
                if a in self.machines:
                    timed.append((ts, 2, Update(a, PRODUCED, int(produced), ts)))
        timed.sort(key=lambda t: (t[0], t[1]))
        updates = [u for _, _, u in timed]
        for i, u in enumerate(updates):
            if u.variable == PRODUCED:  # counts are increments; the variable is their running total
                self.totals[u.machine_id] = self.totals.get(u.machine_id, 0) + u.value
                updates[i] = Update(u.machine_id, PRODUCED, self.totals[u.machine_id], u.ts)
        return self.update_many(updates, timeout)

    def _call(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        loop = self._loop
        if loop is None or self._server is None:
            coro.close()
            raise RuntimeError("the OPC UA server is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    async def _write_all(self, updates: list[Update]) -> int:
        server = self._server
        assert server is not None
        written = 0
        good = ua.StatusCode()
        for u in updates:
            known = self._variables.get((u.machine_id, u.variable))
            if known is None:
                raise KeyError(f"the server has no variable {u.variable!r} on machine {u.machine_id!r}")
            node, declared = known
            variant = _variant(u.value, declared)
            now = datetime.now(UTC)
            status = good if u.status == StatusCodes.Good else ua.StatusCode(ua.UInt32(u.status))
            dv = ua.DataValue(
                variant,
                status,
                SourceTimestamp=cast(ua.DateTime, u.ts or now),
                ServerTimestamp=cast(ua.DateTime, now),
            )
            if status.is_bad() and variant.Value is not None:
                # Some gateways keep the last value alongside a Bad status (the spec says the value is
                # then null, which the server's own write enforces): deliver it as such a device would.
                attribute = server.iserver.aspace[node].attributes[AttributeIds.Value]
                attribute.value = dv
                for handle, callback in list(attribute.datachange_callbacks.items()):
                    await callback(handle, dv)
            else:
                await server.write_attribute_value(node, dv)
            written += 1
            if written % 500 == 0:
                await asyncio.sleep(0)  # let the server answer requests between the writes of a big batch
        return written


def _node(name: str, namespace: int) -> ua.NodeId:
    return ua.NodeId(ua.String(name), ua.Int16(namespace))


def _variant(value: Any, declared: ua.VariantType) -> ua.Variant:
    """The value as the variable's declared type when it fits, else as what it is (a wrong type)."""
    if value is None:
        return ua.Variant(None, ua.VariantType.Null)
    if declared is ua.VariantType.Double and isinstance(value, int | float) and not isinstance(value, bool):
        return ua.Variant(float(value), declared)
    if declared is ua.VariantType.Int64 and isinstance(value, int) and not isinstance(value, bool):
        return ua.Variant(value, declared)
    if declared is ua.VariantType.String and isinstance(value, str):
        return ua.Variant(value, declared)
    return ua.Variant(value)


def _object_item(parent: ua.NodeId, node: ua.NodeId, name: ua.QualifiedName) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = node
    item.BrowseName = name
    item.NodeClass = ua.NodeClass.Object
    item.ParentNodeId = parent
    item.ReferenceTypeId = standard_node(ObjectIds.Organizes)
    item.TypeDefinition = standard_node(ObjectIds.BaseObjectType)
    attrs = ua.ObjectAttributes()
    attrs.DisplayName = ua.LocalizedText(name.Name)
    attrs.Description = ua.LocalizedText(name.Name)
    item.NodeAttributes = attrs
    return item


# A sample's quality as the status code its value is served with.
_STATUS = {
    Quality.GOOD.value: StatusCodes.Good,
    Quality.UNCERTAIN.value: StatusCodes.Uncertain,
    Quality.BAD.value: StatusCodes.Bad,
}

_DATA_TYPES = {
    ua.VariantType.Double: ObjectIds.Double,
    ua.VariantType.String: ObjectIds.String,
    ua.VariantType.Int64: ObjectIds.Int64,
}


def _variable_item(
    parent: ua.NodeId, node: ua.NodeId, name: ua.QualifiedName, variant: ua.Variant
) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = node
    item.BrowseName = name
    item.NodeClass = ua.NodeClass.Variable
    item.ParentNodeId = parent
    item.ReferenceTypeId = standard_node(ObjectIds.HasComponent)
    item.TypeDefinition = standard_node(ObjectIds.BaseDataVariableType)
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name.Name)
    attrs.Description = ua.LocalizedText(name.Name)
    attrs.DataType = standard_node(_DATA_TYPES[variant.VariantType])
    attrs.Value = variant
    attrs.ValueRank = ua.ValueRank.Scalar
    attrs.AccessLevel = ua.AccessLevel.CurrentRead.mask
    attrs.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
    item.NodeAttributes = attrs
    return item
