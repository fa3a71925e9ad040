"""What the connector tests share: waiting for a condition (bounded) and counting stored records."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from leitstand.api.runtime import Runtime

WAIT_S = 15.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> None:
    """Poll `condition` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def count(rt: Runtime, table: str, where: str = "true") -> int:
    """Records of tenant acme in `table` (samples, states, counts) matching `where`."""
    query = f"select count(*) n from {table} where tenant = 'acme' and {where}"
    return int(rt.events.query(query)["n"][0].as_py())
