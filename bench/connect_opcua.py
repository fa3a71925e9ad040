"""OPC UA connector throughput: `items` variables on a real asyncua server, all changing every second,
subscribed at 1 s sampling by the connector, streamed into a real runtime (DuckDB).

The server runs in its own process (on a plant it is another machine; in this process it would take
the GIL from the connector). Measured in this process, over the last 60 % of the run: values received
per second against the expected rate (and against what the server actually wrote: a server that falls
behind writes fewer), the share of the values written in that time that were stored, the latency from
each value's source timestamp to the commit of its record (when it is queryable) and the part of it
that ingest took, the CPU this process used (connector, ingest writer and DuckDB), the time to
subscribe, and the RSS before the connector started and at its peak.

    .venv/bin/python -m bench.connect_opcua --items 10000 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.commit_clock import CommitClock
from bench.server import free_port
from leitstand.api.runtime import Runtime
from leitstand.api.settings import load_settings
from leitstand.connect.base import LinkState
from leitstand.connect.opcua.client import OpcUaConnector
from leitstand.connect.opcua.config import OpcUaConfig
from leitstand.domain.assets import parse_asset_model

ROOT = Path(__file__).resolve().parent.parent
TENANT = "bench"
SIGNALS_PER_MACHINE = 10
SAMPLING_MS = 1000


def layout(items: int) -> dict[str, list[str]]:
    """`items` variables as machines of SIGNALS_PER_MACHINE signals each."""
    machines: dict[str, list[str]] = {}
    for i in range(items):
        machines.setdefault(f"opc-m{i // SIGNALS_PER_MACHINE:05d}", []).append(f"s{i % SIGNALS_PER_MACHINE}")
    return machines


def asset_model(machines: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "enterprise": {"id": TENANT, "name": "OPC UA bench"},
        "sites": [
            {
                "id": "opc-site",
                "name": "Site",
                "timezone": "UTC",
                "areas": [
                    {
                        "id": "opc-area",
                        "name": "Area",
                        "lines": [
                            {
                                "id": "opc-line",
                                "name": "Line",
                                "machines": [
                                    {
                                        "id": m,
                                        "name": m,
                                        "type": "press",
                                        "ideal_cycle_s": 1.0,
                                        "signals": [{"name": s} for s in signals],
                                    }
                                    for m, signals in machines.items()
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }


# the server process --------------------------------------------------------------------------------


def serve(items: int, port: int) -> None:
    """Serve `items` variables and change every one of them once a second, on the second; print one
    JSON line per tick (how long writing all values took)."""
    from asyncua.server import monitored_item_service

    from leitstand.sim.opcua_server import OpcUaSimServer, Update

    def keep_value(self: Any, value: Any) -> None:
        self.old_dvalue, self.current_dvalue = self.current_dvalue, value

    # asyncua's server deep-copies each value for each monitored item it notifies, which alone takes
    # about a second per 10,000 values here; this server never changes a value it wrote, so it keeps
    # the value itself (a PLC's server does not spend that time: it is not what is measured here).
    monitored_item_service.MonitoredItemValues.set_current_datavalue = keep_value  # type: ignore[method-assign,assignment]
    machines = layout(items)
    server = OpcUaSimServer(machines, port=port).start(timeout=300)
    print(json.dumps({"ready": True}), flush=True)
    names = [(m, s) for m, signals in machines.items() for s in signals]
    tick = 0
    try:
        while True:
            time.sleep(1.0 - time.time() % 1.0)
            now = datetime.now(UTC)
            started = time.perf_counter()
            base = 50.0 + (tick % 20)
            server.update_many(
                [Update(m, s, base + i * 1e-4, now) for i, (m, s) in enumerate(names)], timeout=60
            )
            took = round(time.perf_counter() - started, 4)
            print(json.dumps({"tick": tick, "at": now.timestamp(), "write_s": took}), flush=True)
            tick += 1
    finally:
        server.stop()


class ServerProcess:
    def __init__(self, items: int) -> None:
        self.items = items
        self.port = free_port()
        self.ticks: list[tuple[float, float]] = []  # (the values' timestamp, seconds to write them)
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> ServerProcess:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.connect_opcua",
                "--serve",
                str(self.items),
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError("the OPC UA server process did not start")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            tick = json.loads(line)
            self.ticks.append((float(tick["at"]), float(tick["write_s"])))

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)


# measuring ------------------------------------------------------------------------------------------


def current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run(items: int = 10_000, seconds: float = 20.0) -> dict[str, Any]:
    """Stream `items` values per second for `seconds` after subscribing; measure the last 60 %."""
    machines = layout(items)
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(items) as server:
        rt = Runtime.build(load_settings(data_dir=Path(tmp), rollup_interval_s=0))
        try:
            rt.identity.create_tenant(TENANT, "Bench")
            rt.metadata.import_asset_model(TENANT, parse_asset_model(asset_model(machines)))
            rt.pipeline.start()
            clock = CommitClock(rt.pipeline)
            config = OpcUaConfig(
                name="bench",
                tenant=TENANT,
                endpoint=f"opc.tcp://127.0.0.1:{server.port}",
                security_policy="None",
                allow_insecure=True,
                publishing_interval_ms=SAMPLING_MS,
                nodes=[
                    {
                        "node_id": f"ns=2;s={m}.{s}",
                        "asset_id": m,
                        "signal": s,
                        "record": "sample",
                        "sampling_interval_ms": SAMPLING_MS,
                    }
                    for m, signals in machines.items()
                    for s in signals
                ],
            )
            rss_before = current_rss_mib()
            connector = OpcUaConnector(config, clock)
            started = time.monotonic()
            connector.start()
            while connector.health.state is not LinkState.CONNECTED:
                if time.monotonic() - started > 300:
                    raise RuntimeError(f"no connection: {connector.health.snapshot()}")
                time.sleep(0.05)
            subscribe_s = time.monotonic() - started
            try:
                # Values arrive in one burst per publishing interval: measure over whole seconds.
                time.sleep(seconds - (measured := max(1, round(seconds * 0.6))))
                first_wall, first_messages = time.time(), connector.health.messages
                cpu_before = _cpu_s()
                time.sleep(measured)
                last_wall, last_messages = time.time(), connector.health.messages
                cpu = _cpu_s() - cpu_before
                latencies, ingest_latencies = clock.window(first_wall)
                time.sleep(3.0)  # for the values of the window still on their way
            finally:
                connector.stop()
            health = connector.health.snapshot()
            stored = int(
                rt.events.query(
                    "select count(*) n from samples where tenant = $t and ts >= $a and ts < $b",
                    {
                        "t": TENANT,
                        "a": datetime.fromtimestamp(first_wall, UTC),
                        "b": datetime.fromtimestamp(last_wall, UTC),
                    },
                )["n"][0].as_py()
            )
        finally:
            rt.stop()
    span = last_wall - first_wall
    received_per_s = (last_messages - first_messages) / span
    expected_per_s = items * 1000 / SAMPLING_MS
    produced = items * sum(1 for at, _ in server.ticks if first_wall <= at < last_wall)
    writes = np.array([w for _, w in server.ticks] or [0.0])
    return {
        "items": items,
        "sampling_interval_ms": SAMPLING_MS,
        "publishing_interval_ms": SAMPLING_MS,
        "seconds": seconds,
        "measured_over_s": round(span, 1),
        "subscribe_s": round(subscribe_s, 2),
        "values_per_s": round(received_per_s),
        "committed_per_s": round(latencies.size / span),
        "expected_per_s": round(expected_per_s),
        "fraction_delivered": round(received_per_s / expected_per_s, 3),
        "server_produced_per_s": round(produced / span),
        "fraction_of_produced_stored": round(stored / produced, 4) if produced else None,
        "latency_p50_s": _percentile(latencies, 50),
        "latency_p99_s": _percentile(latencies, 99),
        # of which from the connector handing a batch to ingest until it is committed
        "ingest_latency_p50_s": _percentile(ingest_latencies, 50),
        "ingest_latency_p99_s": _percentile(ingest_latencies, 99),
        "connector_process_cpu_cores": round(cpu / span, 2),
        "rss_before_connector_mib": rss_before,
        "peak_rss_mib": peak_rss_mib(),
        "errors": health["errors"],
        "server_write_s_p50": round(float(np.percentile(writes, 50)), 3),
        "server_write_s_max": round(float(writes.max()), 3),
        "cpu_count": os.cpu_count(),
    }


def _percentile(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values.size else None


def _cpu_s() -> float:
    """CPU seconds this process used so far (the connector, the ingest writer, DuckDB)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    print(json.dumps(run(args.items, args.seconds), indent=2))


if __name__ == "__main__":
    main()
