"""A RecordSink that publishes the simulator's records as Sparkplug B 3.0 edge nodes.

Each line of a plant is an edge node (group `<tenant>:<site>`, node id = the line's id) and each of its
machines a device (device id = the machine's id). A device's metrics are its signals (Double), `State`
(String) and `Produced` (UInt64, a running parts counter, as PLCs keep it). The first batch of a node
publishes NBIRTH (with bdSeq) and a DBIRTH per device with aliases; later batches publish DDATA with
aliases only, one message per device and timestamp, `seq` counting 0–255. The host's connection needs
`state_metrics: [State]` and `counter_metrics: [Produced]`.

Counts lose their product on the way (a PLC's counter does not know it), so performance over this path
uses each machine's own ideal cycle time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa

from leitstand.connect.sparkplug import decode as spb
from leitstand.domain.assets import Asset, AssetLevel
from leitstand.domain.errors import InputError
from leitstand.domain.records import RecordKind
from leitstand.sim.mqtt_publisher import BrokerPublisher

STATE_METRIC = "State"
COUNTER_METRIC = "Produced"


@dataclass
class _Node:
    group: str
    node: str
    devices: dict[str, dict[str, int]] = field(default_factory=dict)  # device → metric name → alias
    seq: int = -1
    born: bool = False

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) % 256
        return self.seq


class SparkplugEdgePublisher(BrokerPublisher):
    """Publishes a tenant's machines as Sparkplug B edge nodes, one per line (see the module docstring)."""

    def __init__(
        self, assets: list[Asset], host: str = "127.0.0.1", port: int = 1883, timeout_s: float = 60.0
    ) -> None:
        by_id = {a.id: a for a in assets}
        self._timeout_s = timeout_s
        self._nodes: dict[str, _Node] = {}
        self._machine_node: dict[str, _Node] = {}
        self._signals: dict[str, list[str]] = {}
        for machine in (a for a in assets if a.level is AssetLevel.MACHINE):
            line = by_id.get(machine.parent_id or "")
            path = machine.path.split("/")
            if line is None or len(path) < 2:
                continue
            group = f"{path[0]}:{path[1]}"
            node = self._nodes.setdefault(line.id, _Node(group, line.id))
            self._machine_node[machine.id] = node
            self._signals[machine.id] = [s.name for s in machine.signals]
        self._counters: dict[str, int] = defaultdict(int)
        super().__init__(host, port, timeout_s, "spb")

    def messages(self, kind: RecordKind, records: pa.Table) -> list[tuple[str, bytes]]:
        """A batch as DDATA per device and timestamp, each node's births first where needed."""
        rows = records.select(self._columns(kind)).to_pylist()
        by_device: dict[str, list[dict[str, object]]] = defaultdict(list)
        for row in rows:
            by_device[str(row["asset_id"])].append(row)
        out: list[tuple[str, bytes]] = []
        for device, device_rows in by_device.items():
            node = self._machine_node.get(device)
            if node is None:
                raise InputError(f"machine {device!r} is on no line of the asset model")
            if not node.born:
                out += self._birth(node)
            aliases = node.devices[device]
            for ts, metrics in self._metrics(kind, device, device_rows).items():
                payload = spb.Payload(timestamp=ts, seq=node.next_seq())
                for name, value in metrics:
                    metric = payload.metrics.add()
                    metric.alias = aliases[name]
                    metric.timestamp = ts
                    if isinstance(value, str):
                        metric.string_value = value
                    elif name == COUNTER_METRIC:
                        metric.long_value = int(value)
                    else:
                        metric.double_value = float(value)
                topic = f"{spb.NAMESPACE}/{node.group}/DDATA/{node.node}/{device}"
                out.append((topic, payload.SerializeToString()))
        return out

    @staticmethod
    def _columns(kind: RecordKind) -> list[str]:
        return {
            RecordKind.SAMPLES: ["asset_id", "ts", "signal", "value"],
            RecordKind.STATES: ["asset_id", "ts", "state"],
            RecordKind.COUNTS: ["asset_id", "ts", "produced"],
        }[kind]

    def _metrics(
        self, kind: RecordKind, device: str, rows: list[dict[str, object]]
    ) -> dict[int, list[tuple[str, float | str]]]:
        """(metric name, value) per timestamp in epoch milliseconds; counts advance the running counter."""
        out: dict[int, list[tuple[str, float | str]]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: r["ts"]):  # type: ignore[arg-type, return-value]
            ts = int(row["ts"].timestamp() * 1000)  # type: ignore[attr-defined]
            if kind is RecordKind.SAMPLES:
                out[ts].append((str(row["signal"]), float(row["value"])))  # type: ignore[arg-type]
            elif kind is RecordKind.STATES:
                out[ts].append((STATE_METRIC, str(row["state"])))
            else:
                self._counters[device] += int(row["produced"])  # type: ignore[call-overload]
                out[ts].append((COUNTER_METRIC, self._counters[device]))
        return out

    def _birth(self, node: _Node) -> list[tuple[str, bytes]]:
        """NBIRTH and a DBIRTH per device, declaring each metric with its alias."""
        node.seq = -1
        birth = spb.Payload(timestamp=0, seq=node.next_seq())
        bd_seq = birth.metrics.add()
        bd_seq.name, bd_seq.datatype, bd_seq.long_value = "bdSeq", spb.DataType.INT64, 0
        out = [(f"{spb.NAMESPACE}/{node.group}/NBIRTH/{node.node}", birth.SerializeToString())]
        devices = [m for m, n in self._machine_node.items() if n is node]
        alias = 0
        for device in devices:
            payload = spb.Payload(timestamp=0, seq=node.next_seq())
            names: dict[str, int] = {}
            for name in [*self._signals[device], STATE_METRIC, COUNTER_METRIC]:
                alias += 1
                names[name] = alias
                metric = payload.metrics.add()
                metric.name, metric.alias = name, alias
                metric.datatype = {
                    STATE_METRIC: spb.DataType.STRING,
                    COUNTER_METRIC: spb.DataType.UINT64,
                }.get(name, spb.DataType.DOUBLE)
                if name == COUNTER_METRIC:  # the counter's reading now: data after it counts from here
                    metric.long_value = self._counters[device]
                else:  # no value yet: the birth declares, the data carries the values
                    metric.is_null = True
            node.devices[device] = names
            out.append(
                (f"{spb.NAMESPACE}/{node.group}/DBIRTH/{node.node}/{device}", payload.SerializeToString())
            )
        node.born = True
        return out


def sparkplug_connection(tenant: str, sites: list[str], broker: str) -> dict[str, object]:
    """The host connection that reads the edge nodes of a tenant's sites."""
    host, _, port = broker.rpartition(":")
    return {
        "protocol": "sparkplug",
        "name": "demo-sparkplug",
        "tenant": tenant,
        "host_id": f"leitstand-{tenant}",
        "groups": [f"{tenant}:{site}" for site in sites],
        "state_metrics": [STATE_METRIC],
        "counter_metrics": [COUNTER_METRIC],
        "broker": {"host": host, "port": int(port), "client_id": f"leitstand-demo-spb-{tenant}"},
    }
