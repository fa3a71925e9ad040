"""Counter-based random numbers: the same (key, counter) always gives the same value, in any window order.

Samples and scrap must not depend on how a time range is cut into windows, so instead of a stateful
generator their randomness is a hash (SplitMix64 finaliser) of a stable key and the sample or unit index.
"""

from __future__ import annotations

import hashlib
from statistics import NormalDist

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def stable_key(seed: int, *parts: str) -> int:
    """A 63-bit key from a seed and names, stable across runs and Python versions (unlike `hash`)."""
    text = "\x1f".join((str(seed), *parts))
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _mix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


def _hash(keys: np.ndarray, counters: np.ndarray, stream: int) -> np.ndarray:
    k = np.asarray(keys, dtype=np.int64).astype(np.uint64)
    c = np.asarray(counters, dtype=np.int64).astype(np.uint64)
    return _mix(k ^ (c * _GOLDEN) ^ np.uint64((stream * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF))


def uniform(keys: np.ndarray, counters: np.ndarray, stream: int = 0) -> np.ndarray:
    """Uniform floats in [0, 1), one per (key, counter) pair; `stream` gives independent sequences."""
    return (_hash(keys, counters, stream) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def normal(keys: np.ndarray, counters: np.ndarray, stream: int = 0) -> np.ndarray:
    """Standard normal floats, one per (key, counter) pair, quantised to 2**16 levels (ample for noise)."""
    return _NORMAL_QUANTILES[(_hash(keys, counters, stream + 1_000_003) >> np.uint64(48)).astype(np.intp)]


# Inverse normal CDF at 2**16 evenly spaced probabilities: a table lookup is far cheaper than Box–Muller.
_NORMAL_QUANTILES = np.array([NormalDist().inv_cdf((i + 0.5) / 65536) for i in range(65536)])
