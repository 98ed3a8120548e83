#!/usr/bin/env python3
"""Crash durability check: every write Hindsight acknowledged survives a SIGKILL.

Runs a built hindsight binary (it builds nothing) on a fresh database in a temporary folder,
creates an admin and a write token with the command line, then lets several writer threads
post incidents and timeline entries through the JSON API while the server is killed with
SIGKILL several times and restarted on the same port. Every write answered with a 2xx is
recorded. Afterwards the server is started once more and each acknowledged write is looked up
through the API, and `sqlite3 DB 'PRAGMA integrity_check'` must say ok.

Usage: scripts/durability.py [--duration S] [--kills N] [--writers N] [BINARY]
Exits 0 when nothing acknowledged is missing and the database is intact, 1 otherwise,
2 when it cannot run. Only 127.0.0.1 is contacted. Python 3 standard library only.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

DEFAULT_BINARY = "/var/tmp/hindsight-target/release/hindsight"
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 5.0
READY_TIMEOUT = 15.0
PASSWORD = "durability-check-password"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """One hindsight process at a time on a fixed port, logging to a file."""

    def __init__(self, binary, env, log_path, port):
        self.binary, self.env, self.log_path, self.port = binary, env, log_path, port
        self.proc = None
        self.ready_times = []

    def start(self):
        deadline = time.monotonic() + READY_TIMEOUT
        started = time.monotonic()
        while True:
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [self.binary], env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
            log.close()
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break  # exited (e.g. the port was not free yet): try again
                if healthy(self.port):
                    self.ready_times.append(time.monotonic() - started)
                    return
                time.sleep(0.02)
            if time.monotonic() >= deadline:
                self.kill()
                raise RuntimeError(f"server not ready within {READY_TIMEOUT:.0f}s; see {self.log_path}")
            time.sleep(0.1)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        """Graceful stop (SIGTERM), SIGKILL after 10 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def healthy(port):
    try:
        status, _ = request(port, "GET", "/healthz", timeout=1.0)
        return status == 200
    except (OSError, http.client.HTTPException):
        return False


def request(port, method, path, body=None, token=None, timeout=REQUEST_TIMEOUT):
    """One request on a fresh connection: (status, parsed JSON or None). Raises OSError or
    http.client.HTTPException when the connection fails."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return response.status, parsed
    finally:
        conn.close()


def cli(binary, env, *args, stdin=None):
    result = subprocess.run(
        [binary, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"hindsight {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


class Ledger:
    """What the writers did, shared between threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = 0
        self.connection_errors = 0
        self.http_errors = {}
        self.incidents = []  # (id, number, title) acknowledged
        self.entries = []  # (incident id, entry id, body) acknowledged

    def note_failure(self, status=None):
        with self.lock:
            if status is None:
                self.connection_errors += 1
            else:
                self.http_errors[status] = self.http_errors.get(status, 0) + 1


def writer(worker, port, token, ledger, stop, seed):
    rng = random.Random(seed)
    seq = 0
    while not stop.is_set():
        seq += 1
        with ledger.lock:
            ledger.attempted += 1
            target = rng.choice(ledger.incidents) if ledger.incidents and rng.random() < 0.7 else None
        try:
            if target is None:
                title = f"durability w{worker} #{seq}"
                status, body = request(port, "POST", "/api/v1/incidents", token=token, body={
                    "title": title, "severity": rng.choice(["sev1", "sev2", "sev3", "sev4"]),
                    "service": "checkout", "category": "deploy",
                })
                if 200 <= status < 300:
                    with ledger.lock:
                        ledger.incidents.append((body["id"], body["number"], title))
                    continue
            else:
                text = f"durability w{worker} entry #{seq}"
                status, body = request(port, "POST", f"/api/v1/incidents/{target[0]}/timeline",
                                       token=token, body={"kind": "action", "body": text})
                if 200 <= status < 300:
                    with ledger.lock:
                        ledger.entries.append((target[0], body["id"], text))
                    continue
            ledger.note_failure(status)
        except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
            # Refused, reset or cut off mid-answer: expected while the server is being killed.
            ledger.note_failure()
            time.sleep(0.02)


def verify(port, token, ledger):
    """Acknowledged writes that cannot be found: list of descriptions."""
    entries_by_incident = {}
    for incident_id, entry_id, text in ledger.entries:
        entries_by_incident.setdefault(incident_id, []).append((entry_id, text))
    missing = []
    for incident_id, number, title in ledger.incidents:
        status, body = request(port, "GET", f"/api/v1/incidents/{incident_id}", token=token)
        if status != 200 or body.get("title") != title or body.get("number") != number:
            missing.append(f"incident {number} ({incident_id}): GET answered {status}")
            missing.extend(f"entry {e} of {number}" for e, _ in entries_by_incident.get(incident_id, []))
            continue
        stored = {e.get("id"): e.get("body") for e in body.get("timeline", [])}
        for entry_id, text in entries_by_incident.get(incident_id, []):
            if stored.get(entry_id) != text:
                missing.append(f"timeline entry {entry_id} of {number}")
    return missing


def sqlite(db_path, sql):
    result = subprocess.run(["sqlite3", db_path, sql], capture_output=True, text=True, timeout=120)
    return (result.stdout.strip() or result.stderr.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", nargs="?", default=DEFAULT_BINARY, help=f"default {DEFAULT_BINARY}")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of writing (default 20)")
    parser.add_argument("--kills", type=int, default=6, help="SIGKILLs during the run (default 6)")
    parser.add_argument("--writers", type=int, default=4, help="writer threads (default 4)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    if not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
        print(f"durability: no hindsight binary at {args.binary}; build one with "
              "`cargo build --release`", file=sys.stderr)
        return 2
    if shutil.which("sqlite3") is None:
        print("durability: sqlite3 is missing (Debian package sqlite3)", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)

    workdir = tempfile.mkdtemp(prefix="hindsight-durability-")
    db_path = os.path.join(workdir, "hindsight.db")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HINDSIGHT_")}
    env.update({
        "HINDSIGHT_DATABASE_URL": f"sqlite://{db_path}",
        "HINDSIGHT_BIND": f"{HOST}:{port}",
        "HINDSIGHT_BASE_URL": f"http://{HOST}:{port}",
        "HINDSIGHT_LOG_FORMAT": "json",
        "RUST_LOG": "warn",
    })
    server = Server(args.binary, env, os.path.join(workdir, "server.log"), port)
    ledger = Ledger()
    stop = threading.Event()
    threads = []
    ok = False
    try:
        cli(args.binary, env, "user", "create", "--email", "admin@example.com", "--name", "Admin",
            "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
        token = cli(args.binary, env, "token", "create", "--user", "admin@example.com",
                    "--name", "durability", "--scope", "write").strip().splitlines()[-1]
        server.start()
        status, body = request(port, "POST", "/api/v1/services", {"name": "checkout"}, token)
        if status != 201:
            raise RuntimeError(f"POST /api/v1/services answered {status}: {body}")

        print(f"durability: {args.writers} writers, {args.kills} SIGKILLs, {args.duration:.0f} s, "
              f"seed {seed}, port {port}, folder {workdir}")
        began = time.monotonic()
        for w in range(args.writers):
            t = threading.Thread(target=writer, args=(w, port, token, ledger, stop, seed * 100 + w),
                                 daemon=True)
            t.start()
            threads.append(t)
        # Spread the kills over the run: random gaps of 0.5-2 s, the rest of the time plain writing.
        for k in range(args.kills):
            time.sleep(rng.uniform(0.5, 2.0))
            server.kill()
            print(f"  kill {k + 1}/{args.kills} at {time.monotonic() - began:5.1f} s "
                  f"({len(ledger.incidents)} incidents, {len(ledger.entries)} entries acknowledged)")
            server.start()
        remaining = args.duration - (time.monotonic() - began)
        if remaining > 0:
            time.sleep(remaining)
        # The last word is a crash too: kill while the writers are still going.
        server.kill()
        stop.set()
        for t in threads:
            t.join(timeout=REQUEST_TIMEOUT + 2)
        elapsed = time.monotonic() - began

        server.start()  # clean restart on the crashed database
        missing = verify(port, token, ledger)
        server.stop()
        integrity = sqlite(db_path, "PRAGMA integrity_check")
        stored_incidents = sqlite(db_path, "SELECT COUNT(*) FROM incidents")
        stored_entries = sqlite(db_path, "SELECT COUNT(*) FROM timeline_entries WHERE kind = 'action'")

        acknowledged = len(ledger.incidents) + len(ledger.entries)
        failed_http = sum(ledger.http_errors.values())
        restarts = server.ready_times[1:]
        print()
        print(f"durability after {elapsed:.1f} s of writing, {args.kills + 1} SIGKILLs:")
        print(f"  writes attempted                 {ledger.attempted:7d}")
        print(f"  acknowledged (2xx)               {acknowledged:7d}  "
              f"({len(ledger.incidents)} incidents, {len(ledger.entries)} timeline entries)")
        print(f"  failed by connection errors      {ledger.connection_errors:7d}  (expected during kills)")
        print(f"  failed with an HTTP error status {failed_http:7d}  {ledger.http_errors or ''}")
        try:
            extra = (int(stored_incidents) - len(ledger.incidents), int(stored_entries) - len(ledger.entries))
            print(f"  committed without an answer      {sum(extra):7d}  ({extra[0]} incidents, {extra[1]} "
                  "entries in flight at a kill: stored, but the client saw the connection drop)")
        except ValueError:
            print(f"  stored rows                      incidents {stored_incidents}, entries {stored_entries}")
        if restarts:
            print(f"  restart to healthy               {1000 * sum(restarts) / len(restarts):7.0f} ms mean, "
                  f"{1000 * max(restarts):.0f} ms max")
        print(f"  missing after restart            {len(missing):7d}")
        print(f"  integrity_check                  {integrity:>7}")
        for m in missing[:20]:
            print(f"    missing: {m}")
        ok = not missing and integrity == "ok" and acknowledged > 0
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    except (RuntimeError, OSError, http.client.HTTPException, subprocess.SubprocessError) as e:
        print(f"durability: {e}", file=sys.stderr)
        return 2
    finally:
        stop.set()
        server.kill()
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir} (database and server.log)")


if __name__ == "__main__":
    sys.exit(main())
