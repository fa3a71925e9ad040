"""MQTT connector benchmarks: Unified Namespace JSON and Sparkplug B DDATA through a real mosquitto into
the store, with publish → committed latency and the peak memory of the Leitstand process.

Each scenario runs in a process of its own (so its peak RSS is its own): a Leitstand runtime with one
connection, a mosquitto started for the run, and the load generator (bench/mqtt_load.py) in a third
process. The three share the machine's cores.

    python -m bench.connect_mqtt --kind uns --messages 300000 --rate 30000 --qos 0
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tests.brokers import Mosquitto

from bench.commit_clock import CommitClock
from bench.mqtt_load import SPB_DEVICES, SPB_METRICS
from leitstand.api.runtime import Runtime
from leitstand.api.settings import load_settings
from leitstand.connect.assets import ModelRegistrar
from leitstand.connect.base import LinkState
from leitstand.connect.mqtt.client import MqttConnector
from leitstand.connect.mqtt.config import BrokerConfig, MqttConfig
from leitstand.connect.sparkplug.client import SparkplugConnector
from leitstand.connect.sparkplug.config import SparkplugConfig
from leitstand.domain.assets import AssetLevel, parse_asset_model
from leitstand.sim.enterprise import enterprise_model

ROOT = Path(__file__).resolve().parent.parent
TENANT = "nordwerk"  # the enterprise of the simulator's model
# Nothing is dropped by the broker: the benchmark measures what Leitstand takes, not the broker's limits.
BROKER_CONFIG = "allow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\nmax_queued_bytes 0\n"


def scenario(kind: str, messages: int, rate: float, qos: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "broker", BROKER_CONFIG).start()
        rt = Runtime.build(
            load_settings(data_dir=Path(tmp) / "data", rollup_interval_s=0, max_past_s=86400 * 2)
        )
        rt.start()
        rt.identity.create_tenant(TENANT, "Bench")
        model = parse_asset_model(enterprise_model(plants=2))
        rt.metadata.import_asset_model(TENANT, model)
        clock = CommitClock(rt.pipeline)
        broker_config = BrokerConfig(port=broker.port, client_id=f"bench-{kind}")
        connector: MqttConnector | SparkplugConnector
        if kind == "uns":
            paths = [a.path for a in model.by_level(AssetLevel.MACHINE)][:100]
            expected = messages
            connector = MqttConnector(
                MqttConfig(name="uns", tenant=TENANT, broker=broker_config, qos=qos),
                clock,
            )
        else:
            paths = []
            expected = (messages + SPB_DEVICES) * SPB_METRICS
            connector = SparkplugConnector(
                SparkplugConfig(name="spb", tenant=TENANT, broker=broker_config, unknown_assets="create"),
                clock,
                ModelRegistrar(rt.metadata, rt.asset_cache),
            )
        connector.start()
        deadline = time.time() + 10
        while connector.health.state is not LinkState.CONNECTED and time.time() < deadline:
            time.sleep(0.05)
        start = time.time() + (3 if kind == "uns" else 2 + messages / 5000)  # time to encode up front
        load = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.mqtt_load",
                "--port",
                str(broker.port),
                "--kind",
                kind,
                "--messages",
                str(messages),
                "--rate",
                str(rate),
                "--qos",
                str(qos),
                "--start",
                str(start),
                "--tenant",
                TENANT,
                "--paths",
                ",".join(paths),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        sent = json.loads(load.stdout.strip().splitlines()[-1])
        deadline = time.time() + 120
        while clock.stored < expected and time.time() < deadline:
            time.sleep(0.05)
        connector.stop()
        rt.stop()
        broker.stop()
    latencies, _ = clock.window(0.0)
    latencies = latencies * 1000 if len(latencies) else np.array([np.nan])
    elapsed = clock.last_commit - sent["first_publish"]
    records_per_s = clock.stored / elapsed if elapsed > 0 else 0.0
    out: dict[str, Any] = {
        "kind": kind,
        "qos": qos,
        "messages": messages,
        "rate_offered_msg_per_s": rate or "as fast as possible",
        "published_in_s": round(sent["last_publish"] - sent["first_publish"], 2),
        "records_expected": expected,
        "records_stored": clock.stored,
        "publish_to_last_commit_s": round(elapsed, 2),
        "records_per_s": round(records_per_s),
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 1),
        "latency_ms_p99": round(float(np.percentile(latencies, 99)), 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if kind == "uns":
        out["messages_per_s"] = out["records_per_s"]
    else:
        out["metrics_per_s"] = out["records_per_s"]
        out["messages_per_s"] = round(records_per_s / SPB_METRICS)
    if qos:
        out["acknowledged_by_broker"] = sent["acked"]
    return out


def run(kind: str, messages: int, rate: float, qos: int = 0) -> dict[str, Any]:
    """One scenario in a fresh process."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.connect_mqtt",
            "--kind",
            kind,
            "--messages",
            str(messages),
            "--rate",
            str(rate),
            "--qos",
            str(qos),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode:
        raise RuntimeError(f"the {kind} benchmark failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", choices=["uns", "sparkplug"], required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--qos", type=int, choices=[0, 1], default=0)
    args = parser.parse_args()
    print(json.dumps(scenario(args.kind, args.messages, args.rate, args.qos)))


if __name__ == "__main__":
    main()
