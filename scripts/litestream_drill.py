#!/usr/bin/env python3
"""Recovery drill: Hindsight under Litestream, the machine lost, the database restored.

Runs a built hindsight binary under `litestream replicate -exec` (replicating the database to a
file replica in the same temporary folder), lets writer threads declare incidents and add
timeline entries through the JSON API, then kills Litestream and Hindsight with SIGKILL at
once, deletes the database with its -wal and -shm files, runs `litestream restore`, checks
`PRAGMA integrity_check`, starts Hindsight on the restored file and looks up every
acknowledged write through the API.

Passes when every write acknowledged more than the sync interval (plus Litestream's 100 ms
monitor interval and a grace for one sync to finish, 0.5 s by default) before the kill is
present (newer ones may be lost: that is the recovery point), the WAL kept being checkpointed,
the restored database is intact and Hindsight serves it. Prints writes acknowledged, lost
(also those lost although older than the bare sync interval) and the recovery point.

Usage: scripts/litestream_drill.py --litestream PATH [--duration S] [--writers N]
                                   [--rate W] [--sync-interval S] [BINARY]
The writers are paced to W writes per second in all (default 100, a hundred times what a busy
incident tracker sees; 0 = as fast as the server answers). Unpaced on a loaded machine,
Litestream's sync itself can fall behind the interval: that is a throughput limit to know
about, not the property checked here.
Exits 0 on a pass, 1 on a failure, 2 when it cannot run. Only 127.0.0.1 is contacted.
Python 3 standard library only; `scripts/litestream-drill.sh` installs Litestream and runs it.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
PASSWORD = "litestream-drill-password"
REQUEST_TIMEOUT = 5.0
MONITOR_MS = 100


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, token=None):
    """One request on a fresh connection: (status, parsed JSON or None)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
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
            return response.status, (json.loads(raw) if raw else None)
        except ValueError:
            return response.status, None
    finally:
        conn.close()


def wait_healthy(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before serving")
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"not healthy within {timeout:.0f} s")


def cli(binary, env, *args, stdin=None):
    result = subprocess.run([binary, *args], env=env, input=stdin, capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"hindsight {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


class Ledger:
    """Every acknowledged write with the moment its answer arrived."""

    def __init__(self):
        self.lock = threading.Lock()
        self.incidents = []  # (acked_at, id, title)
        self.entries = []  # (acked_at, incident id, entry id, text)
        self.failed = 0


def writer(worker, port, token, ledger, stop, every):
    seq = 0
    next_at = time.monotonic()
    while not stop.is_set():
        # Paced: each writer sends one write every `every` seconds (0: as fast as it can).
        next_at += every
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        seq += 1
        try:
            with ledger.lock:
                target = ledger.incidents[-1] if ledger.incidents and seq % 3 else None
            if target is None:
                title = f"drill w{worker} #{seq}"
                status, body = request(port, "POST", "/api/v1/incidents", token=token, body={
                    "title": title, "severity": "sev3", "service": "checkout",
                    "category": "deploy"})
                if status == 201:
                    with ledger.lock:
                        ledger.incidents.append((time.monotonic(), body["id"], title))
                    continue
            else:
                text = f"drill w{worker} entry #{seq}"
                status, body = request(port, "POST", f"/api/v1/incidents/{target[1]}/timeline",
                                       token=token, body={"kind": "action", "body": text})
                if 200 <= status < 300:
                    with ledger.lock:
                        ledger.entries.append((time.monotonic(), target[1], body["id"], text))
                    continue
            with ledger.lock:
                ledger.failed += 1
        except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
            # The kill: whatever was in flight was never acknowledged.
            with ledger.lock:
                ledger.failed += 1
            if stop.is_set():
                return
            time.sleep(0.01)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", nargs="?", default="/var/tmp/hindsight-target/release/hindsight")
    parser.add_argument("--litestream", required=True, help="the litestream binary")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of writing")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100.0,
                        help="writes per second in all (0: as fast as the server answers)")
    parser.add_argument("--sync-interval", type=float, default=1.0,
                        help="Litestream's sync interval in seconds")
    parser.add_argument("--grace", type=float, default=0.5,
                        help="seconds allowed on top of the intervals for one sync to finish")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        print(f"litestream-drill: no hindsight binary at {args.binary}", file=sys.stderr)
        return 2

    workdir = tempfile.mkdtemp(prefix="hs-litestream-drill-", dir="/var/tmp")
    db_path = os.path.join(workdir, "hindsight.db")
    replica = os.path.join(workdir, "replica")
    config = os.path.join(workdir, "litestream.yml")
    sync_ms = int(args.sync_interval * 1000)
    with open(config, "w") as f:
        # The configuration the README shows. Litestream 0.5 works in two steps: every
        # monitor-interval it turns new WAL frames into a local LTX file, every sync-interval it
        # ships those to the replica; a write is safe once both have run, so the bound checked
        # below is their sum.
        f.write(f"dbs:\n  - path: {db_path}\n    monitor-interval: {MONITOR_MS}ms\n"
                f"    replica:\n      type: file\n"
                f"      path: {replica}\n      sync-interval: {sync_ms}ms\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HINDSIGHT_")}
    env.update({
        "HINDSIGHT_DATABASE_URL": f"sqlite://{db_path}",
        "HINDSIGHT_BIND": f"{HOST}:{port}",
        "HINDSIGHT_LOG_FORMAT": "json",
        "RUST_LOG": "warn",
    })
    ledger = Ledger()
    stop = threading.Event()
    replicating = None
    server = None
    ok = False
    try:
        # Setup before replication starts: the first snapshot then holds the admin and token.
        cli(args.binary, env, "user", "create", "--email", "drill@example.com", "--name",
            "Drill", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
        token = cli(args.binary, env, "token", "create", "--user", "drill@example.com",
                    "--name", "drill", "--scope", "write").strip().splitlines()[-1]

        log = open(os.path.join(workdir, "replicate.log"), "wb")
        # Its own process group, so one signal kills Litestream and Hindsight together.
        replicating = subprocess.Popen(
            [args.litestream, "replicate", "-config", config, "-exec", f"{args.binary} serve"],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        wait_healthy(port, replicating)
        status, body = request(port, "POST", "/api/v1/services", {"name": "checkout"}, token)
        if status != 201:
            raise RuntimeError(f"POST /api/v1/services answered {status}: {body}")

        pace = f"{args.rate:g} writes/s" if args.rate > 0 else "unpaced"
        print(f"litestream-drill: {args.writers} writers ({pace}) for {args.duration:.0f} s, "
              f"sync interval {args.sync_interval:g} s, folder {workdir}")
        every = args.writers / args.rate if args.rate > 0 else 0.0
        threads = [threading.Thread(target=writer, args=(w, port, token, ledger, stop, every),
                                    daemon=True) for w in range(args.writers)]
        for t in threads:
            t.start()
        # Checkpoints keep working under Litestream: the log's frame count (mxFrame in the
        # -shm index header) must keep falling back to zero, not only grow. The -wal file keeps
        # its largest size (SQLite reuses it from the start), so its size would not tell.
        frames = []
        until = time.monotonic() + args.duration
        while time.monotonic() < until:
            try:
                with open(db_path + "-shm", "rb") as shm:
                    frames.append(struct.unpack_from("<I", shm.read(20), 16)[0])
            except (OSError, struct.error):
                pass
            time.sleep(0.05)
        # The machine is lost: everything dies at once, mid-write.
        killed_at = time.monotonic()
        os.killpg(replicating.pid, signal.SIGKILL)
        replicating.wait()
        stop.set()
        for t in threads:
            t.join(timeout=10)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db_path + suffix):
                os.remove(db_path + suffix)

        restore_started = time.monotonic()
        restored = subprocess.run([args.litestream, "restore", "-config", config, db_path],
                                  capture_output=True, text=True, timeout=120)
        restore_s = time.monotonic() - restore_started
        if restored.returncode != 0:
            raise RuntimeError(f"litestream restore failed: {restored.stderr.strip()}")
        with sqlite3.connect(db_path) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            titles = dict(conn.execute("SELECT id, title FROM incidents"))
            bodies = {i: (inc, b) for i, inc, b in
                      conn.execute("SELECT id, incident_id, body FROM timeline_entries")}

        lost = [(a, f"incident {title}") for a, i, title in ledger.incidents
                if titles.get(i) != title]
        lost += [(a, f"entry {text}") for a, inc, i, text in ledger.entries
                 if bodies.get(i) != (inc, text)]

        # Hindsight starts on the restored file and serves what it holds.
        log = open(os.path.join(workdir, "restored.log"), "wb")
        server = subprocess.Popen([args.binary, "serve"], env=env, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log)
        log.close()
        wait_healthy(port, server)
        kept = [(i, t) for _, i, t in ledger.incidents if titles.get(i) == t]
        for incident_id, title in kept[:: max(1, len(kept) // 20)]:
            status, body = request(port, "GET", f"/api/v1/incidents/{incident_id}", token=token)
            if status != 200 or (body or {}).get("title") != title:
                raise RuntimeError(f"the restored server answers {status} for {title}")

        acked = len(ledger.incidents) + len(ledger.entries)
        bound = args.sync_interval + MONITOR_MS / 1000 + args.grace
        old_enough = [a for a, *_ in ledger.incidents + ledger.entries if killed_at - a > bound]
        lost_old = [what for a, what in lost if killed_at - a > bound]
        newest_lost = max((killed_at - a for a, _ in lost), default=0.0)
        # The recovery point: how far before the kill the oldest lost write was acknowledged
        # (0 when nothing was lost).
        print(f"  writes acknowledged:             {acked} "
              f"({len(ledger.incidents)} incidents, {len(ledger.entries)} timeline entries, "
              f"{acked / args.duration:.0f}/s)")
        strict = [a for a, _ in lost if killed_at - a > args.sync_interval]
        print(f"  acknowledged > {bound:g} s before the kill (sync {args.sync_interval:g} s + "
              f"monitor {MONITOR_MS / 1000:g} s + grace {args.grace:g} s): {len(old_enough)}, "
              f"lost: {len(lost_old)}")
        print(f"  lost although acknowledged > the sync interval ({args.sync_interval:g} s) "
              f"before the kill: {len(strict)}")
        print(f"  lost in all:                     {len(lost)} (acknowledged in the last "
              f"{newest_lost:.2f} s before the kill)")
        print(f"  recovery point:                  {newest_lost:.2f} s of writes "
              f"(sync interval {args.sync_interval:g} s)")
        restarts = sum(1 for a, b in zip(frames, frames[1:]) if b < a)
        if frames:
            print(f"  WAL during the run:              restarted {restarts} times after "
                  f"checkpoints, at most {max(frames)} frames "
                  f"({max(frames) * 4096 / 2**20:.0f} MiB); database "
                  f"{os.path.getsize(db_path) / 2**20:.1f} MiB restored")
        print(f"  restore took:                    {restore_s:.2f} s; "
              f"integrity_check: {integrity}")
        for what in lost_old[:10]:
            print(f"  LOST (older than the bound): {what}")
        # A run long enough to fill the log must see it restart: otherwise checkpoints starve.
        starved = bool(frames) and max(frames) > 2000 and restarts == 0
        if starved:
            print("  WAL never restarted: checkpoints are starved")
        ok = not lost_old and integrity == "ok" and acked > 0 and not starved
        print("litestream-drill: " + ("PASS" if ok else "FAIL"))
    except Exception as e:  # report and clean up whatever went wrong
        print(f"litestream-drill: cannot run: {e}", file=sys.stderr)
        return 2
    finally:
        stop.set()
        for proc in (replicating, server):
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL) if proc is replicating else proc.kill()
                except ProcessLookupError:
                    pass
                proc.wait()
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"litestream-drill: logs and files kept in {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
