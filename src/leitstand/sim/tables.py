"""Arrow tables in the record schemas, built from index arrays with no Python object per row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from leitstand.domain.records import COUNTS, SAMPLES, STATES
from leitstand.sim.production import CountArrays
from leitstand.sim.sensors import QUALITIES, SampleArrays


class Vocabulary:
    """Strings the records repeat (asset ids, products, states, reasons), each stored once."""

    def __init__(self, names: Sequence[str]) -> None:
        self._names = pa.array(list(names), type=pa.string())

    def take(self, index: np.ndarray) -> pa.Array:
        """The names at `index`; a negative index gives null."""
        if len(self._names) == 0:
            return pa.nulls(len(index), pa.string())
        return self._names.take(pa.array(index, type=pa.int64(), mask=index < 0))


def _ts(epoch_s: np.ndarray) -> pa.Array:
    return pa.array(epoch_s.astype(np.int64) * 1_000_000, type=STATES.schema.field("ts").type)


def states_table(
    assets: Vocabulary,
    states: Vocabulary,
    reasons: Vocabulary,
    machine: np.ndarray,
    ts: np.ndarray,
    state: np.ndarray,
    reason: np.ndarray,
) -> pa.Table:
    """State-change records in the STATES schema (tenant left null)."""
    return pa.Table.from_arrays(
        [
            pa.nulls(len(ts), pa.string()),
            assets.take(machine),
            _ts(ts),
            states.take(state),
            reasons.take(reason),
        ],
        schema=STATES.schema,
    )


def counts_table(assets: Vocabulary, products: Vocabulary, counts: CountArrays) -> pa.Table:
    """Count records in the COUNTS schema (tenant left null)."""
    return pa.Table.from_arrays(
        [
            pa.nulls(len(counts), pa.string()),
            assets.take(counts.machine),
            _ts(counts.ts),
            products.take(counts.product),
            pa.array(counts.produced, type=pa.int64()),
            pa.array(counts.scrap, type=pa.int64()),
            pa.repeat(pa.scalar(0, pa.int64()), len(counts)),  # the simulator reworks nothing
        ],
        schema=COUNTS.schema,
    )


def samples_table(assets: Vocabulary, samples: SampleArrays) -> pa.Table:
    """Sample records in the SAMPLES schema (tenant left null)."""
    return pa.Table.from_arrays(
        [
            pa.nulls(len(samples), pa.string()),
            assets.take(samples.machine),
            Vocabulary(samples.signals).take(samples.signal),
            _ts(samples.ts),
            pa.array(samples.value, type=pa.float64()),
            Vocabulary(QUALITIES).take(samples.quality),
        ],
        schema=SAMPLES.schema,
    )
