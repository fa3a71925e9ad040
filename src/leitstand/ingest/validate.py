"""Vectorised per-record validation: every check is one Arrow compute pass over a column.

The common case (every record valid) never touches a row in Python. When some rows fail, each failing
row gets the first failing check's code and message, in the order the checks are listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from leitstand.domain.records import SPECS, Quality, RecordKind

MAX_STATE_LENGTH = 64


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    """Limits on what is stored: timestamps outside [now - max_past, now + max_future] are quarantined."""

    max_past: timedelta = timedelta(days=7)
    max_future: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class AssetCatalog:
    """The assets and (asset, signal) pairs a tenant has declared; records must name one of them."""

    asset_ids: frozenset[str]
    signals: frozenset[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Check:
    code: str
    outcome: str  # dead_letter | quarantine
    mask: pa.Array  # true where the record fails
    message: str


def run_checks(
    kind: RecordKind,
    table: pa.Table,
    tenant: str,
    catalog: AssetCatalog,
    policy: IngestPolicy,
    now: datetime,
    only_assets: frozenset[str] | None = None,
) -> list[Check]:
    """All checks that at least one record fails, in priority order. `only_assets` limits a sender
    (a gateway) to the assets of its site."""
    checks: list[Check] = []

    def add(code: str, outcome: str, mask: pa.Array | pa.ChunkedArray, message: str) -> None:
        # A null (from a missing field) fails only the missing-field checks, which come first.
        mask = pc.fill_null(mask, False)
        if isinstance(mask, pa.ChunkedArray):
            mask = mask.combine_chunks()
        if pc.any(mask).as_py():
            checks.append(Check(code, outcome, mask, message))

    for name in SPECS[kind].required:
        add("missing_field", "dead_letter", pc.is_null(table[name]), f"field {name!r} is required")
    asset_ids = table["asset_id"]
    tenants = table["tenant"]
    add(
        "tenant_mismatch",
        "dead_letter",
        pc.not_equal(tenants, pa.scalar(tenant)),
        f"record names another tenant than the caller's ({tenant!r}); records are stored for the caller only",
    )
    add(
        "unknown_asset",
        "dead_letter",
        pc.and_(pc.is_valid(asset_ids), pc.invert(pc.is_in(asset_ids, value_set=_set(catalog.asset_ids)))),
        "asset is not in the tenant's asset model; import it first (POST /api/v1/assets)",
    )
    if only_assets is not None:
        add(
            "outside_site",
            "dead_letter",
            pc.invert(pc.is_in(asset_ids, value_set=_set(only_assets))),
            "asset is not in the site this gateway may publish for",
        )
    if kind is RecordKind.SAMPLES:
        add(
            "unknown_signal",
            "dead_letter",
            _unknown_signals(table, catalog),
            "signal is not declared on this asset",
        )
        add(
            "non_finite_value",
            "dead_letter",
            pc.invert(pc.is_finite(table["value"])),
            "value is NaN or infinite",
        )
        quality = table["quality"]
        add(
            "invalid_quality",
            "dead_letter",
            pc.invert(pc.is_in(quality, value_set=_set(q.value for q in Quality), skip_nulls=True)),
            "quality must be GOOD, UNCERTAIN or BAD",
        )
    elif kind is RecordKind.STATES:
        length = pc.utf8_length(table["state"])
        add(
            "invalid_state",
            "dead_letter",
            pc.or_(pc.equal(length, 0), pc.greater(length, MAX_STATE_LENGTH)),
            f"state must be a non-empty code of at most {MAX_STATE_LENGTH} characters",
        )
    elif kind is RecordKind.COUNTS:
        produced = table["produced"]
        scrap, rework = pc.fill_null(table["scrap"], 0), pc.fill_null(table["rework"], 0)
        add(
            "invalid_count",
            "dead_letter",
            pc.or_(
                pc.or_(pc.less(produced, 0), pc.or_(pc.less(scrap, 0), pc.less(rework, 0))),
                pc.greater(scrap, pc.subtract(produced, rework)),  # scrap + rework could overflow
            ),
            "counts need scrap >= 0, rework >= 0 and scrap + rework <= produced (produced includes both;"
            " a counter that went back is not an increment: send the units since the last count)",
        )
    ts = table["ts"]
    oldest, newest = now - policy.max_past, now + policy.max_future
    add(
        "too_old",
        "quarantine",
        pc.less(ts, pa.scalar(oldest, ts.type)),
        f"timestamp is older than the accepted {policy.max_past} before now; held in quarantine",
    )
    add(
        "in_future",
        "quarantine",
        pc.greater(ts, pa.scalar(newest, ts.type)),
        f"timestamp is more than {policy.max_future} in the future; held in quarantine",
    )
    return checks


def _set(values: Iterable[str]) -> pa.Array:
    return pa.array(sorted(values), pa.string())


# Up to this many unknown (asset, signal) pairs, one comparison pass per pair is cheapest; beyond it, one
# pass that joins each row's pair into a string key and looks it up.
_PAIRS_PER_PASS = 8
_PAIR_SEPARATOR = "\x1f"  # cannot occur in a declared asset id or signal name (ID_PATTERN)


def _unknown_signals(table: pa.Table, catalog: AssetCatalog) -> pa.Array:
    """True where (asset_id, signal) is not declared; checks each distinct pair once, not each row."""
    pairs = table.select(["asset_id", "signal"]).group_by(["asset_id", "signal"]).aggregate([])
    unknown = [
        (a, s)
        for a, s in zip(pairs["asset_id"].to_pylist(), pairs["signal"].to_pylist(), strict=True)
        if (a, s) not in catalog.signals
    ]
    asset, signal = table["asset_id"], table["signal"]
    if len(unknown) > _PAIRS_PER_PASS:
        # Rows with a null asset or signal get a null key and match nothing; missing_field reports them.
        keys = pc.binary_join_element_wise(asset, signal, _PAIR_SEPARATOR)
        wanted = pa.array([a + _PAIR_SEPARATOR + s for a, s in unknown if a is not None and s is not None])
        return pc.fill_null(pc.is_in(keys, value_set=wanted), False).combine_chunks()
    mask = np.zeros(table.num_rows, dtype=bool)
    for a, s in unknown:
        hit = pc.and_(pc.equal(asset, pa.scalar(a, pa.string())), pc.equal(signal, pa.scalar(s, pa.string())))
        mask |= pc.fill_null(hit, False).to_numpy(zero_copy_only=False)
    return pa.array(mask)


def first_failures(checks: list[Check], rows: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the index of the first failing check (-1 when none) and a boolean 'bad' mask."""
    which = np.full(rows, -1, dtype=np.int32)
    for i in range(len(checks) - 1, -1, -1):
        which[checks[i].mask.to_numpy(zero_copy_only=False)] = i
    return which, which >= 0
