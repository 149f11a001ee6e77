"""Benchmark: what N live probe addresses cost. Prints figures; asserts nothing.

A probe address stays on the LAN interface for its whole observation window (a week by default),
so the appliance holds many at once: `probe.max_live` caps them. For N = 1,000 and 5,000 (or
--counts) this measures, in a namespace whose interface is the appliance's `eth0` behind a router
namespace, with the prober's own functions (appliance/probe/addresses.py):

- the time to add them (each a netlink request, as the prober makes them) and to remove them;
- the kernel's unreclaimable slab memory they take (/proc/meminfo SUnreclaim: addresses, their
  /128 routes, their multicast groups; the machine's other activity adds noise of a few MiB);
- the solicited-node multicast groups joined (what a NIC's multicast filter must hold; more than
  it can, and it receives all multicast);
- one prober loop's look at the interface (prefix and live addresses: two address dumps);
- neighbour discovery: the router sends one UDP packet to every address at once; how many reach
  the appliance (the router must resolve each; Linux routers keep at most gc_thresh3 = 1024
  neighbours by default) and how long it takes;
- the daemon's side: its memory for the watched addresses and the store's ledger rows, and the
  time to compute every server's verdict (what the page and `status` do) with N probes.

Run by `make bench-probes` (root; its own namespaces only, 2001:db8::/32).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.lab.netns import Namespaces, run  # noqa: E402

PREFIX = "2001:db8:5e7:1::/64"
ROUTER, APPLIANCE = "2001:db8:5e7:1::1", "2001:db8:5e7:1::2"
WINDOW = 7 * 86400


def unreclaimable_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("SUnreclaim:"):
            return int(line.split()[1])
    raise RuntimeError("no SUnreclaim in /proc/meminfo")


def settle() -> int:
    """SUnreclaim after the kernel has had a moment (RCU frees arrive late), median of three."""
    samples = []
    for _ in range(3):
        time.sleep(1.0)
        samples.append(unreclaimable_kib())
    return int(statistics.median(samples))


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def inside(count: int) -> dict:
    """In the appliance's namespace: add, look, hold in the daemon's structures, remove."""
    from appliance.detect.touches import TouchDetector
    from appliance.lan import LanNetworks
    from appliance.probe import addresses
    from appliance.store.db import Store

    figures: dict = {}
    slab_before = settle()
    started = time.perf_counter()
    minted = [addresses.mint_probe_address("eth0", PREFIX, WINDOW) for _ in range(count)]
    figures["add_s"] = time.perf_counter() - started
    figures["slab_kib"] = settle() - slab_before
    groups = [line for line in Path("/proc/net/igmp6").read_text().splitlines() if line.split()[1] == "eth0"]
    figures["multicast_groups"] = len(groups)
    looks = []
    for _ in range(5):
        started = time.perf_counter()
        addresses.global_prefix("eth0")
        live = addresses.probe_addresses("eth0")
        looks.append(time.perf_counter() - started)
    figures["look_s"] = statistics.median(looks)
    figures["listed"] = len(live)
    Path(os.environ["HW_BENCH_LIST"]).write_text("\n".join(minted))

    # The daemon's part: the touch detector's watch list and the store's ledger.
    rss_before = rss_kib()
    detector = TouchDetector(LanNetworks([PREFIX]))
    now = time.time()
    with tempfile.TemporaryDirectory() as state:
        store = Store(f"{state}/harvestwatch.sqlite")
        servers = [f"2001:db8:feed:{n // 7:x}::123" for n in range(count)]  # a week of daily probes each
        for server in set(servers):
            store.add_pool_members("0.pool.bench.test", [server], now - WINDOW)
        for n, (address, server) in enumerate(zip(minted, servers)):
            planned = now - WINDOW + (n / count) * WINDOW
            probe_id = store.plan_probe(address, server, "ntp", 123, planned + WINDOW, planned=planned)
            store.record_probe(probe_id, sent_at=planned + 0.01, sport=40000 + n % 20000)
            detector.watch(address, probe_id, planned, planned + WINDOW)
        figures["daemon_kib"] = rss_kib() - rss_before
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            verdicts = store.server_verdicts(now)
            timings.append(time.perf_counter() - started)
        figures["verdicts_s"] = statistics.median(timings)
        figures["servers"] = len(verdicts)
        store.close()

    input()  # the router's packets are sent now; removal waits for them
    slab_full = settle()
    started = time.perf_counter()
    for address in minted:
        addresses.remove_probe_address("eth0", address)
    figures["remove_s"] = time.perf_counter() - started
    figures["slab_freed_kib"] = slab_full - settle()
    return figures


SEND_ALL = r"""
import socket, sys, time
targets = open(sys.argv[1]).read().split()
started = time.perf_counter()
with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
    for target in targets:
        try:
            s.sendto(b"bench", (target, 9))
        except OSError:
            pass  # the neighbour table is full: the kernel says so to the sender
print(time.perf_counter() - started)
"""


def received(ns: Namespaces, name: str) -> int:
    """Datagrams the appliance's namespace received to a closed UDP port (each reached it)."""
    counters = ns.exec(name, ["cat", "/proc/net/snmp6"]).stdout.split()
    return int(counters[counters.index("Udp6NoPorts") + 1])


def measure(count: int) -> dict:
    with Namespaces() as ns, tempfile.TemporaryDirectory() as work:
        rtr, pi = ns.add("rtr"), ns.add("pi")
        ns.veth(rtr, "lan0", pi, "eth0")
        ns.address(rtr, "lan0", f"{ROUTER}/64")
        ns.address(pi, "eth0", f"{APPLIANCE}/64")
        listing = f"{work}/addresses"
        worker = subprocess.Popen(["ip", "netns", "exec", pi, sys.executable, __file__, "--inside", str(count)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "HW_BENCH_LIST": listing})
        deadline = time.monotonic() + 600
        while not Path(listing).exists() or not Path(listing).read_text():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the worker did not add its addresses")
            time.sleep(0.5)
        time.sleep(2)  # the worker writes the list, then fills its store; the kernel is ready
        before = received(ns, pi)
        sent_s = float(ns.python(rtr, SEND_ALL, listing, timeout=300).stdout)
        time.sleep(5)  # unanswered neighbour solicitations give up after 3 s
        reached = received(ns, pi) - before
        neighbours = len(ns.exec(rtr, ["ip", "-6", "neigh", "show", "dev", "lan0"]).stdout.splitlines())
        out, _ = worker.communicate("\n", timeout=600)
        figures = json.loads(out.strip().splitlines()[-1])
        figures.update(count=count, router_sent_s=sent_s, reached=reached, router_neighbours=neighbours,
                       # The neighbour table's limits are the kernel's, one for all namespaces.
                       gc_thresh3=int(run(["sysctl", "-n", "net.ipv6.neigh.default.gc_thresh3"]).stdout))
        return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="1000,5000")
    parser.add_argument("--inside", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(inside(args.inside)))
        return 0
    print(f"rss of this interpreter: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} KiB")
    for count in (int(n) for n in args.counts.split(",")):
        f = measure(count)
        print(f"[{count} probe addresses] add {f['add_s']:.2f} s ({f['add_s'] / count * 1e3:.2f} ms each), "
              f"remove {f['remove_s']:.2f} s; kernel slab +{f['slab_kib'] / 1024:.1f} MiB "
              f"({f['slab_kib'] * 1024 / count:.0f} bytes each; {f['slab_freed_kib'] / 1024:.1f} MiB freed on "
              f"removal); {f['multicast_groups']} multicast groups on eth0")
        print(f"[{count} probe addresses] one prober look at the interface: {f['look_s'] * 1e3:.0f} ms "
              f"({f['listed']} listed); daemon memory for watch list and ledger: +{f['daemon_kib'] / 1024:.1f} MiB; "
              f"every server's verdict ({f['servers']} servers): {f['verdicts_s'] * 1e3:.0f} ms")
        print(f"[{count} probe addresses] router sends one packet to each: {f['reached']} of {count} reached "
              f"the appliance (router neighbour table: {f['router_neighbours']} entries, gc_thresh3 "
              f"{f['gc_thresh3']}), sent in {f['router_sent_s']:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
