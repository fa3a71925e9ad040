"""Shared simulated history: four plants (Berlin, Bratislava, Mexico City, Chicago) over five days.

The window starts on a Thursday, so it holds working days, a weekend, one plant's Saturday shift and the
start of US daylight saving time (Chicago, Sunday 2026-03-08).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from leitstand.domain.records import RecordKind
from leitstand.sim import Simulator, enterprise_model

START = datetime(2026, 3, 5, tzinfo=UTC)  # a Thursday
END = START + timedelta(days=5)


@dataclass(frozen=True)
class History:
    sim: Simulator
    start: datetime
    end: datetime
    tables: dict[RecordKind, pa.Table]


@pytest.fixture(scope="session")
def four_plants() -> dict[str, object]:
    return enterprise_model(plants=4)


@pytest.fixture(scope="session")
def history(four_plants: dict[str, object]) -> History:
    sim = Simulator(four_plants, sample_interval_s=300)
    return History(sim, START, END, sim.generate(START, END))
