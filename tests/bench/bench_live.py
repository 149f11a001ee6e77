"""Benchmark: the live daemon in the lab under a scan flood. Prints figures; asserts nothing.

Two floods of 20,000 UDP packets: 200 scanner addresses each send one packet to each of 100
ports of the appliance, first from 200 different /64s (a distributed scan: every packet must be
logged, 200 scans stored), then from 200 addresses of one /64 (one scanner rotating addresses:
the per-/64 flood limit bounds what it costs, and the dropped packets are recorded as a gap).
Reported per flood: daemon RSS and CPU, time until stored, packets logged and dropped; then the
probe addresses held and the capture's loss counters.
Run by `make bench-live` (root; the lab's namespaces only, 2001:db8::/32).
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.lab.appliance import ApplianceDaemon, write_config  # noqa: E402
from tests.lab.lab import Lab  # noqa: E402

SOURCES, PORTS = 200, 100
HEALTH_WAIT = 32  # the daemon's health check (flood counter) runs every 30 s

FLOOD = r"""
import socket, sys, time
target, sources, ports = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
started = time.time()
for source in sources:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        for port in range(20000, 20000 + ports):
            s.sendto(b"", (target, port))
print(time.time() - started)
"""


def process_figures(pid: int) -> dict:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"rss_mib": int(status["VmRSS"].split()[0]) / 1024, "peak_mib": int(status["VmHWM"].split()[0]) / 1024,
            "cpu_s": (int(fields[11]) + int(fields[12])) / ticks}


def device_with(lab, ns: str, network: str) -> str:
    net = ipaddress.ip_network(network)
    for link in json.loads(lab.ns.exec(ns, ["ip", "-j", "-6", "addr", "show"]).stdout):
        for address in link.get("addr_info", []):
            if ipaddress.ip_address(address["local"]) in net:
                return link["ifname"]
    raise RuntimeError(f"no interface in {ns} holds an address of {network}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/harvestwatch-bench")
    args = parser.parse_args()
    work = Path(args.work) / "live"
    shutil.rmtree(work, ignore_errors=True)  # a fresh store: figures from this run only
    work.mkdir(parents=True)
    with Lab(workdir=work / "lab", delay1=3, delay2=3600, router="open") as lab:
        state = work / "state"
        config = write_config(lab, work / "config.toml", state_dir=state, router="open")
        daemon = ApplianceDaemon(lab, config, state, work / "daemon.log").start()
        daemon.wait_for(lambda s: s.status().get("prober", {}).get("state") == "probing", timeout=60)
        time.sleep(3)
        pid = daemon.process.pid

        scan_ns = lab.ns.name("scan1")
        device = device_with(lab, scan_ns, lab.scanner_nets[0])
        # Phase 1: 200 sources in 200 different /64s (a distributed scan): every packet must be logged.
        # The lab's internet learns a /56 more of the scanners' /48, inside the lab's 2001:db8::/32.
        scanners = ipaddress.ip_network(lab.scanner_nets[0]).supernet(new_prefix=48)
        first = list(scanners.subnets(new_prefix=64))[0x1000:0x1000 + SOURCES]
        spread = first[0].supernet(new_prefix=56)
        lab.ns.exec(lab.net_ns, ["ip", "-6", "route", "add", str(spread), "via", lab.addresses["scan1"]])
        spread_sources = [str(network[0x100]) for network in first]
        # Phase 2: 200 sources in one /64 (one scanner rotating addresses): the flood limit bounds it.
        one_net = ipaddress.ip_network(lab.scanner_nets[0])
        packed_sources = [str(one_net[0x1000 + n]) for n in range(SOURCES)]
        for source in spread_sources + packed_sources:
            lab.ns.exec(scan_ns, ["ip", "addr", "add", f"{source}/128", "dev", device, "nodad"])
        target = lab.lan_address()

        def scans_from(store, sources, since):
            marks = ",".join("?" * len(sources))
            return store.db.execute(f"SELECT count(*), coalesce(sum(packets), 0) FROM scans WHERE target=? AND "
                                    f"end>=? AND scanner IN ({marks})", (target, since, *sources)).fetchone()

        results = {}
        for phase, sources in (("200 /64s", spread_sources), ("one /64", packed_sources)):
            before = process_figures(pid)
            started = time.time()
            sent = float(lab.ns.python(scan_ns, FLOOD, target, ",".join(sources), str(PORTS), timeout=120).stdout)
            during = process_figures(pid)
            want = SOURCES if phase == "200 /64s" else 1

            def stored(store):
                return scans_from(store, sources, started)[0] >= want
            daemon.wait_for(stored, timeout=120)
            time.sleep(HEALTH_WAIT)  # the flood-limit counter is read with the health check
            store = daemon.store()
            count, packets = scans_from(store, sources, started)
            flood_gaps = store.db.execute("SELECT coalesce(sum(lost), 0) FROM gaps WHERE reason='flood-limit' "
                                          "AND start>=?", (started,)).fetchone()[0]
            store.close()
            after = process_figures(pid)
            results[phase] = dict(sent=sent, stored_s=time.time() - started - HEALTH_WAIT, scans=count,
                                  packets=packets, flood=flood_gaps, before=before, during=during, after=after)
        store = daemon.store()
        status = store.status()
        gaps = [dict(g) for g in store.gaps()]
        store.close()
        daemon.stop()

    for phase, r in results.items():
        print(f"[{phase}] {SOURCES * PORTS} UDP packets from {SOURCES} sources sent in {r['sent']:.2f} s; "
              f"stored within {r['stored_s']:.1f} s: {r['scans']} scans, {r['packets']} packets logged, "
              f"{r['flood']} dropped by the flood limit (recorded as a gap)")
        print(f"[{phase}] daemon RSS {r['before']['rss_mib']:.1f} -> {r['during']['rss_mib']:.1f} (right after "
              f"sending) -> {r['after']['rss_mib']:.1f} MiB, peak so far {r['after']['peak_mib']:.1f} MiB; "
              f"CPU {r['after']['cpu_s'] - r['before']['cpu_s']:.2f} s "
              f"({(r['after']['cpu_s'] - r['before']['cpu_s']) / (SOURCES * PORTS) * 1e6:.0f} us/packet sent)")
    prober = status.get("prober", {})
    print(f"probe addresses held: {prober.get('live_addresses')} (cap {prober.get('max_live')})")
    print(f"capture: {status.get('capture')}; gaps: {sorted({g['reason'] for g in gaps}) or 'none'}")
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
