"""HttpSink against a real HTTP server on loopback that answers with scripted responses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pytest

from leitstand.domain.records import COUNTS, RecordKind
from leitstand.sim import HttpSink, IngestRequestError


@dataclass
class Script:
    """Responses to give, in order, and the requests received."""

    responses: list[tuple[int, dict[str, str], bytes]]
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


class ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        script = self.server.script
        script.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        # The last scripted response repeats for every further request.
        status, headers, payload = (
            script.responses.pop(0) if len(script.responses) > 1 else script.responses[-1]
        )
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


class ScriptedServer(ThreadingHTTPServer):
    script: Script


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    httpd = ScriptedServer(("127.0.0.1", 0), ScriptedHandler)
    httpd.script = Script(responses=[])
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _url(server: ScriptedServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


def _json(status: int, doc: object, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json", **headers}, json.dumps(doc).encode()


def _problem(status: int, doc: object, retry_after: str = "") -> tuple[int, dict[str, str], bytes]:
    extra = {"retry-after": retry_after} if retry_after else {}
    return _json(status, doc, **{"content-type": "application/problem+json", **extra})


COUNTS_BATCH = pa.Table.from_pylist(
    [
        {
            "tenant": None,
            "asset_id": "p01-press-l1-m01",
            "ts": datetime(2026, 3, 2, 6, 1, tzinfo=UTC),
            "product_id": "p01-sedan",
            "produced": 11,
            "scrap": 1,
            "rework": 0,
        },
        {
            "tenant": None,
            "asset_id": "p01-press-l1-m01",
            "ts": datetime(2026, 3, 2, 6, 2, tzinfo=UTC),
            "product_id": "p01-sedan",
            "produced": 12,
            "scrap": 0,
            "rework": 0,
        },
    ],
    schema=COUNTS.schema,
)
ACCEPTED = {
    "kind": "counts",
    "received": 2,
    "accepted": 1,
    "duplicates": 0,
    "dead_lettered": 1,
    "quarantined": 0,
    "errors": [{"index": 1, "code": "unknown_asset", "message": "no such asset", "outcome": "dead_letter"}],
}
OVERLOADED = {"type": "about:blank", "title": "Overloaded", "status": 429, "detail": "ingest queue is full"}


def test_sink_posts_an_arrow_stream_and_waits_out_a_429(server: ScriptedServer) -> None:
    server.script.responses = [
        _problem(429, OVERLOADED, retry_after="2"),
        _json(200, ACCEPTED),
    ]
    waits: list[float] = []

    with HttpSink(_url(server), "secret-token", sleep=waits.append) as sink:
        result = sink.send("acme", RecordKind.COUNTS, COUNTS_BATCH)

    assert waits == [2.0]
    assert len(server.script.requests) == 2
    path, headers, body = server.script.requests[-1]
    assert path == "/api/v1/ingest/counts"
    assert headers["authorization"] == "Bearer secret-token"
    assert headers["content-type"] == "application/vnd.apache.arrow.stream"
    assert pa.ipc.open_stream(body).read_all().equals(COUNTS_BATCH)
    assert (result.kind, result.received, result.accepted) == (RecordKind.COUNTS, 2, 1)
    assert (result.duplicates, result.dead_lettered, result.quarantined) == (0, 1, 0)
    assert [(e.index, e.code, e.outcome) for e in result.errors] == [(1, "unknown_asset", "dead_letter")]


def test_sink_raises_with_the_problem_detail_on_a_client_error(server: ScriptedServer) -> None:
    problem = {"title": "Invalid input", "status": 422, "detail": "column 'produced' is missing"}
    server.script.responses = [_problem(422, problem)]

    sink = HttpSink(_url(server), "secret-token", sleep=lambda _: None)
    with sink, pytest.raises(IngestRequestError, match="column 'produced' is missing") as raised:
        sink.send("acme", RecordKind.COUNTS, COUNTS_BATCH)

    assert raised.value.status == 422
    assert len(server.script.requests) == 1


def test_sink_gives_up_after_a_bounded_number_of_429s(server: ScriptedServer) -> None:
    server.script.responses = [_problem(429, OVERLOADED, retry_after="0")]
    waits: list[float] = []

    sink = HttpSink(_url(server), "secret-token", max_attempts=3, sleep=waits.append)
    with sink, pytest.raises(IngestRequestError, match="ingest queue is full") as raised:
        sink.send("acme", RecordKind.COUNTS, COUNTS_BATCH)

    assert raised.value.status == 429
    assert len(server.script.requests) == 3
    assert waits == [0.0, 0.0]
