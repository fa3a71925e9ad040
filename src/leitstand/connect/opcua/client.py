"""The OPC UA connector: one client session with one subscription holding a monitored item per node.

A thread runs an asyncio loop with the session; a second thread (the flusher) turns the buffered data
change notifications into Arrow batches every FLUSH_INTERVAL_S (sooner when FLUSH_VALUES are waiting)
and hands them to the Inlet, so the session never waits for ingest and ingest never sees single values.

Connection loss (a closed socket, a server that stops answering the watchdog probe, a subscription that
stops publishing) ends the session; the connector reconnects with backoff and creates the session, the
subscription and the monitored items afresh. Counter readings are kept across reconnects, so units
counted while the link was down arrive with the first reading after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asyncua import ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClientState
from asyncua.crypto import security_policies
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIdNames, ObjectIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError
from cryptography import x509

from leitstand.connect.base import Backoff, CounterIncrements, Health, Inlet, LinkState, Reject
from leitstand.connect.opcua.config import OpcUaConfig, parse_node_id
from leitstand.connect.opcua.decode import (
    DecodedBatch,
    NodeTarget,
    TargetColumns,
    decode,
    standard_node,
    status_name,
)
from leitstand.domain.records import RecordKind
from leitstand.ingest.sink import IngestResult, RecordTarget

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.2
FLUSH_VALUES = 10_000
# Beyond this many buffered values the session stops asking the server for more (the server queues,
# then drops the oldest values per item), so a stalled ingest cannot exhaust memory.
MAX_BUFFERED_VALUES = 1_000_000
ITEMS_PER_CALL = 1000  # monitored items created per CreateMonitoredItems request
# Values a server may hold per monitored item between two publishes.
MIN_QUEUE = 10
MAX_QUEUE = 1000
KEEPALIVE_S = 5.0  # the subscription publishes at least this often, with or without data
SESSION_TIMEOUT_MS = 60_000
_NODE_ID_ERRORS = {"BadNodeIdUnknown", "BadNodeIdInvalid", "BadNodeIdRejected"}


class _QuietTransportLoss(logging.Filter):
    """asyncua logs a lost connection from several places (with tracebacks) before the connector can
    react; the connector reports it once, as a state change. Other asyncua messages pass."""

    _CLOSED = frozenset(
        {
            "close_session was called but connection is closed",
            "close_secure_channel was called but connection is closed",
            "close_session but connection wasn't established",
        }
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in self._CLOSED:
            return False
        if record.msg == "Publish iteration crashed; retrying in 1s" and record.exc_info:
            return not isinstance(record.exc_info[1], ConnectionError | OSError | asyncio.TimeoutError)
        return True


_QUIET = _QuietTransportLoss()
for _name in ("asyncua.client.ua_session.UaSession", "asyncua.client.ua_client.UaClient"):
    logging.getLogger(_name).addFilter(_QUIET)


class _Lost(Exception):
    """The session ended; the message says why."""


@dataclass(frozen=True, slots=True)
class BrowsedVariable:
    """A variable found by `browse`: what to put in a node mapping."""

    node_id: str
    browse_name: str
    data_type: str
    path: str  # browse names from the root, joined by "/"


class OpcUaConnector:
    """Subscribes to the configured nodes of one OPC UA server and streams their values to ingest."""

    def __init__(
        self,
        config: OpcUaConfig,
        target: RecordTarget,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        flush_values: int = FLUSH_VALUES,
    ) -> None:
        self.config = config
        self.health = Health(config.key, "opcua")
        self._stop = threading.Event()
        self._inlet = Inlet(target, config.tenant, self.health, self._stop)
        self._flush_interval_s = flush_interval_s
        self._flush_values = flush_values
        self._columns = TargetColumns(
            [NodeTarget(n.node_id, n.asset_id, n.signal, n.record) for n in config.nodes]
        )
        self._node_ids = [parse_node_id(n.node_id) for n in config.nodes]
        self._counters = CounterIncrements()
        self._lock = threading.Lock()
        self._buffer: list[ua.MonitoredItemNotification] = []
        self._pending_rejects: list[tuple[RecordKind, Reject]] = []
        self._failed_items: dict[int, str] = {}  # handle → status name already reported
        self._faults: dict[int, str] = {}  # handle → reason of the value fault it is in (decode)
        self._flush_now = threading.Event()
        self._session_done = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._session_lost: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._flusher: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; returns at once (health tells how it goes)."""
        if self._thread is not None:
            raise RuntimeError(f"connection {self.config.key} is already started")
        self._flusher = threading.Thread(target=self._flush_loop, name=f"opcua-flush-{self.config.name}")
        self._thread = threading.Thread(target=self._run, name=f"opcua-{self.config.name}")
        self._flusher.daemon = self._thread.daemon = True
        self._flusher.start()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the session, hand what is buffered to ingest, and end both threads."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(self._interrupt)
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._session_done.set()
        self._flush_now.set()
        if self._flusher is not None:
            self._flusher.join(max(0.0, deadline - time.monotonic()))
        self.health.set_state(LinkState.STOPPED)

    def _interrupt(self) -> None:
        """On the loop: end the backoff wait or the session at once (stop was called)."""
        if self._wake is not None:
            self._wake.set()
        if self._session_lost is not None:
            self._session_lost.set()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:  # a bug, not a connection problem: say so and stop
            log.exception("connection %s: the OPC UA session loop failed", self.config.key)
            self.health.set_state(LinkState.DISCONNECTED, "internal error; see the log")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        backoff = Backoff()
        while not self._stop.is_set():
            client = _new_client(self.config)
            polite = False
            try:
                detail = await self._session(client, backoff)
                polite = True
            except _Lost as exc:
                detail = str(exc)
                self.health.failed("connection_lost", detail)
            except Exception as exc:
                code, detail = _classify(exc)
                self.health.failed(code, detail)
            if not self._stop.is_set():
                self.health.set_state(LinkState.DISCONNECTED, detail)
            # After a loss the server may not answer at all: do not wait long for it to close the session.
            await _close(client, self.config.request_timeout_s if polite else 1.0)
            if self._stop.is_set():
                break
            await self._sleep(backoff.next())

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    # the session -----------------------------------------------------------------------------------

    async def _session(self, client: Client, backoff: Backoff) -> str:
        """Connect, subscribe, and stream until the connection is lost or the connector stops."""
        config = self.config
        lost = asyncio.Event()
        reason: list[str] = []

        def end(why: str) -> None:
            if not reason:
                reason.append(why)
            lost.set()

        async def on_connection_lost(exc: Exception) -> None:
            end(f"connection lost: {_describe(exc)}")

        client.connection_lost_callback = on_connection_lost
        await _apply_security(client, config)
        await client.connect()
        last_publish = [time.monotonic()]

        async def on_publish(result: ua.PublishResult) -> None:
            last_publish[0] = time.monotonic()
            for notification in result.NotificationMessage.NotificationData or ():
                if isinstance(notification, ua.DataChangeNotification):
                    items = notification.MonitoredItems
                    if items:
                        with self._lock:
                            self._buffer.extend(items)
                            waiting = len(self._buffer)
                        if waiting >= self._flush_values:
                            self._flush_now.set()
                        if waiting >= MAX_BUFFERED_VALUES:
                            await self._drain()
                elif isinstance(notification, ua.StatusChangeNotification):
                    status = notification.Status
                    if status is not None and status.is_bad():
                        end(f"the server ended the subscription ({status.name})")

        keepalive_s = max(KEEPALIVE_S, config.publishing_interval_ms / 1000)
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=config.publishing_interval_ms,
            RequestedLifetimeCount=math.ceil(keepalive_s * 6000 / config.publishing_interval_ms),
            RequestedMaxKeepAliveCount=math.ceil(keepalive_s * 1000 / config.publishing_interval_ms),
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        subscription = await client.uaclient.create_subscription(params, on_publish)
        await self._create_items(client, subscription.SubscriptionId)
        backoff.reset()
        self.health.set_state(LinkState.CONNECTED, config.endpoint)
        # A subscription publishes at least once per keep-alive period; one that stays silent for
        # three of them (plus a request's time) is dead even when the transport looks alive.
        revised_s = subscription.RevisedPublishingInterval / 1000
        stalled_after = (
            3 * revised_s * max(1, subscription.RevisedMaxKeepAliveCount) + config.request_timeout_s
        )
        self._session_lost = lost
        try:
            while not self._stop.is_set() and not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), 1.0)
                if client.uaclient.state is not UaClientState.CONNECTED:
                    end("connection lost")
                elif time.monotonic() - last_publish[0] > stalled_after:
                    end(f"the subscription published nothing for {stalled_after:.0f} s")
        finally:
            self._session_lost = None
        if reason and not self._stop.is_set():
            raise _Lost(reason[0])
        return reason[0] if reason else "stopped"

    async def _drain(self) -> None:
        """Hold the publish loop (and with it the server) until the flusher caught up."""
        self.health.failed("buffer_full", f"{MAX_BUFFERED_VALUES} values wait for ingest; pausing")
        while not self._stop.is_set():
            self._flush_now.set()
            await asyncio.sleep(0.05)
            with self._lock:
                if len(self._buffer) < MAX_BUFFERED_VALUES // 2:
                    return

    async def _create_items(self, client: Client, subscription_id: int) -> None:
        """Create one monitored item per mapped node, ITEMS_PER_CALL per request (or the server's limit)."""
        config = self.config
        per_call = ITEMS_PER_CALL
        with contextlib.suppress(Exception):  # the limit is optional; servers without it take ours
            limit = await client.get_node(
                standard_node(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall)
            ).read_value()
            if isinstance(limit, int) and limit > 0:
                per_call = min(per_call, limit)
        namespaces: list[str] = []
        if any(isinstance(n, ua.ExpandedNodeId) for n in self._node_ids):
            namespaces = await client.get_namespace_array()
        requests: list[ua.MonitoredItemCreateRequest] = []
        failed: list[tuple[int, str, str]] = []
        for handle, node in enumerate(config.nodes):
            node_id = _resolve(self._node_ids[handle], namespaces)
            if node_id is None:
                failed.append((handle, "BadNodeIdUnknown", "its namespace URI is not on the server"))
                continue
            # Room for every sample of a publishing interval, twice over, and for at least
            # MIN_QUEUE changes: servers that report changes as they happen (sampling interval 0, or
            # event-driven ones) would otherwise keep only the last change of each interval.
            per_publish = math.ceil(config.publishing_interval_ms / max(node.sampling_interval_ms, 1))
            parameters = ua.MonitoringParameters(
                ClientHandle=handle,
                SamplingInterval=node.sampling_interval_ms,
                Filter=_filter(node.deadband.type, node.deadband.value) if node.deadband else None,
                QueueSize=min(max(MIN_QUEUE, 2 * per_publish), MAX_QUEUE),
                DiscardOldest=True,
            )
            requests.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(NodeId=node_id, AttributeId=AttributeIds.Value),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=parameters,
                )
            )
        for first in range(0, len(requests), per_call):
            chunk = requests[first : first + per_call]
            results = await client.uaclient.create_monitored_items(
                ua.CreateMonitoredItemsParameters(
                    SubscriptionId=subscription_id,
                    TimestampsToReturn=ua.TimestampsToReturn.Both,
                    ItemsToCreate=chunk,
                )
            )
            for request, result in zip(chunk, results, strict=True):
                handle = request.RequestedParameters.ClientHandle
                if result.StatusCode.is_good():
                    self._failed_items.pop(handle, None)
                else:
                    failed.append((handle, result.StatusCode.name, result.StatusCode.doc))
        self._report_failed_items(failed)

    def _report_failed_items(self, failed: Sequence[tuple[int, str, str]]) -> None:
        """Dead-letter each node the server refused (once per node and status, not per reconnect)."""
        new: list[tuple[RecordKind, Reject]] = []
        for handle, status, why in failed:
            if self._failed_items.get(handle) == status:
                continue
            self._failed_items[handle] = status
            target = self._columns.targets[handle]
            code = "bad_node_id" if status in _NODE_ID_ERRORS else "subscribe_failed"
            what = f"{target.record} of {target.asset_id}" + (f"/{target.signal}" if target.signal else "")
            message = f"the server refused to monitor node {target.node_id} ({what}): {status}"
            if why:
                message += f" ({why.rstrip('.')})"
            raw = {
                "source": self.config.endpoint,
                "node_id": target.node_id,
                "asset_id": target.asset_id,
                "record": target.record,
                "status": status,
            }
            if target.signal:
                raw["signal"] = target.signal
            new.append((target.kind, Reject(code, message, raw)))
        if new:
            with self._lock:
                self._pending_rejects.extend(new)
            self._flush_now.set()

    # flushing --------------------------------------------------------------------------------------

    def _flush_loop(self) -> None:
        while True:
            self._flush_now.wait(self._flush_interval_s)
            self._flush_now.clear()
            done = self._session_done.is_set()  # stop() sets it once the session thread has ended
            try:
                self._flush()
            except Exception:
                log.exception("connection %s: a batch could not be decoded", self.config.key)
            if done:
                return

    def _flush(self) -> None:
        with self._lock:
            items, self._buffer = self._buffer, []
            rejected, self._pending_rejects = self._pending_rejects, []
        if not items and not rejected:
            return
        batch = (
            decode(
                self._columns, items, datetime.now(UTC), self._counters, self.config.endpoint, self._faults
            )
            if items
            else DecodedBatch()
        )
        for code, (count, message) in batch.repeated.items():
            self.health.failed(code, message, count)  # dead-lettered when the fault began
        for kind, reject in rejected:
            batch.rejects.setdefault(kind, []).append(reject)
        for kind in RecordKind:
            table = batch.tables.get(kind)
            rejects = batch.rejects.get(kind, [])
            if table is None and not rejects:
                continue
            future = (
                self._inlet.submit(kind, table, rejects)
                if table is not None
                else self._inlet.reject(kind, rejects)
            )
            if future is not None:
                rows = table.num_rows if table is not None else 0
                future.add_done_callback(functools.partial(self._check_stored, rows=rows))
            else:  # stopped while ingest was full
                lost = (table.num_rows if table is not None else 0) + len(rejects)
                self.health.failed("dropped_on_stop", f"{lost} {kind.value} were not taken by ingest")
        if items:
            self.health.received(len(items), batch.records)

    def _check_stored(self, future: Future[IngestResult], rows: int) -> None:
        """Count what ingest refused of a batch's records (its checks: unknown_signal, too_old, ...);
        the connector's own rejects, after the records, were counted when they were made."""
        exc = future.exception()
        if exc is not None:
            self.health.failed("ingest_failed", f"records could not be stored: {exc}")
            return
        refused: dict[str, tuple[int, str]] = {}
        for error in future.result().errors:
            if error.index < rows:
                count, _ = refused.get(error.code, (0, ""))
                refused[error.code] = (count + 1, error.message)
        for code, (count, message) in refused.items():
            self.health.failed(code, message, count)


# the client ----------------------------------------------------------------------------------------


def _new_client(config: OpcUaConfig) -> Client:
    client = Client(
        config.endpoint, timeout=config.request_timeout_s, watchdog_intervall=config.watchdog_interval_s
    )
    client.session_timeout = SESSION_TIMEOUT_MS
    client.name = client.description = f"Leitstand {config.key}"
    client.application_uri = f"urn:leitstand:opcua:{config.tenant}:{config.name}"
    client.product_uri = "urn:leitstand"
    if config.username is not None and config.password is not None:
        client.set_user(config.username)
        client.set_password(config.password)
    return client


async def _apply_security(client: Client, config: OpcUaConfig) -> None:
    if config.security_policy == "None":
        return
    assert config.certificate is not None
    assert config.private_key is not None
    for what, path in (
        ("private key", config.private_key),
        ("server certificate", config.server_certificate),
    ):
        if path is not None and not path.is_file():
            raise CertificateError(f"the {what} {path} does not exist")
    uri = _application_uri(config.certificate)
    if uri:
        client.application_uri = uri  # the server checks it against the certificate
    try:
        await client.set_security(
            security_policies.SecurityPolicyBasic256Sha256,
            certificate=str(config.certificate),
            private_key=str(config.private_key),
            server_certificate=str(config.server_certificate) if config.server_certificate else None,
            mode=getattr(ua.MessageSecurityMode, config.security_mode),
        )
    except (ValueError, TypeError) as exc:  # what the certificate and key loaders raise on bad content
        raise CertificateError(f"the certificate or key cannot be used: {_describe(exc)}") from exc


def _application_uri(path: Path) -> str | None:
    """The application URI in a certificate's subject alternative names (DER or PEM)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read the certificate {path}: {exc.strerror}") from exc
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if b"-----BEGIN" in data
            else x509.load_der_x509_certificate(data)
        )
    except ValueError as exc:
        raise CertificateError(f"{path} is not a certificate (DER or PEM)") from exc
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


class CertificateError(Exception):
    """A configured certificate or key cannot be used."""


async def _close(client: Client, timeout: float) -> None:
    """End the session politely when the server answers within `timeout`; drop the socket either way."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.disconnect(), timeout)
    uaclient = client.uaclient
    with contextlib.suppress(Exception):
        uaclient.disconnect_socket()
    protocol = uaclient.protocol  # still set when the transport was already lost
    if protocol is not None and protocol.transport is not None:
        protocol.transport.close()


def _resolve(node_id: ua.NodeId, namespaces: list[str]) -> ua.NodeId | None:
    """A node id with a namespace URI as one with the server's index for it (None: not on the server)."""
    if isinstance(node_id, ua.ExpandedNodeId) and node_id.NamespaceUri:
        if node_id.NamespaceUri not in namespaces:
            return None
        return ua.NodeId(
            node_id.Identifier, ua.Int16(namespaces.index(node_id.NamespaceUri)), node_id.NodeIdType
        )
    return node_id


def _filter(kind: str, value: float) -> ua.DataChangeFilter:
    return ua.DataChangeFilter(
        Trigger=ua.DataChangeTrigger.StatusValue,
        DeadbandType=ua.DeadbandType.Absolute if kind == "absolute" else ua.DeadbandType.Percent,
        DeadbandValue=value,
    )


def _good(status: ua.StatusCode | None) -> bool:
    return status is None or status.is_good()


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "…"


def _classify(exc: BaseException) -> tuple[str, str]:
    """A fault reason code and a message for why connecting or subscribing failed."""
    if isinstance(exc, CertificateError):
        return "certificate_error", str(exc)
    if isinstance(exc, UaStatusCodeError):
        name = status_name(exc.code)
        if name.startswith(("BadSecurity", "BadCertificate", "BadNonce")):
            return "security_rejected", f"the server refused the secure channel: {name}"
        if name.startswith(("BadUser", "BadIdentityToken")):
            return "auth_failed", f"the server refused the user: {name}"
        return "connect_failed", f"{name}: {_describe(exc)}"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "connect_failed", "the server did not answer in time"
    if isinstance(exc, OSError):
        return "connect_failed", _describe(exc)
    if isinstance(exc, UaError):
        if "No matching endpoints" in str(exc):
            return "security_rejected", "the server offers no endpoint with this security policy and mode"
        return "connect_failed", _describe(exc)
    return "connect_failed", f"{type(exc).__name__}: {_describe(exc)}"


# browsing ------------------------------------------------------------------------------------------

_BROWSE_CLASSES = ua.NodeClass.Object | ua.NodeClass.Variable


async def browse_async(
    config: OpcUaConfig,
    root: str | None = None,
    max_depth: int = 10,
    limit: int = 10_000,
    include_standard: bool = False,
) -> list[BrowsedVariable]:
    """The variables under `root` (else the config's browse_root, else the Objects folder), breadth
    first, at most `limit`. Standard nodes (namespace 0, such as the Server object) are skipped unless
    `include_standard`."""
    start = parse_node_id(root or config.browse_root or "i=85")
    client = _new_client(config)
    await _apply_security(client, config)
    await client.connect()
    try:
        namespaces = await client.get_namespace_array()
        resolved = _resolve(start, namespaces)
        if resolved is None:
            raise ValueError(f"the server has no namespace {getattr(start, 'NamespaceUri', '')!r}")
        found: list[tuple[ua.NodeId, str, str]] = []
        seen = {resolved}
        frontier: list[tuple[ua.NodeId, str]] = [(resolved, "")]
        for _ in range(max_depth):
            if not frontier or len(found) >= limit:
                break
            following: list[tuple[ua.NodeId, str]] = []
            for path, ref in await _children(client, frontier):
                node_id = ua.NodeId(ref.NodeId.Identifier, ref.NodeId.NamespaceIndex, ref.NodeId.NodeIdType)
                if node_id in seen or (node_id.NamespaceIndex == 0 and not include_standard):
                    continue
                seen.add(node_id)
                name = ref.BrowseName.Name if ref.BrowseName else str(node_id.Identifier)
                child_path = f"{path}/{name}" if path else name
                if ref.NodeClass == ua.NodeClass.Variable:
                    found.append((node_id, ref.BrowseName.to_string(), child_path))
                following.append((node_id, child_path))
            frontier = following
        found = found[:limit]
        types = await _data_type_names(client, [n for n, _, _ in found])
        return [
            BrowsedVariable(node_id.to_string(), browse_name, data_type, path)
            for (node_id, browse_name, path), data_type in zip(found, types, strict=True)
        ]
    finally:
        await _close(client, config.request_timeout_s)


def browse(
    config: OpcUaConfig,
    root: str | None = None,
    max_depth: int = 10,
    limit: int = 10_000,
    include_standard: bool = False,
) -> list[BrowsedVariable]:
    """`browse_async` for callers without an event loop (the CLI)."""
    return asyncio.run(browse_async(config, root, max_depth, limit, include_standard))


async def _children(
    client: Client, parents: list[tuple[ua.NodeId, str]]
) -> list[tuple[str, ua.ReferenceDescription]]:
    """The hierarchical children (objects and variables) of each parent, with the parent's path."""
    out: list[tuple[str, ua.ReferenceDescription]] = []
    for first in range(0, len(parents), 500):
        chunk = parents[first : first + 500]
        descriptions = [
            ua.BrowseDescription(
                NodeId=node_id,
                BrowseDirection=ua.BrowseDirection.Forward,
                ReferenceTypeId=standard_node(ObjectIds.HierarchicalReferences),
                IncludeSubtypes=True,
                NodeClassMask=_BROWSE_CLASSES,
                ResultMask=ua.BrowseResultMask.All,
            )
            for node_id, _ in chunk
        ]
        results = await client.uaclient.browse(ua.BrowseParameters(NodesToBrowse=descriptions))
        for (_, path), result in zip(chunk, results, strict=True):
            references = list(result.References or [])
            point = result.ContinuationPoint
            while point:
                more = await client.uaclient.browse_next(
                    ua.BrowseNextParameters(ReleaseContinuationPoints=False, ContinuationPoints=[point])
                )
                references += more[0].References or []
                point = more[0].ContinuationPoint
            out.extend((path, ref) for ref in references)
    return out


async def _data_type_names(client: Client, node_ids: list[ua.NodeId]) -> list[str]:
    """Each variable's data type by name (standard types by their OPC UA name, others by browse name)."""
    types: list[ua.NodeId | None] = []
    for first in range(0, len(node_ids), 1000):
        values = await client.uaclient.read_attributes(node_ids[first : first + 1000], AttributeIds.DataType)
        types += [v.Value.Value if v.Value is not None and _good(v.StatusCode) else None for v in values]
    custom = sorted({t for t in types if t is not None and t.NamespaceIndex != 0}, key=str)
    names: dict[ua.NodeId, str] = {}
    if custom:
        values = await client.uaclient.read_attributes(custom, AttributeIds.BrowseName)
        for node_id, value in zip(custom, values, strict=True):
            name = value.Value.Value if value.Value is not None else None
            names[node_id] = name.Name if isinstance(name, ua.QualifiedName) else node_id.to_string()
    out = []
    for t in types:
        if t is None:
            out.append("")
        elif t.NamespaceIndex == 0 and isinstance(t.Identifier, int):
            out.append(ObjectIdNames.get(t.Identifier, t.to_string()))
        else:
            out.append(names.get(t, t.to_string()))
    return out
