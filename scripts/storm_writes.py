#!/usr/bin/env python3
"""The write stream of scripts/storm.sh: what an incident storm writes, at a steady rate.

Every 1/RATE seconds one write is due, in a repeating mix of ten: five timeline entries on
the storm incident, one status change on it (identified <-> monitoring), two Alertmanager
deliveries (one firing group, a new alert each time) and two metric-event batches. Writes are
scheduled open-loop (a slow answer does not delay the next write) and sent by a few worker
threads over keep-alive connections; each write's latency is measured from when it was due,
so time spent queued behind a slow one counts. Runs until SIGTERM/SIGINT or DURATION seconds,
then prints one JSON line: counts, errors and p50/p99/max per kind and overall.

Usage: storm_writes.py BASE WRITE_TOKEN INGEST_TOKEN INCIDENT [RATE] [DURATION]
Only loopback addresses are accepted.
"""

import http.client
import json
import queue
import signal
import sys
import threading
import time
import urllib.parse


def percentile(values, q):
    """Nearest rank: the ceil(q*n)-th smallest."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-int(q * 1000) * len(ordered) // 1000))
    return ordered[min(rank, len(ordered)) - 1]


class Writer:
    def __init__(self, base, write_token, ingest_token, incident):
        url = urllib.parse.urlsplit(base)
        if url.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("storm_writes.py: only loopback addresses")
        self.host, self.port = url.hostname, url.port or 80
        self.write_token, self.ingest_token = write_token, ingest_token
        self.incident = incident
        self.local = threading.local()
        self.lock = threading.Lock()
        self.latencies = {}
        self.errors = {}
        self.status_flip = 0
        # (version, status) of the storm incident after the last status write.
        self.known = None
        self.alert_seq = 0

    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self.local.conn = c
        return c

    def request(self, method, path, token, body):
        data = json.dumps(body).encode()
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        }
        for attempt in range(2):
            c = self.conn()
            try:
                c.request(method, path, body=data, headers=headers)
                resp = c.getresponse()
                payload = resp.read()
                return resp.status, payload
            except (http.client.HTTPException, OSError):
                c.close()
                self.local.conn = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def timeline(self, n):
        return self.request(
            "POST",
            f"/api/v1/incidents/{self.incident}/timeline",
            self.write_token,
            {"kind": "note", "body": f"Storm note {n}: still seeing elevated errors on checkout."},
        )

    def status(self, _n):
        # Optimistic concurrency as a client does it: PATCH at the version last seen (the
        # answer of the previous status write), and when other writes moved it on (timeline
        # entries do) retry once on the version the 409 answer carries. Only the first status
        # write reads the incident (whose answer holds its whole long timeline).
        with self.lock:
            known = self.known
        if known is None:
            c_status, payload = self.get_incident()
            if c_status != 200:
                return c_status, payload
            inc = json.loads(payload)
            known = (inc["version"], inc.get("status"))
        version, status = known
        target = "monitoring" if status != "monitoring" else "identified"
        code, payload = self.request(
            "PATCH",
            f"/api/v1/incidents/{self.incident}",
            self.write_token,
            {"version": version, "status": target},
        )
        if code == 409:
            current = json.loads(payload).get("error", {}).get("current", {})
            target = "monitoring" if current.get("status") != "monitoring" else "identified"
            code, payload = self.request(
                "PATCH",
                f"/api/v1/incidents/{self.incident}",
                self.write_token,
                {"version": current.get("version"), "status": target},
            )
        if code == 200:
            answer = json.loads(payload)
            with self.lock:
                self.known = (answer.get("version"), answer.get("status"))
        return code, payload

    def get_incident(self):
        c = self.conn()
        try:
            c.request(
                "GET",
                f"/api/v1/incidents/{self.incident}",
                headers={"Authorization": f"Bearer {self.write_token}"},
            )
            resp = c.getresponse()
            return resp.status, resp.read()
        except (http.client.HTTPException, OSError):
            c.close()
            self.local.conn = None
            raise

    def alertmanager(self, n):
        with self.lock:
            self.alert_seq += 1
            seq = self.alert_seq
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body = {
            "version": "4",
            "groupKey": '{}:{alertname="StormCheckoutErrors"}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "hindsight",
            "groupLabels": {"alertname": "StormCheckoutErrors"},
            "commonLabels": {"alertname": "StormCheckoutErrors", "service": "checkout", "severity": "sev2"},
            "commonAnnotations": {"summary": "Checkout error rate above 5% (storm benchmark)"},
            "externalURL": "http://127.0.0.1:9093",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": "StormCheckoutErrors",
                        "service": "checkout",
                        "severity": "sev2",
                        "instance": f"checkout-{seq}",
                    },
                    "annotations": {"summary": "Checkout error rate above 5% (storm benchmark)"},
                    "startsAt": now,
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://127.0.0.1:9090/graph",
                    "fingerprint": f"{seq:016x}",
                }
            ],
        }
        return self.request("POST", "/api/v1/integrations/alertmanager", self.ingest_token, body)

    def metrics(self, n):
        events = [{"latency_ms": 40 + (k * 7 + n) % 200, "ok": (k + n) % 20 != 0} for k in range(50)]
        return self.request(
            "POST", "/api/v1/metrics/events", self.ingest_token, {"service": "checkout", "events": events}
        )

    MIX = ["timeline", "timeline", "alertmanager", "timeline", "metrics",
           "timeline", "status", "timeline", "alertmanager", "metrics"]

    def run_one(self, n, due):
        kind = self.MIX[n % len(self.MIX)]
        try:
            code, payload = getattr(self, kind)(n)
            ok = 200 <= code < 300
        except Exception as e:  # a refused or dropped connection counts as a failed write
            code, payload, ok = str(e), b"", False
        took = (time.monotonic() - due) * 1000
        with self.lock:
            self.latencies.setdefault(kind, []).append(took)
            if not ok:
                errs = self.errors.setdefault(kind, {})
                errs[str(code)] = errs.get(str(code), 0) + 1
                if len(errs) == 1 and errs[str(code)] == 1:
                    print(f"storm_writes: {kind} answered {code}: {payload[:300]!r}", file=sys.stderr)


def main():
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    base, write_token, ingest_token, incident = sys.argv[1:5]
    rate = float(sys.argv[5]) if len(sys.argv) > 5 else 20.0
    duration = float(sys.argv[6]) if len(sys.argv) > 6 else 1e9
    w = Writer(base, write_token, ingest_token, incident)
    jobs = queue.Queue()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def worker():
        while True:
            job = jobs.get()
            if job is None:
                return
            w.run_one(*job)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    start = time.monotonic()
    n = 0
    while not stop.is_set() and time.monotonic() - start < duration:
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            stop.wait(delay)
            if stop.is_set():
                break
        jobs.put((n, due))
        n += 1
    elapsed = time.monotonic() - start
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join(timeout=35)
    every = [v for vs in w.latencies.values() for v in vs]
    summary = {
        "rate_asked": rate,
        "seconds": round(elapsed, 1),
        "scheduled": n,
        "done": len(every),
        "achieved_per_s": round(len(every) / elapsed, 1) if elapsed else 0,
        "errors": w.errors,
        "p50_ms": round(percentile(every, 0.5) or 0, 1),
        "p99_ms": round(percentile(every, 0.99) or 0, 1),
        "max_ms": round(max(every) if every else 0, 1),
        "by_kind": {
            k: {
                "n": len(v),
                "p50_ms": round(percentile(v, 0.5), 1),
                "p99_ms": round(percentile(v, 0.99), 1),
            }
            for k, v in sorted(w.latencies.items())
        },
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
