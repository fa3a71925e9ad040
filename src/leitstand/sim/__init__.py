"""The plant simulator: a fictional carmaker's asset model and seeded, reproducible machine data for it.

`enterprise_model()` builds the asset model; `Simulator` turns any asset model into state, count and sample
records (one window, a backfill, or live), and its `ground_truth` knows exactly what it generated.
"""

from leitstand.sim.enterprise import enterprise_model
from leitstand.sim.faults import Fault, FaultRates
from leitstand.sim.feed import Simulator
from leitstand.sim.ground_truth import GroundTruth, StateInterval
from leitstand.sim.http_sink import HttpSink, IngestRequestError

__all__ = [
    "Fault",
    "FaultRates",
    "GroundTruth",
    "HttpSink",
    "IngestRequestError",
    "Simulator",
    "StateInterval",
    "enterprise_model",
]
