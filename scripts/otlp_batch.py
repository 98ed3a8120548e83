#!/usr/bin/env python3
"""Writes one OTLP ExportTraceServiceRequest (protobuf) of N server spans for SERVICE to OUT,
for scripts/otlp_load.sh: latencies mostly 2-60 ms with a slow tail, about 3% with status
ERROR, all ending now (the load run must finish within the collector's time window).

Usage: otlp_batch.py N SERVICE OUT   (needs opentelemetry-proto, e.g. from the SDK venv)
"""

import random
import sys
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


def main() -> int:
    n, service, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    rng = random.Random(42)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    scope = rs.scope_spans.add()
    scope.scope.name = "otlp-load"
    end = time.time_ns()
    for i in range(n):
        r = rng.random()
        ms = 2 + rng.random() * 58 if r < 0.90 else (60 + rng.random() * 440 if r < 0.99 else 500 + rng.random() * 2000)
        span = scope.spans.add()
        span.trace_id = rng.randbytes(16)
        span.span_id = rng.randbytes(8)
        span.name = "GET /api/items/{id}"
        span.kind = Span.SPAN_KIND_SERVER
        span.start_time_unix_nano = end - int(ms * 1_000_000)
        span.end_time_unix_nano = end
        code = 500 if rng.random() < 0.03 else 200
        span.attributes.append(KeyValue(key="http.request.method", value=AnyValue(string_value="GET")))
        span.attributes.append(KeyValue(key="http.response.status_code", value=AnyValue(int_value=code)))
        if code >= 500:
            span.status.code = Status.STATUS_CODE_ERROR
    with open(out, "wb") as f:
        f.write(req.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
