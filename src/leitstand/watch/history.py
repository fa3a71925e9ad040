"""Stored records of a window, in time order and bounded pieces, for evaluating rules over history."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

import pyarrow as pa

from leitstand.domain.records import SPECS, RecordKind
from leitstand.store.interfaces import EventStore

# States first: a sample is evaluated in the state its machine was in (while_state).
_ORDER = (RecordKind.STATES, RecordKind.COUNTS, RecordKind.SAMPLES)


def history(
    events: EventStore,
    tenant: str,
    start: datetime,
    end: datetime,
    assets: Sequence[str],
    piece: timedelta = timedelta(hours=6),
) -> Iterator[tuple[RecordKind, pa.Table]]:
    """(kind, records) of the machines `assets` with start <= ts < end, piece by piece in time order."""
    machines = pa.table({"asset_id": pa.array(sorted(set(assets)), pa.string())})
    cursor = start
    while cursor < end:
        upto = min(cursor + piece, end)
        for kind in _ORDER:
            columns = ", ".join(SPECS[kind].columns)
            table = events.query(
                f"SELECT {columns} FROM {kind.value} WHERE tenant = $tenant AND ts >= $lo AND ts < $hi "
                "AND asset_id IN (SELECT asset_id FROM machines) ORDER BY asset_id, ts",
                {"tenant": tenant, "lo": cursor, "hi": upto},
                tables={"machines": machines},
            )
            if table.num_rows:
                yield kind, table
        cursor = upto
