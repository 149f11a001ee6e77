"""The lab's harvester sidecar: record who sends UDP to ports 123/321, then have them scanned.

It imitates what the seed story found: harvesting at packet level (an empty UDP packet is enough,
the NTP daemon is not involved), then waves of scans from other networks, as its plan says (a JSON
list, one wave each: {"delay": s, "scanner": namespace, "kind": ..., ...}). Kinds, as real
harvesters and the hitlist builders they feed behave:

    nmap    a port scan of `ports` (nmap's -p syntax), like the seed's harvester-fed scans
    ping    one ICMPv6 echo request (a liveness check)
    syn     one TCP SYN to `port`
    spread  `per_source` ports from each of `sources` (addresses of the scanner's namespace in many
            /64s of one /48): a scan split so that no one source makes a scan

It runs inside its namespace next to an honest chronyd and writes one JSON object per line to a
journal:

    {"time", "event": "started"|"packet"|"refused"|"scan"|"stopped", ...}

A "scan" line is written when a wave ends: "time" is its end, "started" its launch, plus "wave",
"kind", "scanner" (namespace), "target" and "returncode".

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
import sys
import time

HARVESTED_PORTS = (123, 321)
DOCUMENTATION_PREFIX = ipaddress.ip_network("2001:db8::/32")
NMAP_KILL_AFTER = 45  # nmap's own --host-timeout is 30 s; this catches a hung nmap


# The ports of the seed's harvester-fed scans: common TCP and UDP services, low and high.
SCAN_PORTS = ("T:1-100,443,445,993,995,1433,1723,2222,3306,3389,5432,5900,6379,8000,8080,8443,8888,9200,"
              "27017,U:1-100,137,161,500,1900,5060,5353,11211")
ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.sendto(bytes([128, 0, 0, 0, 0x48, 0x57, 0, 1]) + b"harvestwatch lab", (sys.argv[1], 0))
"""


def wave_commands(wave: dict, target: str) -> list[list[str]]:
    """The commands (run one after another) that make one wave of `wave["kind"]` at `target`."""
    inside = ["ip", "netns", "exec", wave["scanner"]]
    nmap = ["nmap", "-6", "-Pn", "-n", "-T5", "--max-retries", "0", "--host-timeout", "30s"]
    kind = wave.get("kind", "nmap")
    if kind == "nmap":  # no retries: like the seed's scans, over in about a second
        return [inside + nmap + ["-sS", "-sU", "-p", wave.get("ports", SCAN_PORTS), target]]
    if kind == "ping":
        return [inside + [sys.executable, "-c", ECHO, target]]
    if kind == "syn":
        return [inside + nmap + ["-sS", "-p", str(wave.get("port", 443)), target]]
    if kind == "spread":
        ports = list(wave["ports"])
        per = int(wave.get("per_source", 5))
        return [inside + nmap + ["-e", "eth0", "-S", source, "-sS", "-p",
                                 ",".join(str(p) for p in ports[n * per:(n + 1) * per]), target]
                for n, source in enumerate(wave["sources"]) if ports[n * per:(n + 1) * per]]
    raise SystemExit(f"unknown wave kind {kind!r}")


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
        self.plan = json.loads(args.plan)
        self.seen: set[str] = set()
        self.due: list[tuple[float, int, str]] = []  # (when, wave number, target)
        self.running: list[tuple[list, float, dict]] = []  # (commands left, kill time, record)

    def run(self) -> None:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)
        self.journal.write("started", lan_prefix=str(self.lan_prefix), plan=self.plan,
                           max_targets=self.args.max_targets)
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
            for commands, _, _ in self.running:
                commands[0].kill()
                commands[0].wait(timeout=5)
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
        for number, wave in enumerate(self.plan, start=1):
            heapq.heappush(self.due, (now + float(wave["delay"]), number, src))

    def launch_due_scans(self) -> None:
        while self.due and self.due[0][0] <= time.monotonic():
            _, number, target = heapq.heappop(self.due)
            wave = self.plan[number - 1]
            commands = wave_commands(wave, target)
            record = {"wave": number, "kind": wave.get("kind", "nmap"), "scanner": wave["scanner"],
                      "target": target, "started": time.time()}
            running = [self._start(commands[0])] + commands[1:]
            self.running.append((running, time.monotonic() + NMAP_KILL_AFTER, record))

    @staticmethod
    def _start(command: list[str]) -> subprocess.Popen:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def reap_scans(self) -> None:
        still_running = []
        for commands, kill_at, record in self.running:
            process = commands[0]
            if process.poll() is None and time.monotonic() > kill_at:
                process.kill()
                process.wait(timeout=5)
            if process.poll() is None:
                still_running.append((commands, kill_at, record))
            elif len(commands) > 1 and process.returncode == 0:  # the wave's next command
                still_running.append(([self._start(commands[1])] + commands[2:], kill_at, record))
            else:
                self.journal.write("scan", returncode=process.returncode, **record)
        self.running = still_running


class Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler: a blocking select() would otherwise finish its timeout."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", required=True, help="JSON-lines file to append to")
    parser.add_argument("--lan-prefix", required=True, help="only addresses inside it are ever scanned")
    parser.add_argument("--plan", required=True, help="the waves, as JSON: [{delay, scanner, kind, ...}]")
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
