"""A load generator for the connector benchmarks: machines publishing MQTT, in a process of its own.

It speaks MQTT 3.1.1 over a plain socket with packets encoded up front, so it spends little CPU on the
two cores it shares with the broker and Leitstand. Each message carries the time it is scheduled to be
published (`timestamp_ms`, or the Sparkplug payload timestamp); the generator keeps to that schedule, so
the benchmark can read publish → committed latency off the stored records. Rate 0 publishes as fast as
the socket takes it (the timestamps then only order the records).

    python -m bench.mqtt_load --port P --kind uns|sparkplug --messages N --rate R --qos Q --start T

It prints one JSON line when done: {"sent", "acked", "first_publish", "last_publish"}.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import threading
import time

import orjson

from leitstand.connect.sparkplug import sparkplug_b_pb2 as pb

CHUNK = 2000  # messages per socket write
UNS_MACHINES = 100
UNS_SIGNALS = ("temperature", "motor_current", "vibration")
SPB_DEVICES = 20
SPB_METRICS = 100


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str) -> bytes:
    body = _str("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60) + _str(client_id)
    return b"\x10" + _length(len(body)) + body


def publish_packet(topic: str, payload: bytes, qos: int, packet_id: int) -> bytes:
    body = _str(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _length(len(body)) + body


def uns_messages(tenant: str, paths: list[str], n: int, t0_ms: float, rate: float) -> list[tuple[str, bytes]]:
    """One sample per message, round robin over machines and signals, scheduled `1/rate` apart."""
    topics = [f"{p}/samples/{s}" for p in paths for s in UNS_SIGNALS]
    step = 1000.0 / rate if rate else 0.01
    return [
        (topics[i % len(topics)], orjson.dumps({"timestamp_ms": t0_ms + i * step, "value": i % 1000}))
        for i in range(n)
    ]


def sparkplug_messages(group: str, n: int, t0_ms: float, rate: float) -> list[tuple[str, bytes]]:
    """NBIRTH, a DBIRTH per device (100 double metrics with aliases), then DDATA round robin over the
    devices with all 100 metrics each."""
    node = "bench-node"
    out: list[tuple[str, bytes]] = []
    birth = pb.Payload(timestamp=int(t0_ms) - 1000, seq=0)
    bd = birth.metrics.add()
    bd.name, bd.datatype, bd.long_value = "bdSeq", 4, 0
    out.append((f"spBv1.0/{group}/NBIRTH/{node}", birth.SerializeToString()))
    seq = 0
    for d in range(SPB_DEVICES):
        seq = (seq + 1) % 256
        p = pb.Payload(timestamp=int(t0_ms) - 1000, seq=seq)
        for m in range(SPB_METRICS):
            metric = p.metrics.add()
            metric.name, metric.alias, metric.datatype, metric.double_value = (
                f"m{m:03d}",
                d * 1000 + m,
                10,
                0.0,
            )
        out.append((f"spBv1.0/{group}/DBIRTH/{node}/dev{d:02d}", p.SerializeToString()))
    step = 1000.0 / rate if rate else 0.01
    for i in range(n):
        seq = (seq + 1) % 256
        d = i % SPB_DEVICES
        ts = int(t0_ms + i * step)
        p = pb.Payload(timestamp=ts, seq=seq)
        for m in range(SPB_METRICS):
            metric = p.metrics.add()
            metric.alias, metric.timestamp, metric.double_value = d * 1000 + m, ts, float(i)
        out.append((f"spBv1.0/{group}/DDATA/{node}/dev{d:02d}", p.SerializeToString()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=["uns", "sparkplug"], required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="messages per second; 0: as fast as possible")
    parser.add_argument("--qos", type=int, choices=[0, 1], default=0)
    parser.add_argument("--start", type=float, required=True, help="epoch seconds of the first publish")
    parser.add_argument("--tenant", default="bench")
    parser.add_argument("--paths", default="", help="comma-separated asset paths (UNS)")
    args = parser.parse_args()
    t0_ms = args.start * 1000
    if args.kind == "uns":
        messages = uns_messages(args.tenant, args.paths.split(","), args.messages, t0_ms, args.rate)
    else:
        messages = sparkplug_messages(f"{args.tenant}:site", args.messages, t0_ms, args.rate)
    packets = [publish_packet(t, p, args.qos, i % 65535 + 1) for i, (t, p) in enumerate(messages)]
    sock = socket.create_connection(("127.0.0.1", args.port))
    sock.sendall(connect_packet(f"bench-load-{args.kind}"))
    sock.recv(4)  # CONNACK
    acked = [0]

    def read_acks() -> None:  # PUBACKs are 4 bytes each
        buffered = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return
            buffered += data
            whole = len(buffered) // 4
            acked[0] += whole
            buffered = buffered[whole * 4 :]

    if args.qos:
        threading.Thread(target=read_acks, daemon=True).start()
    # births first, then the schedule
    lead = len(messages) - args.messages
    if lead:
        sock.sendall(b"".join(packets[:lead]))
        time.sleep(0.5)
    while time.time() < args.start:
        time.sleep(0.001)
    first = time.time()
    data = packets[lead:]
    # paced: bursts of 5 ms worth of messages, so none leaves much before its scheduled time
    chunk = min(CHUNK, max(1, int(args.rate / 200))) if args.rate else CHUNK
    for i in range(0, len(data), chunk):
        if args.rate:
            due = args.start + i / args.rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
        sock.sendall(b"".join(data[i : i + chunk]))
    last = time.time()
    if args.qos:
        deadline = time.time() + 120
        while acked[0] < len(packets) and time.time() < deadline:
            time.sleep(0.05)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    print(
        json.dumps({"sent": args.messages, "acked": acked[0], "first_publish": first, "last_publish": last})
    )


if __name__ == "__main__":
    main()
