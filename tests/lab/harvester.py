"""The lab's harvester sidecar: record who sends UDP to ports 123/321, then have them port-scanned.

It imitates what the seed story found: harvesting at packet level (an empty UDP packet is enough,
the NTP daemon is not involved), then two waves of scans from two other networks. It runs inside
the `harv` namespace next to an honest chronyd and writes one JSON object per line to a journal:

    {"time", "event": "started"|"packet"|"refused"|"scan"|"stopped", ...}

A "scan" line is written when nmap ends: "time" is its end, "started" its launch, plus "wave",
"scanner" (namespace), "target" and "returncode".

Safety: it only ever scans addresses inside --lan-prefix (the lab's LAN, itself inside
2001:db8::/32); any other source is refused and the refusal is journaled. Everything is bounded:
--max-targets sources, a hard timeout per nmap run, --lifetime for the whole process, SIGTERM stops it.
"""
from __future__ import annotations

import argparse
import heapq
import ipaddress
import json
import select
import signal
import socket
import subprocess
import time

HARVESTED_PORTS = (123, 321)
DOCUMENTATION_PREFIX = ipaddress.ip_network("2001:db8::/32")
NMAP_KILL_AFTER = 45  # nmap's own --host-timeout is 30 s; this catches a hung nmap


def nmap_command(scanner_ns: str, target: str) -> list[str]:
    # ~100 TCP + ~100 UDP ports, no retries: like the seed's scans, over in about a second.
    return ["ip", "netns", "exec", scanner_ns, "nmap", "-6", "-Pn", "-n", "-sS", "-sU", "-T5",
            "--max-retries", "0", "--host-timeout", "30s", "-p", "T:1-100,U:1-100", target]


class Journal:
    def __init__(self, path: str):
        self.file = open(path, "a", buffering=1)

    def write(self, event: str, **fields) -> None:
        self.file.write(json.dumps({"time": time.time(), "event": event, **fields}) + "\n")


class Harvester:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.lan_prefix = ipaddress.ip_network(args.lan_prefix)
        if not self.lan_prefix.subnet_of(DOCUMENTATION_PREFIX):
            raise SystemExit(f"refusing to run: {self.lan_prefix} is not inside {DOCUMENTATION_PREFIX}")
        self.journal = Journal(args.journal)
        self.seen: set[str] = set()
        self.due: list[tuple[float, int, str, str]] = []  # (when, wave, scanner ns, target)
        self.running: list[tuple[subprocess.Popen, float, dict]] = []

    def run(self) -> None:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)
        self.journal.write("started", lan_prefix=str(self.lan_prefix), delay1=self.args.delay1,
                           delay2=self.args.delay2, max_targets=self.args.max_targets)
        end = time.monotonic() + self.args.lifetime
        try:
            while time.monotonic() < end:
                readable, _, _ = select.select([sock], [], [], self.wait_time(end))
                if readable:
                    # A raw IPv6 socket gets the transport payload: it starts with the UDP header.
                    data, source = sock.recvfrom(65535)
                    if len(data) >= 8:
                        self.on_packet(source[0], int.from_bytes(data[2:4], "big"))
                self.launch_due_scans()
                self.reap_scans()
        except Stop:
            pass
        finally:
            sock.close()
            for process, _, _ in self.running:
                process.kill()
                process.wait(timeout=5)
            self.journal.write("stopped", targets=len(self.seen))

    def wait_time(self, end: float) -> float:
        now = time.monotonic()
        wake = min([end] + [when for when, *_ in self.due[:1]])
        # Poll running scans at least twice a second so their exit codes are journaled promptly.
        return max(0.0, min(wake - now, 0.5 if self.running else 5.0))

    def on_packet(self, src: str, dport: int) -> None:
        if dport not in HARVESTED_PORTS:
            return
        self.journal.write("packet", src=src, dport=dport)
        if src in self.seen:
            return
        if ipaddress.ip_address(src) not in self.lan_prefix:
            self.journal.write("refused", src=src, reason=f"outside the lab LAN prefix {self.lan_prefix}")
            return
        if len(self.seen) >= self.args.max_targets:
            self.journal.write("refused", src=src, reason=f"max targets ({self.args.max_targets}) reached")
            return
        self.seen.add(src)
        now = time.monotonic()
        heapq.heappush(self.due, (now + self.args.delay1, 1, self.args.scanner1, src))
        heapq.heappush(self.due, (now + self.args.delay2, 2, self.args.scanner2, src))

    def launch_due_scans(self) -> None:
        while self.due and self.due[0][0] <= time.monotonic():
            _, wave, scanner, target = heapq.heappop(self.due)
            process = subprocess.Popen(nmap_command(scanner, target), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, start_new_session=True)
            record = {"wave": wave, "scanner": scanner, "target": target, "started": time.time()}
            self.running.append((process, time.monotonic() + NMAP_KILL_AFTER, record))

    def reap_scans(self) -> None:
        still_running = []
        for process, kill_at, record in self.running:
            if process.poll() is None and time.monotonic() > kill_at:
                process.kill()
                process.wait(timeout=5)
            if process.poll() is None:
                still_running.append((process, kill_at, record))
            else:
                self.journal.write("scan", returncode=process.returncode, **record)
        self.running = still_running


class Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler: a blocking select() would otherwise finish its timeout."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", required=True, help="JSON-lines file to append to")
    parser.add_argument("--lan-prefix", required=True, help="only addresses inside it are ever scanned")
    parser.add_argument("--scanner1", required=True, help="namespace of the first-wave scanner")
    parser.add_argument("--scanner2", required=True, help="namespace of the second-wave scanner")
    parser.add_argument("--delay1", type=float, default=5.0, help="seconds from first packet to first scan")
    parser.add_argument("--delay2", type=float, default=30.0, help="seconds from first packet to second scan")
    parser.add_argument("--max-targets", type=int, default=20)
    parser.add_argument("--lifetime", type=float, default=3600.0, help="exit by itself after this many seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    harvester = Harvester(parse_args(argv))

    def stop(signum, frame):
        raise Stop
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    harvester.run()


if __name__ == "__main__":
    main()
