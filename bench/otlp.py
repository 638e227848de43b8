"""A local OTLP/HTTP receiver: what the real exporters send, decoded from protobuf.

The benchmark exports to it (so telemetry costs what it would with a
collector next door), and the trace tests read what the workers exported
from it. It answers ``POST /v1/traces`` and ``POST /v1/metrics`` the way a
collector does (200 and an empty protobuf response), on a free loopback port,
from a thread of the calling process. Needs ``opentelemetry-proto`` (the dev
extra, or any OTLP exporter, brings it).
"""

from __future__ import annotations

import gzip
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

TRACES, METRICS = "/v1/traces", "/v1/metrics"


def value_of(v: AnyValue) -> Any:
    """An OTLP attribute value as a Python value (scalars and arrays of them)."""
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value_of(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


@dataclass(frozen=True)
class Span:
    """One received span, with ids as hex (as in a ``traceparent``)."""

    trace_id: str
    span_id: str
    parent_id: str  # "" for a root
    name: str
    kind: int  # 1 internal, 2 server, 3 client, 4 producer, 5 consumer
    start_ns: int
    end_ns: int
    status: int  # 0 unset, 1 ok, 2 error
    status_message: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]


@dataclass(frozen=True)
class Point:
    """One received number data point (sum or gauge), or a histogram's count and sum."""

    metric: str
    attributes: dict[str, Any]
    value: float
    resource: dict[str, Any]


@dataclass
class Received:
    spans: list[Span] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=lambda: {TRACES: 0, METRICS: 0})
    bytes: int = 0


def _spans(body: bytes) -> list[Span]:
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(body)
    out = []
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            out += [
                Span(
                    trace_id=s.trace_id.hex(),
                    span_id=s.span_id.hex(),
                    parent_id=s.parent_span_id.hex(),
                    name=s.name,
                    kind=s.kind,
                    start_ns=s.start_time_unix_nano,
                    end_ns=s.end_time_unix_nano,
                    status=s.status.code,
                    status_message=s.status.message,
                    attributes=attributes(s.attributes),
                    events=[(e.name, attributes(e.attributes)) for e in s.events],
                    resource=resource,
                )
                for s in ss.spans
            ]
    return out


def _count_spans(body: bytes) -> int:
    """Spans in a request, without building records of them (the benchmark's case)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(body)
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def _points(body: bytes) -> list[Point]:
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    request.ParseFromString(body)
    out = []
    for rm in request.resource_metrics:
        resource = attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                for p in getattr(m, kind).data_points if kind else ():
                    if kind == "histogram":
                        value = float(p.count)
                    else:
                        value = float(p.as_double if p.HasField("as_double") else p.as_int)
                    out.append(Point(m.name, attributes(p.attributes), value, resource))
    return out


class OtlpSink:
    """Receives OTLP/HTTP protobuf on ``endpoint``; ``keep=False`` only counts (for timing)."""

    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self.received = Received()
        self.span_count = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL, for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OtlpSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OtlpSink:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self.received.spans)

    def points(self, metric: str) -> list[Point]:
        with self._lock:
            return [p for p in self.received.points if p.metric == metric]

    def take(self, path: str, body: bytes) -> None:
        spans = _spans(body) if path == TRACES and self.keep else []
        points = _points(body) if path == METRICS and self.keep else []
        count = len(spans) if self.keep else _count_spans(body) if path == TRACES else 0
        with self._lock:
            self.received.requests[path] += 1
            self.received.bytes += len(body)
            self.span_count += count
            self.received.spans += spans
            self.received.points += points

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as a collector does: the exporters' sessions reuse one
            # connection, rather than connecting anew for every batch they post.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path not in (TRACES, METRICS):
                    self.send_error(404)
                    return
                sink.take(self.path, body)
                reply = (
                    trace_service_pb2.ExportTraceServiceResponse()
                    if self.path == TRACES
                    else metrics_service_pb2.ExportMetricsServiceResponse()
                ).SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the exporters post every few hundred ms

        return Handler
