"""`make bench-web`: p95 latency of the status page on a big store. Prints figures; asserts nothing.

Builds (once, cached in --work by scan count and seed) a deterministic store shaped like a long-running
appliance's: --scans scans (portscans with ~3 trigger candidates when attributed, unattributed
portscans, sweeps, a few hundred scans of probe addresses), the contacts behind them, ~300 pool
members, ~2000 probes, capture gaps and a daemon status; attributions, candidate ranks and suspects
come from the store's own `refresh()`. Then `harvestwatch serve` (its defaults: gunicorn, 2 workers
x 4 threads) runs on 127.0.0.1 while a writer keeps the store open and commits a heartbeat every 5 s
like the daemon does, and `wrk` loads each page in turn (a Python load tool if wrk is missing).
Per URL: the latency of one request alone, and alone right after a commit (what the page keeps per
commit must then be computed again: what a lone user's refresh meets), then under load requests/s,
p50/p95/p99 latency, non-2xx answers and whether p95 meets the target; also the store's size, the
build time and the server's RSS. Loopback only; no root needed except to install wrk.
"""
from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import math
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from appliance.config import DEBIAN_POOLS  # noqa: E402
from appliance.detect.scans import network_of  # noqa: E402
from appliance.probe.send import PROBE_KINDS, PROBE_PORTS  # noqa: E402
from appliance.store.db import MIGRATIONS, Store  # noqa: E402
from appliance.synthlog import SCAN_PORTS_TCP, SCAN_PORTS_UDP  # noqa: E402

URLS = ("/", "/servers", "/scans", "/scanners", "/probes", "/api/scans")
TARGET_P95_MS = 100.0
BUILD_VERSION = 3           # bump when the generated data changes shape: old caches are rebuilt
LAN = "2001:db8:1:1"        # the appliance's /64 (documentation prefix, like the lab and synthlog)
DAY = 86400.0
SCANS_PER_DAY = 800         # the span of the data grows with --scans
PRIVACY_LIFETIME = 1200.0   # a new temporary address every 20 min (the config's default)
LOOKBACK = 300.0            # detect.lookback: candidates are packets this long before a scan
OBSERVATION = 48 * 3600.0   # probe.observation: a probe address stays valid this long
MEMBERS, PROBES, HARVESTER_SHARE = 300, 2000, 0.05
STABLE_HOSTS = 30           # stable LAN addresses (router, the appliance's own, other hosts)
FAMILIES = 400              # scanner /64s

# wrk's own latency histogram proved unreliable here: with a stall of a few hundred ms now and then
# (the page recomputing after a commit), the sum of its latencies came to twice connections x
# duration, which a closed loop cannot reach, and its p95/p99 with it (curl, a Python client and
# gunicorn's own log agreed with each other, not with it). So each wrk thread drives ONE connection
# (-t = -c) and times its requests itself; done() reports percentiles of those timings, and wrk's
# own p95 beside them with the consistency ratio, for comparison.
LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; samples = {}; n = 0; sent = nil end
function request()
  sent = now_us()
  return wrk.format()
end
function response(status, headers, body)
  if sent then n = n + 1; samples[n] = now_us() - sent; sent = nil end
  if status < 200 or status > 299 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local all, bad, sum = {}, 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("bad") or 0)
    for _, v in ipairs(t:get("samples") or {}) do all[#all + 1] = v; sum = sum + v end
  end
  table.sort(all)
  local function pct(p)
    if #all == 0 then return -1 end
    return all[math.max(1, math.ceil(p / 100 * #all))]
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH-RESULT requests=%d duration_us=%d samples=%d p50_us=%d p95_us=%d p99_us=%d max_us=%d sum_us=%d " ..
    "wrk_p95_us=%d wrk_mean_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, #all, pct(50), pct(95), pct(99), all[#all] or -1, sum,
    latency:percentile(95), latency.mean, bad, e.connect, e.read, e.write, e.timeout))
end
"""


# -- the store ---------------------------------------------------------------------------------
def _address(rng, prefix: str, taken: set) -> str:
    while True:
        text = ipaddress.ip_address(f"{prefix}:{':'.join(f'{rng.getrandbits(16):x}' for _ in range(4))}").compressed
        if text not in taken:
            taken.add(text)
            return text


def _ports(rng) -> list:
    count = rng.randint(10, 40) if rng.random() < 0.7 else rng.randint(60, 120)
    universe = [("TCP", p) for p in SCAN_PORTS_TCP] + [("UDP", p) for p in SCAN_PORTS_UDP]
    chosen = set(rng.sample(universe, min(count, len(universe))))
    while len(chosen) < count:
        chosen.add((rng.choice(("TCP", "UDP")), rng.randint(1024, 65535)))
    return sorted(chosen)


def build_store(path: str, scans: int, seed: int, anchor: float) -> dict:
    """Fill a new store at `path` with `scans` scans ending at `anchor`; returns counts."""
    rng = random.Random(seed)
    days = max(7, round(scans / SCANS_PER_DAY))
    t0 = anchor - days * DAY
    store = Store(path)
    db = store.db
    taken: set[str] = set()

    # Pool members: one of them in a few pools each; a few are harvesters.
    members = [ipaddress.ip_address(f"2001:db8:{rng.randint(0x100, 0xfff):x}:{rng.getrandbits(16):x}::"
                                    f"{rng.getrandbits(16):x}").compressed for _ in range(MEMBERS * 2)]
    members = list(dict.fromkeys(members))[:MEMBERS]
    harvesters = rng.sample(members, round(MEMBERS * HARVESTER_SHARE))
    pool_rows = []
    for address in members:
        first = t0 + rng.uniform(0, days * DAY * 0.9)
        last = max(first, anchor - rng.uniform(0, 3 * DAY))
        for pool in rng.sample(DEBIAN_POOLS, rng.choice((1, 1, 2, 3))):
            pool_rows.append((pool, address, first, last))
    db.executemany("INSERT INTO pool_members(pool, address, first_seen, last_seen) VALUES (?,?,?,?)", pool_rows)

    # Probes: one fresh /128 each, committed before the packet leaves; harvesters probed a bit more.
    probe_rows, probe_scans = [], []
    weights = [3 if m in harvesters else 1 for m in members]
    for number, planned in enumerate(sorted(rng.uniform(t0 + 60, anchor - 120) for _ in range(PROBES)), start=1):
        server = rng.choices(members, weights)[0]
        kind = rng.choice(PROBE_KINDS)
        address = _address(rng, LAN, taken)
        sent_at, sport, stratum, offset, delay, error = planned + rng.uniform(0.001, 0.02), rng.randint(32768, 60999), \
            None, None, None, None
        if rng.random() < 0.02:
            sent_at, sport, error = None, None, "sendto: [Errno 101] Network is unreachable"
        elif kind == "ntp":
            if rng.random() < 0.95:
                stratum, offset, delay = rng.randint(1, 3), rng.gauss(0.0, 0.003), rng.uniform(0.008, 0.06)
            else:
                error = "no reply within 2.0 s"
        probe_rows.append((number, address, server, kind, PROBE_PORTS[kind], planned, sent_at, sport,
                           planned + OBSERVATION, stratum, offset, delay, error))
        if server in harvesters and sent_at is not None and rng.random() < 0.85:
            lags = sorted([rng.uniform(5, 60)] + [rng.uniform(60, OBSERVATION - 60) for _ in range(rng.randint(0, 4))])
            for lag in lags:
                if sent_at + lag < anchor - 30:
                    probe_scans.append((sent_at + lag, address, (server, PROBE_PORTS[kind], sent_at, sport, number)))
    db.executemany("INSERT INTO probes(id, address, server, kind, port, planned, sent_at, sport, expires, stratum, "
                   "offset, delay, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", probe_rows)

    # Scanners: a few busy /64 families and a long tail.
    families = []
    for number in range(FAMILIES):
        net = f"2001:db8:5c{number // 256:02x}:{number % 256:x}"
        families.append([ipaddress.ip_address(f"{net}::{rng.getrandbits(16):x}:{rng.getrandbits(16):x}").compressed
                         for _ in range(rng.choice((1, 1, 2, 3, 5, 10, 30)))])
    family_weights = [1 / (rank + 1) ** 1.1 for rank in range(FAMILIES)]
    nets: dict[str, str] = {}

    def scanner() -> tuple[str, str]:
        address = rng.choice(rng.choices(families, family_weights)[0])
        if address not in nets:
            nets[address] = network_of(address)
        return address, nets[address]

    # The appliance's addresses: a privacy address per 20 minutes (what the harvesters see), stable hosts.
    privacy = [_address(rng, LAN, taken) for _ in range(int(days * DAY / PRIVACY_LIFETIME) + 2)]
    stable = [f"{LAN}::1", f"{LAN}::10"] + [_address(rng, LAN, taken) for _ in range(STABLE_HOSTS - 2)]
    resolver = (f"{LAN}::1", "UDP", 53)
    web = [(ipaddress.ip_address(f"2001:db8:77:{n:x}::443").compressed, "TCP", 443) for n in range(1, 201)]
    contacts: dict[tuple, list] = {}

    def contact(src: str, endpoint: tuple, ts: float) -> None:
        key = (src, endpoint[1], endpoint[0], endpoint[2])
        seen = contacts.get(key)
        if seen is None:
            contacts[key] = [ts, ts]
        else:
            seen[0], seen[1] = min(seen[0], ts), max(seen[1], ts)

    def endpoint() -> tuple:
        roll = rng.random()
        if roll < 0.15:
            return (rng.choice(harvesters), "UDP", 123 if rng.random() < 0.85 else 321)
        if roll < 0.45:
            return (rng.choice(members), "UDP", 123)
        if roll < 0.6:
            return resolver
        return rng.choice(web)

    # Ordinary traffic of every privacy address (most of it never followed by a scan).
    for slot, address in enumerate(privacy):
        born = t0 + slot * PRIVACY_LIFETIME
        for _ in range(rng.randint(2, 6)):
            contact(address, endpoint(), born + rng.uniform(0, 2 * PRIVACY_LIFETIME))

    regular = scans - len(probe_scans)
    starts = sorted(rng.uniform(t0 + LOOKBACK, anchor - 30) for _ in range(regular))
    planned = [(start, None, None) for start in starts] + probe_scans
    planned.sort(key=lambda item: item[0])
    scan_rows, candidate_rows, sweeps, attributed = [], [], 0, 0
    touches: dict[tuple, list] = {}  # every packet of a scan of a probe address is a touch of it
    for scan_id, (start, probe_target, probe) in enumerate(planned, start=1):
        address, net = scanner()
        roll = rng.random()
        if probe is None and roll < 0.07:  # a sweep: one source, a port or two, many of our addresses
            ports = sorted({(rng.choice(("TCP", "UDP")), rng.choice(SCAN_PORTS_TCP)) for _ in range(rng.randint(1, 3))})
            targets = rng.sample(stable, rng.randint(8, STABLE_HOSTS))
            scan_rows.append((scan_id, "sweep", address, net, "*", start, start + rng.uniform(0.5, 30),
                              len(targets) * len(ports) * rng.randint(1, 2), len(ports), json.dumps(ports),
                              json.dumps({p: sum(q == p for q, _ in ports) for p in sorted({q for q, _ in ports})}),
                              json.dumps(targets)))
            sweeps += 1
            continue
        if probe is not None:
            target = probe_target
            server, port, sent_at, sport, probe_id = probe
            # The firewall logged the probe packet too, a fraction of a millisecond after the ledger's time.
            ts = sent_at + rng.uniform(0.0001, 0.0009)
            candidate_rows.append((scan_id, ts, target, sport, server, port, "UDP", start - ts))
            contact(target, (server, "UDP", port), ts)
            attributed += 1
        elif roll < 0.62:  # triggered: the address talked to 1-5 endpoints within the lookback
            slot = min(int((start - t0) // PRIVACY_LIFETIME), len(privacy) - 1)
            target = privacy[slot]
            endpoints = {endpoint() for _ in range(rng.choices((1, 2, 3, 4, 5), (20, 20, 25, 20, 15))[0])}
            for dst, proto, dport in sorted(endpoints):  # sorted: set order varies with the hash seed
                ts = start - rng.uniform(0.5, LOOKBACK - 1)
                candidate_rows.append((scan_id, ts, target, rng.randint(32768, 60999), dst, dport, proto, start - ts))
                contact(target, (dst, proto, dport), ts)
            attributed += 1
        else:  # untriggered: a stable host, or an old privacy address scanned long after it was used
            target = rng.choice(stable) if rng.random() < 0.6 else rng.choice(privacy)
        ports = _ports(rng)
        protocols: dict[str, int] = {}
        for proto, _ in ports:
            protocols[proto] = protocols.get(proto, 0) + 1
        end = start + rng.uniform(0.2, 50)
        scan_rows.append((scan_id, "portscan", address, net, target, start, end,
                          len(ports) * rng.randint(1, 3), len(ports), json.dumps(ports), json.dumps(protocols), "[]"))
        if probe is not None:
            for proto, port in ports:
                touches[(probe_id, address, proto, port)] = [start, end, 1]

    with db:
        db.executemany("INSERT INTO scans(id, kind, scanner, scanner_net, target, start, end, packets, port_count, "
                       "ports, protocols, targets) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", scan_rows)
        db.executemany("INSERT OR IGNORE INTO candidates(scan_id, ts, src, sport, dst, dport, proto, lag) "
                       "VALUES (?,?,?,?,?,?,?,?)", candidate_rows)
    store.add_contacts({key: tuple(value) for key, value in contacts.items()})
    store.add_touches(touches)
    started = time.perf_counter()
    store.refresh()  # attributions, probe links, candidate ranks, suspects: as the daemon derives them
    refresh_s = time.perf_counter() - started

    reasons = ("daemon-down", "daemon-stopped", "overrun", "seq-gap", "flood-limit")
    for _ in range(40):
        at, reason = rng.uniform(t0, anchor), rng.choice(reasons)
        store.add_gap(at, at + rng.uniform(0.01, 600 if reason.startswith("daemon") else 2), reason,
                      None if reason.startswith("daemon") or reason == "seq-gap" else rng.randint(1, 5000))
    store.set_status(daemon_status(anchor, t0, rng, members, len(scan_rows)), anchor)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts = {name: db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
              for name in ("scans", "candidates", "contacts", "suspects", "pool_members", "probes", "gaps",
                           "touches")}
    counts.update(
        sweeps=sweeps, attributed=attributed, refresh_s=round(refresh_s, 1),
        probe_scans=db.execute("SELECT count(*) FROM scans WHERE probe_id IS NOT NULL").fetchone()[0],
        certain=db.execute("SELECT count(*) FROM scans WHERE attribution='certain'").fetchone()[0])
    store.close()
    return counts


def daemon_status(now: float, started: float, rng, members: list, scans: int) -> dict:
    return {
        "started": started, "clean_stop": False, "pid": 4242, "heartbeat": now, "interface": "eth0",
        "last_record": now - 0.8, "open_episodes": 3,
        "counters": {"packets": scans * 60, "inbound": scans * 55, "outbound": scans * 5, "scans": scans},
        "capture": {"lost": 0, "overruns": 2, "malformed": 0},
        "privacy": {"in_force": True, "values": {"use_tempaddr": 2, "temp_prefered_lft": 1200,
                                                 "temp_valid_lft": 2400}, "problems": [], "restored": []},
        "firewall": {"in_force": True, "problems": [], "backend": "iptables-legacy",
                     "lan_prefixes": [f"{LAN}::/64"], "flood_dropped": 1234},
        "prober": {"state": "probing", "prefix": f"{LAN}::/64", "live_addresses": 180, "max_live": 500,
                   "servers": len(members), "pool_errors": {}, "last_probe": now - 50,
                   "next": [{"at": now + 60 * (i + 1), "server": rng.choice(members)} for i in range(10)]},
    }


def cached_store(work: Path, scans: int, seed: int, rebuild: bool) -> tuple[Path, dict]:
    path = work / f"store-{scans}-seed{seed}.sqlite"
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() and path.exists() else None
    if meta is None or meta.get("version") != BUILD_VERSION or rebuild:
        for stale in (path, meta_path, *(Path(f"{path}{suffix}") for suffix in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)
        part = work / (path.name + ".part")
        for stale in (part, *(Path(f"{part}{suffix}") for suffix in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)
        print(f"building {path} ({scans} scans, seed {seed}) ...", flush=True)
        anchor = float(int(time.time()) // 3600 * 3600)
        started = time.perf_counter()
        counts = build_store(str(part), scans, seed, anchor)
        build_s = time.perf_counter() - started
        os.replace(part, path)
        meta = {"version": BUILD_VERSION, "scans": scans, "seed": seed, "anchor": anchor,
                "build_s": round(build_s, 1), "counts": counts}
        meta_path.write_text(json.dumps(meta, indent=1))
        meta["cached"] = False
    else:
        meta["cached"] = True
    return path, meta


class Heartbeat(threading.Thread):
    """The daemon's part while the page is loaded: the store held open, status committed every
    `every` seconds (the daemon's flush interval is 5 s); 0: held open, never written."""

    def __init__(self, path: Path, every: float):
        super().__init__(daemon=True)
        self.path, self.every, self.stop, self.ready = path, every, threading.Event(), threading.Event()

    def run(self) -> None:
        store = Store(str(self.path))  # sqlite3 connections stay in the thread that opened them
        try:
            now = time.time()
            store.set_status({"heartbeat": now, "clean_stop": False, "last_record": now - 0.5}, now)
            self.ready.set()
            while not self.stop.wait(self.every or None):
                now = time.time()
                store.set_status({"heartbeat": now, "last_record": now - 0.5}, now)
        finally:
            self.ready.set()
            store.close()

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=10)


# -- the server --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until_up(process: subprocess.Popen, port: int, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"harvestwatch serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if get(port, "/about", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"harvestwatch serve did not answer on 127.0.0.1:{port} within {timeout:.0f} s:\n"
             f"{log.read_text()[-3000:]}")


def server_pids(master: int) -> list[int]:
    pids = [master]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(entry))
    return pids


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# -- load ----------------------------------------------------------------------------------------
def run_wrk(wrk: str, script: Path, url: str, connections: int, seconds: int) -> dict:
    out = subprocess.run([wrk, f"-t{connections}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                          "--latency", "-s", str(script), url], capture_output=True, text=True,
                         timeout=seconds + 60)
    line = next((text for text in out.stdout.splitlines() if text.startswith("BENCH-RESULT ")), None)
    if line is None:
        sys.exit(f"wrk gave no result for {url} (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    values = {key: int(float(value)) for key, value in (field.split("=") for field in line.split()[1:])}
    busy = connections * values["duration_us"]  # a closed loop's latencies cannot add up to more
    if values["samples"] < 0.99 * values["requests"]:
        print(f"note: the script timed {values['samples']} of wrk's {values['requests']} requests to {url}")
    return {"rps": values["requests"] / (values["duration_us"] / 1e6), "requests": values["requests"],
            "p50": values["p50_us"] / 1000, "p95": values["p95_us"] / 1000, "p99": values["p99_us"] / 1000,
            "max": values["max_us"] / 1000, "non2xx": values["non2xx"],
            "socket_errors": values["connect"] + values["read"] + values["write"] + values["timeout"],
            "wrk_p95": values["wrk_p95_us"] / 1000, "timed": values["sum_us"] / busy,
            "wrk_timed": values["wrk_mean_us"] * values["requests"] / busy}


def run_python_load(port: int, path: str, connections: int, seconds: int) -> dict:
    """Fallback when wrk is missing: `connections` keep-alive clients in threads, closed loop."""
    latencies, non2xx, errors, lock = [], [0], [0], threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, bad, failed = [], 0, 0
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                mine.append(time.perf_counter() - began)
                bad += not 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.close()
        with lock:
            latencies.extend(mine)
            non2xx[0] += bad
            errors[0] += failed

    began = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(p):  # nearest rank, as the wrk script
        return latencies[max(0, math.ceil(len(latencies) * p / 100) - 1)] * 1000 if latencies else float("nan")
    return {"rps": len(latencies) / elapsed, "requests": len(latencies), "p50": pct(50), "p95": pct(95),
            "p99": pct(99), "max": latencies[-1] * 1000 if latencies else float("nan"), "non2xx": non2xx[0],
            "socket_errors": errors[0], "timed": sum(latencies) / (connections * elapsed)}


def idle_ms(port: int, path: str, n: int = 15, commit_to: Path | None = None) -> float:
    """Median of sequential requests with nothing else going on: the cost of one page. With
    `commit_to`, each request follows a commit to the store (a daemon heartbeat), so nothing the
    page keeps per commit can be reused: what a lone user's browser meets on each refresh."""
    writer = Store(str(commit_to)) if commit_to else None
    times = []
    try:
        for _ in range(n):
            if writer:
                now = time.time()
                writer.set_status({"heartbeat": now, "last_record": now - 0.5}, now)
            began = time.perf_counter()
            status, _ = get(port, path, timeout=30)
            times.append((time.perf_counter() - began) * 1000)
            if not 200 <= status < 300:
                sys.exit(f"GET {path} answered {status}")
    finally:
        if writer:
            writer.close()
    return sorted(times)[len(times) // 2]


def size_mib(path: Path) -> float:
    return sum(os.path.getsize(p) for p in (str(path), f"{path}-wal", f"{path}-shm") if os.path.exists(p)) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "harvestwatch-bench"))
    parser.add_argument("--scans", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per URL (default 10)")
    parser.add_argument("--connections", type=int, default=8,
                        help="concurrent keep-alive connections, one per wrk thread (default 8)")
    parser.add_argument("--rebuild", action="store_true", help="build the store even if a cached one exists")
    parser.add_argument("--python-load", action="store_true", help="use the Python load tool even if wrk exists")
    parser.add_argument("--commit-every", type=float, default=5.0, metavar="SECONDS",
                        help="a daemon-like heartbeat commit to the store this often during the load (default 5, "
                             "the daemon's flush interval; 0: none)")
    args = parser.parse_args()
    work = Path(args.work) / "web"
    work.mkdir(parents=True, exist_ok=True)

    path, meta = cached_store(work, args.scans, args.seed, args.rebuild)
    counts = meta["counts"]
    print(f"store: {path}  {size_mib(path):.0f} MiB on disk  "
          f"({'cached; built' if meta['cached'] else 'built'} in {meta['build_s']:.1f} s, of which refresh() "
          f"{counts['refresh_s']:.1f} s)")
    print(f"  {counts['scans']} scans ({counts['sweeps']} sweeps, {counts['attributed']} with candidates, "
          f"{counts['certain']} certain, {counts['probe_scans']} of probe addresses), {counts['candidates']} "
          f"candidates, {counts['contacts']} contacts, {counts['suspects']} suspects, {counts['pool_members']} "
          f"pool memberships, {counts['probes']} probes, {counts['gaps']} gaps")

    store = Store(str(path))  # migrates a store cached under an older schema, as the daemon would on upgrade
    version = store.db.execute("PRAGMA user_version").fetchone()[0]
    store.close()
    heartbeat = Heartbeat(path, args.commit_every)
    heartbeat.start()
    heartbeat.ready.wait(30)

    print("load average (1, 5, 15 min) before the run: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    port = free_port()
    log = work / "serve.log"
    wrk = shutil.which("wrk") if not args.python_load else None
    with open(log, "w") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "appliance", "serve", "--db", str(path), "--bind",
                                   f"127.0.0.1:{port}"], cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_until_up(server, port, log)
        sqlite_version = __import__("sqlite3").sqlite_version
        print(f"server: harvestwatch serve (gunicorn, 2 workers x 4 threads) on 127.0.0.1:{port}, schema "
              f"{version}/{len(MIGRATIONS)}, SQLite {sqlite_version}, {os.cpu_count()} CPUs")
        print("store writer: " + (f"a heartbeat committed every {args.commit_every:g} s during the load, like the "
                                   f"daemon's flush" if args.commit_every else "held open, no commits"))
        if wrk:
            script = work / "report.lua"
            script.write_text(LUA)
            print(f"load: wrk -t{args.connections} -c{args.connections} -d{args.duration}s --latency -s {script} "
                  "per URL; "
                  f"latencies timed per request by the script (see LUA in {Path(__file__).name})")
        else:
            why = "--python-load" if args.python_load else "wrk is not installed"
            print(f"load: Python load tool (threads + http.client; {why}): {args.connections} keep-alive "
                  f"connections, {args.duration} s per URL")
        print("idle: median of sequential requests; after commit: the same, each right after a commit "
              "(a heartbeat) to the store; then the figures under load")
        print(f"{'URL':12s} {'idle':>8s} {'after commit':>13s} {'req/s':>8s} {'p50':>8s} {'p95':>8s} {'p99':>8s} "
              f"{'max':>8s} {'non-2xx':>8s} {'errors':>7s}  p95 <= {TARGET_P95_MS:.0f} ms"
              + ("   [wrk's own p95; latency sum / (connections x duration): wrk's, the script's]" if wrk else ""))
        results = {}
        for url in URLS:
            fresh = idle_ms(port, url, n=7, commit_to=path)
            idle = idle_ms(port, url)  # also warms both workers
            if wrk:
                r = run_wrk(wrk, script, f"http://127.0.0.1:{port}{url}", args.connections, args.duration)
            else:
                r = run_python_load(port, url, args.connections, args.duration)
            results[url] = r
            print(f"{url:12s} {idle:6.1f}ms {fresh:11.1f}ms {r['rps']:8.1f} {r['p50']:6.1f}ms {r['p95']:6.1f}ms "
                  f"{r['p99']:6.1f}ms "
                  f"{r['max']:6.0f}ms {r['non2xx']:8d} {r['socket_errors']:7d}  "
                  f"{'yes' if r['p95'] <= TARGET_P95_MS else 'NO ':13s}"
                  + (f"   [{r['wrk_p95']:.1f} ms; {r['wrk_timed']:.2f}, {r['timed']:.2f}]" if wrk else ""), flush=True)
        pids = server_pids(server.pid)
        print(f"server RSS: {rss_mib(pids):.1f} MiB (VmRSS of {len(pids)} gunicorn processes: master + "
              f"{len(pids) - 1} workers)")
        print("load average (1, 5, 15 min) after the run: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
              + " (other processes share the CPUs with the server and the load tool, and show in the figures)")
        met = sum(r["p95"] <= TARGET_P95_MS for r in results.values())
        print(f"p95 <= {TARGET_P95_MS:.0f} ms: {met}/{len(results)} URLs" + ("" if met == len(results) else
              " (target MISSED)"))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        heartbeat.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
