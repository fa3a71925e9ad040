"""A RecordSink that posts batches to a remote Leitstand's HTTP ingest endpoint as Arrow IPC streams."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx
import pyarrow as pa

from leitstand.domain.errors import LeitstandError
from leitstand.domain.records import RecordKind
from leitstand.ingest.sink import IngestResult, RecordError

ARROW_STREAM = "application/vnd.apache.arrow.stream"


class IngestRequestError(RuntimeError, LeitstandError):
    """The ingest endpoint refused a batch; `status` is the HTTP status, `detail` the server's explanation."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"ingest failed with HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class HttpSink:
    """Posts each batch to `{base_url}/api/v1/ingest/{kind}` and waits out 429 responses (bounded)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 30,
        max_attempts: int = 20,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"authorization": f"Bearer {token}", "accept": "application/json"},
            timeout=timeout,
        )
        self._max_attempts = max_attempts
        self._sleep = sleep

    def send(self, tenant: str, kind: RecordKind, records: pa.Table) -> IngestResult:
        """Send one batch; returns once the server stored it. The server takes the tenant from the token."""
        body = _ipc_stream(records)
        attempt = 1
        while True:
            response = self._client.post(
                f"/api/v1/ingest/{kind.value}", content=body, headers={"content-type": ARROW_STREAM}
            )
            if response.status_code != 429 or attempt >= self._max_attempts:
                return _result(kind, response)
            self._sleep(_retry_after_s(response))
            attempt += 1

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpSink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _ipc_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def _retry_after_s(response: httpx.Response) -> float:
    """Seconds to wait from Retry-After (seconds or an HTTP date); 1 s if missing or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return 1.0
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return 1.0


def _result(kind: RecordKind, response: httpx.Response) -> IngestResult:
    if not response.is_success:
        raise IngestRequestError(response.status_code, _detail(response))
    doc: dict[str, Any] = response.json()
    return IngestResult(
        kind=RecordKind(doc.get("kind", kind.value)),
        received=int(doc["received"]),
        accepted=int(doc["accepted"]),
        duplicates=int(doc["duplicates"]),
        dead_lettered=int(doc["dead_lettered"]),
        quarantined=int(doc["quarantined"]),
        errors=[
            RecordError(
                index=int(e["index"]),
                code=str(e["code"]),
                message=str(e["message"]),
                outcome=str(e.get("outcome", "dead_letter")),
            )
            for e in doc.get("errors", [])
        ],
    )


def _detail(response: httpx.Response) -> str:
    """The problem+json `detail` (or `title`), else the start of the body."""
    try:
        doc = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(doc, dict):
        return str(doc.get("detail") or doc.get("title") or doc)
    return str(doc)
