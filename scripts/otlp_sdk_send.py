#!/usr/bin/env python3
"""Sends spans with known durations to Hindsight through the real OpenTelemetry Python SDK
and its OTLP/HTTP protobuf exporter; used by `cargo test --test http otlp_sdk`.

Usage: otlp_sdk_send.py ENDPOINT TOKEN SERVICE

Sends 200 server spans of 1..200 ms (scrambled), of which those of 50, 100, 150 and 200 ms
end with status ERROR and those of 25, 75, 125 and 175 ms carry
http.response.status_code=503, plus 20 client spans (which Hindsight must not count), in two
export requests. Exits non-zero when an export is not acknowledged.
"""

import sys
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode


def main() -> int:
    endpoint, token, service = sys.argv[1:4]
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("hindsight-otlp-test")

    end = time.time_ns() - 2_000_000_000
    for i in range(200):
        ms = (i * 7919) % 200 + 1
        span = tracer.start_span(
            f"GET /items/{ms}", kind=SpanKind.SERVER, start_time=end - ms * 1_000_000
        )
        if ms % 50 == 0:
            span.set_status(Status(StatusCode.ERROR, "failed"))
        elif ms % 50 == 25:
            span.set_attribute("http.response.status_code", 503)
        else:
            span.set_attribute("http.response.status_code", 200)
        span.end(end_time=end)
    for _ in range(20):
        span = tracer.start_span("GET upstream", kind=SpanKind.CLIENT, start_time=end - 9_000_000_000)
        span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)

    spans = memory.get_finished_spans()
    exporter = OTLPSpanExporter(
        endpoint=endpoint, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    half = len(spans) // 2
    for batch in (spans[:half], spans[half:]):
        result = exporter.export(batch)
        if result is not SpanExportResult.SUCCESS:
            print(f"export failed: {result}", file=sys.stderr)
            return 1
    exporter.shutdown()
    print(f"exported {len(spans)} spans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
