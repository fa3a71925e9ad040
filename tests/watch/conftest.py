"""A small plant and record tables for the watch tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from leitstand.domain.assets import Asset, AssetLevel, Signal
from leitstand.domain.records import COUNTS, SAMPLES, STATES
from leitstand.domain.tenancy import Tenant
from leitstand.store.sql import SqlMetadataStore
from leitstand.store.sql.alarms import SqlAlarmStore

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday morning
SIGNALS = ("temperature", "vibration", "motor_current")


def plant(machines: int = 3) -> list[Asset]:
    assets = [
        Asset("acme", AssetLevel.ENTERPRISE, "ACME", None, "acme"),
        Asset("p1", AssetLevel.SITE, "Plant 1", "acme", "acme/p1"),
        Asset("l1", AssetLevel.LINE, "Line 1", "p1", "acme/p1/l1"),
    ]
    for i in range(machines):
        assets.append(
            Asset(
                f"m{i}",
                AssetLevel.MACHINE,
                f"Machine {i}",
                "l1",
                f"acme/p1/l1/m{i}",
                machine_type="press" if i % 2 == 0 else "lathe",
                signals=tuple(Signal(s) for s in SIGNALS),
            )
        )
    return assets


@pytest.fixture
def assets() -> list[Asset]:
    return plant()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlAlarmStore]:
    """An alarm store in a fresh metadata database (SQLite) with the tenant acme."""
    metadata = SqlMetadataStore(f"sqlite:///{tmp_path / 'm.sqlite'}")
    metadata.ensure_tenant(Tenant("acme", "ACME"))
    yield SqlAlarmStore(metadata.engine)
    metadata.close()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def samples(
    asset: str, signal: str, values: Sequence[float], step_s: float = 60, start_min: float = 0, quality=None
) -> pa.Table:
    n = len(values)
    return pa.table(
        {
            "tenant": ["acme"] * n,
            "asset_id": [asset] * n,
            "signal": [signal] * n,
            "ts": [at(start_min) + timedelta(seconds=step_s * i) for i in range(n)],
            "value": list(values),
            "quality": quality if quality is not None else ["GOOD"] * n,
        },
        schema=SAMPLES.schema,
    )


def states(asset: str, changes: Sequence[tuple[float, str]]) -> pa.Table:
    return pa.table(
        {
            "tenant": ["acme"] * len(changes),
            "asset_id": [asset] * len(changes),
            "ts": [at(m) for m, _ in changes],
            "state": [s for _, s in changes],
            "reason": [None] * len(changes),
        },
        schema=STATES.schema,
    )


def counts(asset: str, rows: Sequence[tuple[float, int, int]]) -> pa.Table:
    return pa.table(
        {
            "tenant": ["acme"] * len(rows),
            "asset_id": [asset] * len(rows),
            "ts": [at(m) for m, _, _ in rows],
            "product_id": [None] * len(rows),
            "produced": [p for _, p, _ in rows],
            "scrap": [s for _, _, s in rows],
            "rework": [0] * len(rows),
        },
        schema=COUNTS.schema,
    )
