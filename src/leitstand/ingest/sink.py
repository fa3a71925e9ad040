"""What a source hands records to: the in-process pipeline or, remotely, the HTTP batch endpoint."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from leitstand.domain.records import RecordKind

if TYPE_CHECKING:
    from leitstand.ingest.conform import Decoded


@dataclass(frozen=True, slots=True)
class RecordError:
    """Why one record (by its index in the request) was dead-lettered or quarantined."""

    index: int
    code: str
    message: str
    outcome: str = "dead_letter"  # or "quarantine"


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one batch: new records stored, duplicates ignored, records rejected and why."""

    kind: RecordKind
    received: int
    accepted: int
    duplicates: int
    dead_lettered: int
    quarantined: int
    errors: list[RecordError] = field(default_factory=list)

    def as_dict(self, max_errors: int = 100) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "quarantined": self.quarantined,
            "errors": [
                {"index": e.index, "code": e.code, "message": e.message, "outcome": e.outcome}
                for e in self.errors[:max_errors]
            ],
            "errors_truncated": len(self.errors) > max_errors,
        }


class RecordSink(Protocol):
    """Accepts a columnar batch of one record kind for one tenant; returns once it is durably stored."""

    def send(self, tenant: str, kind: RecordKind, records: pa.Table) -> IngestResult: ...


class RecordTarget(Protocol):
    """Takes a decoded batch and returns a future that resolves once it is committed (the pipeline);
    raises Overloaded when ingest is full, NotReady when it is not running."""

    def submit(self, tenant: str, kind: RecordKind, decoded: Decoded) -> Future[IngestResult]: ...
