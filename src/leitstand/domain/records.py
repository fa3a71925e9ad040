"""Record kinds that flow from sources into the store, and their Arrow schemas (the columnar contract).

Every stored row carries its tenant, its asset, a UTC source timestamp `ts` and a natural key that makes
redelivery harmless: a second record with the same key is a duplicate and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa

TS_TYPE = pa.timestamp("us", tz="UTC")


class Quality(StrEnum):
    """Sample quality, as OPC UA and Sparkplug classify it."""

    GOOD = "GOOD"
    UNCERTAIN = "UNCERTAIN"
    BAD = "BAD"


class RecordKind(StrEnum):
    """What a record describes; each kind has its own table and key."""

    SAMPLES = "samples"
    STATES = "states"
    COUNTS = "counts"


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """The Arrow schema of a record kind, which columns a source must send, and the dedupe key."""

    kind: RecordKind
    schema: pa.Schema
    required: tuple[str, ...]
    key: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.schema.names)


SAMPLES = RecordSpec(
    kind=RecordKind.SAMPLES,
    schema=pa.schema(
        [
            ("tenant", pa.string()),
            ("asset_id", pa.string()),
            ("signal", pa.string()),
            ("ts", TS_TYPE),
            ("value", pa.float64()),
            ("quality", pa.string()),
        ]
    ),
    required=("asset_id", "signal", "ts", "value"),
    key=("tenant", "asset_id", "signal", "ts"),
)

STATES = RecordSpec(
    kind=RecordKind.STATES,
    schema=pa.schema(
        [
            ("tenant", pa.string()),
            ("asset_id", pa.string()),
            ("ts", TS_TYPE),
            ("state", pa.string()),
            ("reason", pa.string()),
        ]
    ),
    required=("asset_id", "ts", "state"),
    key=("tenant", "asset_id", "ts"),
)

COUNTS = RecordSpec(
    kind=RecordKind.COUNTS,
    schema=pa.schema(
        [
            ("tenant", pa.string()),
            ("asset_id", pa.string()),
            ("ts", TS_TYPE),
            ("product_id", pa.string()),
            ("produced", pa.int64()),
            ("scrap", pa.int64()),
            ("rework", pa.int64()),  # units to be reworked: neither good nor scrap (ISO 22400 RQ)
        ]
    ),
    required=("asset_id", "ts", "produced"),
    key=("tenant", "asset_id", "ts"),
)

SPECS: dict[RecordKind, RecordSpec] = {s.kind: s for s in (SAMPLES, STATES, COUNTS)}
