"""A deterministic synthetic kernel log of a HarvestWatch appliance, with known ground truth.

Used by `make bench`, the demo and the tests. Every address is in 2001:db8::/32 (documentation
prefix). The log is classic syslog (kern.log) with the kernel's uptime field and our HW-IN/HW-OUT
prefixes. It contains:

* triggered scans: a fresh privacy address resolves the pool name, asks three honest NTP servers
  and one harvester for the time, and 5-60 s after the harvester contact a scanner from one of
  a few /64 families covers 100-120 TCP+UDP ports in under a second;
* untriggered scans of a stable address that never sent anything (must come out unattributed);
* sweeps (one source, one port, many of our addresses);
* noise: ordinary outbound traffic from addresses that are never scanned, background radiation
  (single stray packets), other kernel messages, truncated records and binary garbage.

Every 40-second episode holds a scan or a sweep, unless `quiet` asks for that many episodes of
noise alone after each one: the log of a busy LAN, with fewer scans and more contacts per line.

The ground truth (each triggered scan's target and true trigger endpoint) is written as JSON.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import random
import socket
import sys
import time
from functools import lru_cache

START = 1768262400.0  # 2026-01-13 00:00:00 UTC
UPTIME_AT_START = 1000.0
LAN = ipaddress.ip_network("2001:db8:1:1::/64")
RESOLVER = "2001:db8:1:1::1"
STABLE = "2001:db8:1:1::10"
HARVESTERS = ["2001:db8:f00d:20::a7:f001", "2001:db8:f00d:20::a7:f005", "2001:db8:f00d:d0::9:b00d"]
HONEST = [f"2001:db8:a{n % 4}:{n}::123" for n in range(1, 13)]
WEB = [f"2001:db8:77:{n}::443" for n in range(1, 40)]
SCANNER_FAMILIES = [f"2001:db8:5ca{n}:10::" for n in range(3)]
SCAN_PORTS_TCP = [21, 22, 23, 25, 53, 80, 81, 110, 111, 135, 139, 143, 179, 389, 443, 445, 465, 502, 587,
                  631, 873, 993, 995, 1025, 1080, 1433, 1521, 1723, 1883, 2000, 2049, 2082, 2083, 2222,
                  2375, 2376, 3000, 3128, 3306, 3389, 4443, 4567, 5000, 5060, 5432, 5555, 5601, 5900,
                  5984, 6000, 6379, 6443, 7001, 7547, 8000, 8008, 8080, 8081, 8088, 8443, 8888, 9000,
                  9042, 9090, 9100, 9200, 9443, 10000, 11211, 27017, 37777, 49152, 50000, 50070]
SCAN_PORTS_UDP = [53, 67, 69, 111, 123, 137, 161, 177, 389, 500, 623, 1194, 1434, 1604, 1900, 2049,
                  3478, 3702, 4500, 5060, 5093, 5351, 5353, 5683, 10001, 11211, 17185, 20000, 27015,
                  32414, 33848, 37810, 47808, 49153, 64738]
MAC = "b8:27:eb:00:00:01:f8:1a:67:00:00:02:86:dd"


@lru_cache(maxsize=1 << 16)
def expand(address: str) -> str:
    """The kernel prints IPv6 addresses fully expanded (as ipaddress's `exploded`, ten times faster)."""
    if ":" not in address:
        return address
    digits = socket.inet_pton(socket.AF_INET6, address).hex()
    return ":".join(digits[i:i + 4] for i in range(0, 32, 4))


def syslog_stamp(ts: float) -> str:
    t = time.gmtime(ts)
    return time.strftime("%b ", t) + f"{t.tm_mday:2d}" + time.strftime(" %H:%M:%S", t)


class Writer:
    def __init__(self, out):
        self.out = out
        self.lines = 0

    def emit(self, events):
        events.sort(key=lambda e: e[0])
        for ts, text in events:
            self.out.write(f"{syslog_stamp(ts)} harvestwatch kernel: [{ts - START + UPTIME_AT_START:12.6f}] {text}\n")
        self.lines += len(events)


def inbound(src, dst, proto, sport, dport, rng):
    tail = ("WINDOW=1024 RES=0x00 SYN URGP=0" if proto == "TCP" else "LEN=8")
    return (f"HW-IN IN=eth0 OUT= MAC={MAC} SRC={expand(src)} DST={expand(dst)} LEN={60 if proto == 'TCP' else 48} "
            f"TC=0 HOPLIMIT={rng.randint(40, 60)} FLOWLBL=0 PROTO={proto} SPT={sport} DPT={dport} {tail}")


def outbound(src, dst, proto, sport, dport):
    tail = "LEN=56" if proto == "UDP" else "WINDOW=64800 RES=0x00 SYN URGP=0"
    return (f"HW-OUT IN= OUT=eth0 SRC={expand(src)} DST={expand(dst)} LEN=76 TC=0 HOPLIMIT=64 FLOWLBL=0 "
            f"PROTO={proto} SPT={sport} DPT={dport} {tail}")


def random_address(rng, network=LAN):
    return str(network.network_address + rng.getrandbits(64))


def scan_events(rng, t, scanner, target):
    ports = ([("TCP", p) for p in rng.sample(SCAN_PORTS_TCP, rng.randint(65, 74))]
             + [("UDP", p) for p in rng.sample(SCAN_PORTS_UDP, rng.randint(30, 35))])
    rng.shuffle(ports)
    duration = rng.uniform(0.2, 0.9)
    sport = rng.randint(30000, 60000)
    return [(t + duration * i / len(ports), inbound(scanner, target, proto, sport, port, rng))
            for i, (proto, port) in enumerate(ports)], len(ports)


def noise_events(rng, t0, span):
    events = []
    for _ in range(rng.randint(6, 12)):  # background radiation: one stray packet each
        src = random_address(rng, ipaddress.ip_network(f"2001:db8:{rng.randint(0x100, 0xfff):x}::/48"))
        events.append((t0 + rng.uniform(0, span), inbound(src, random_address(rng), "TCP", rng.randint(1024, 65535),
                                                            rng.choice([22, 23, 80, 443]), rng)))
    quiet = random_address(rng)  # a never-scanned address going about its business
    for server in rng.sample(HONEST, 3):
        events.append((t0 + rng.uniform(0, span), outbound(quiet, server, "UDP", rng.randint(32768, 60999), 123)))
    events.append((t0 + rng.uniform(0, span), outbound(quiet, RESOLVER, "UDP", rng.randint(32768, 60999), 53)))
    for _ in range(rng.randint(1, 3)):
        events.append((t0 + rng.uniform(0, span),
                       outbound(quiet, rng.choice(WEB), "TCP", rng.randint(32768, 60999), 443)))
    for _ in range(rng.randint(1, 3)):  # unrelated kernel chatter
        events.append((t0 + rng.uniform(0, span), rng.choice([
            "usb 1-1.3: new high-speed USB device number 4 using dwc_otg",
            "brcmfmac: brcmf_cfg80211_set_power_mgmt: power save enabled",
            "IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready"])))
    if rng.random() < 0.6:  # a record cut short (log buffer overrun, truncated copy)
        cut = outbound(quiet, rng.choice(HONEST), "UDP", 40000, 123)
        events.append((t0 + rng.uniform(0, span), cut[: rng.randint(20, len(cut) - 20)].rsplit(" ", 1)[0]))
    if rng.random() < 0.3:
        events.append((t0 + rng.uniform(0, span),
                       "".join(chr(rng.randint(33, 0x2FF)) for _ in range(rng.randint(5, 80)))))
    return events


def generate(out, lines: int, seed: int = 1, quiet: int = 0) -> dict:
    """Write about `lines` lines to `out`; return the ground truth. `quiet`: episodes of noise
    alone after each episode with a scan or sweep."""
    if quiet < 0:
        raise ValueError("quiet must be 0 or more")
    rng = random.Random(seed)
    writer = Writer(out)
    truth = {"triggered": [], "untriggered": [], "sweeps": []}
    t = START
    while writer.lines < lines:
        block = []
        for episode in range(50):  # 50 episodes a block, then a quiet gap so blocks never interleave
            scanned = episode % (quiet + 1) == 0
            kind = rng.random() if scanned else None
            span = 40.0
            block.extend(noise_events(rng, t, span))
            if not scanned:
                t += span
                continue
            if kind < 0.8:
                address = random_address(rng)
                contact = t + rng.uniform(0, 5)
                block.append((contact - 0.05, outbound(address, RESOLVER, "UDP", rng.randint(32768, 60999), 53)))
                harvester = rng.choice(HARVESTERS)
                port = 321 if rng.random() < 0.15 else 123
                servers = [(s, 123) for s in rng.sample(HONEST, 3)] + [(harvester, port)]
                rng.shuffle(servers)
                for i, (server, dport) in enumerate(servers):
                    at = contact + i * rng.uniform(0.5, 2.0)
                    block.append((at, outbound(address, server, "UDP", rng.randint(32768, 60999), dport)))
                    if server == harvester:
                        harvested_at = at
                start = harvested_at + rng.uniform(5, 60)
                family = rng.choice(SCANNER_FAMILIES)
                scanner = family + f"{rng.randint(1, 0xffff):x}:a001"
                scan, ports = scan_events(rng, start, scanner, address)
                block.extend(scan)
                truth["triggered"].append({"target": address, "scanner": scanner, "start": scan[0][0],
                                           "ports": ports, "trigger": {"dst": harvester, "dport": port,
                                                                       "proto": "UDP", "ts": harvested_at}})
            elif kind < 0.92:
                scanner = rng.choice(SCANNER_FAMILIES) + f"{rng.randint(1, 0xffff):x}:b001"
                scan, ports = scan_events(rng, t + rng.uniform(0, 30), scanner, STABLE)
                block.extend(scan)
                truth["untriggered"].append({"target": STABLE, "scanner": scanner, "start": scan[0][0],
                                             "ports": ports})
            else:
                sweeper = random_address(rng, ipaddress.ip_network("2001:db8:bad::/48"))
                targets = [random_address(rng) for _ in range(rng.randint(12, 30))]
                at = t + rng.uniform(0, 30)
                for i, target in enumerate(targets):
                    block.append((at + i * 0.05, inbound(sweeper, target, "TCP", 40000 + i, 22, rng)))
                truth["sweeps"].append({"scanner": sweeper, "start": at, "targets": len(targets)})
            t += span
        writer.emit(block)
        t += 400.0  # quiet gap longer than any lookback
    truth["lines"] = writer.lines
    return truth


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="harvestwatch synthlog", description=__doc__.split("\n")[0],
                                     epilog="example: harvestwatch synthlog --lines 20000 -o demo.log "
                                            "--truth demo-truth.json")
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines to write (default 1000000)")
    parser.add_argument("--seed", type=int, default=1,
                        help="the random seed: the same seed writes the same log (default 1)")
    parser.add_argument("--output", "-o", default="-", help="log file to write (default: stdout)")
    parser.add_argument("--truth", help="write the ground truth JSON here")
    parser.add_argument("--quiet", type=int, default=0, metavar="N",
                        help="episodes of noise alone after each scan or sweep (default 0: a busy LAN has more)")
    args = parser.parse_args(argv)
    if args.quiet < 0:
        parser.error("--quiet must be 0 or more")
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    try:
        truth = generate(out, args.lines, args.seed, args.quiet)
    finally:
        if out is not sys.stdout:
            out.close()
    if args.truth:
        with open(args.truth, "w", encoding="utf-8") as fh:
            json.dump(truth, fh)
    print(f"wrote {truth['lines']} lines: {len(truth['triggered'])} triggered scans, "
          f"{len(truth['untriggered'])} untriggered, {len(truth['sweeps'])} sweeps", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
