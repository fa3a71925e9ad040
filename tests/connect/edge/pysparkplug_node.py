"""A Sparkplug B edge node written with an independent library (pysparkplug), run as its own process
in its own virtual environment (`make edge-venv`): the tests check that Leitstand's host application
understands what another implementation sends.

Usage: pysparkplug_node.py PORT GROUP NODE DEVICE MESSAGES
It publishes NBIRTH and DBIRTH, then MESSAGES DDATA messages, answers a Rebirth NCMD with a new birth,
prints "sent" once done, and disconnects (publishing NDEATH) when stdin closes.
"""

import sys
import threading
import time

import pysparkplug as spb


def main() -> None:
    port, group, node_id, device_id, messages = (
        int(sys.argv[1]),
        sys.argv[2],
        sys.argv[3],
        sys.argv[4],
        int(sys.argv[5]),
    )
    now = spb.get_current_timestamp
    node_metrics = (
        spb.Metric(timestamp=now(), name="Uptime", datatype=spb.DataType.INT64, value=0, alias=1),
    )
    device_metrics = (
        spb.Metric(timestamp=now(), name="temperature", datatype=spb.DataType.DOUBLE, value=20.0, alias=10),
        spb.Metric(timestamp=now(), name="Motor/Current", datatype=spb.DataType.FLOAT, value=1.5, alias=11),
        spb.Metric(timestamp=now(), name="Offset", datatype=spb.DataType.INT16, value=-3, alias=12),
        spb.Metric(timestamp=now(), name="Running", datatype=spb.DataType.BOOLEAN, value=True, alias=13),
        spb.Metric(
            timestamp=now(), name="Profile", datatype=spb.DataType.INT32_ARRAY, value=(1, -2, 3), alias=14
        ),
        spb.Metric(timestamp=now(), name="Recipe", datatype=spb.DataType.STRING, value="A-17", alias=15),
    )
    rebirths = threading.Event()

    def on_command(node: spb.EdgeNode, message: spb.Message) -> None:
        for metric in message.payload.metrics:
            if metric.name == "Node Control/Rebirth" and metric.value:
                rebirths.set()

    node = spb.EdgeNode(group, node_id, node_metrics, cmd_callback=on_command)
    node.register(spb.Device(device_id, device_metrics))
    node.connect("127.0.0.1", port=port, blocking=False)
    deadline = time.monotonic() + 10
    while not node._connected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the births go out from the connect callback
    for i in range(messages):
        node.update_device(
            device_id,
            (
                spb.Metric(timestamp=now(), name="temperature", datatype=spb.DataType.DOUBLE, value=21.0 + i),
                spb.Metric(timestamp=now(), name="Offset", datatype=spb.DataType.INT16, value=-i),
            ),
        )
        time.sleep(0.002)
    print("sent", flush=True)
    while sys.stdin.readline():
        if rebirths.is_set():
            print("rebirth", flush=True)
    node.disconnect()


if __name__ == "__main__":
    main()
