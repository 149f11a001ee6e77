"""Benchmark: the live daemon in the lab under scans and floods. Prints figures; asserts nothing.

Phase "distributed scan": 200 scanner addresses in 200 different /64s each send one packet to each
of 100 ports (20,000 packets): every packet must be logged, 200 scans stored.
Then three floods of 60 s each at FLOOD_PPS packets/s (tests/lab/flood.py, any source address):
from 100 addresses of one /64, from 30,000 /64s of one /48, from 30,000 different /48s. During each,
a stranger scans a watched probe address (12 ports): is it stored whole?
Reported per phase: packets sent, logged by the daemon, dropped by each flood limit, scans stored,
store growth per minute, daemon RSS and CPU (peak against the unit's MemoryMax of 256 MB).
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
from tests.lab.netns import repo_root  # noqa: E402

FLOOD_SECONDS, FLOOD_PPS = 60, 5000
HEALTH_WAIT = 32  # the daemon reads the flood counters with its health check, every 30 s
MEMORY_MAX_MIB = 256
FLOODS = (  # name, network, sources, step bits, ports per source
    ("one /64", "2001:db8:0:1::/64", 100, 128, FLOOD_SECONDS * FLOOD_PPS // 100),
    ("one /48", "2001:db8::/48", 30_000, 64, FLOOD_SECONDS * FLOOD_PPS // 30_000),
    ("many /48s", "2001:db8::/32", 30_000, 48, FLOOD_SECONDS * FLOOD_PPS // 30_000),
)


def process_figures(pid: int) -> dict:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"rss_mib": int(status["VmRSS"].split()[0]) / 1024, "peak_mib": int(status["VmHWM"].split()[0]) / 1024,
            "cpu_s": (int(fields[11]) + int(fields[12])) / ticks}


def snapshot(daemon) -> dict:
    store = daemon.store()
    try:
        status = store.status()
        gaps = dict(store.db.execute("SELECT reason, coalesce(sum(lost), 0) FROM gaps GROUP BY reason").fetchall())
        scans = store.db.execute("SELECT count(*) FROM scans").fetchone()[0]
    finally:
        store.close()
    size = sum(os.path.getsize(daemon.db_path + s) for s in ("", "-wal") if os.path.exists(daemon.db_path + s))
    return {"inbound": status.get("counters", {}).get("inbound", 0), "gaps": gaps, "scans": scans, "bytes": size}


def lab_networks(lab) -> list[str]:
    return [lab.site_prefix, f"2001:db8:{lab.internet:x}::/48", f"2001:db8:{lab.scanners:x}::/48",
            f"2001:db8:{lab.spreader:x}::/48"]


def flood_cli(target, network, sources, step, ports, exclude=(), *extra):
    return [sys.executable, "-m", "tests.lab.flood", target, network, "--sources", str(sources), "--step-bits",
            str(step), "--ports", str(ports), *(f"--exclude={n}" for n in exclude), *extra]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/harvestwatch-bench")
    args = parser.parse_args()
    work = Path(args.work) / "live"
    shutil.rmtree(work, ignore_errors=True)  # a fresh store: figures from this run only
    work.mkdir(parents=True)
    with Lab(workdir=work / "lab", delay1=3, delay2=3600, router="open", harvesters={}) as lab:
        state = work / "state"
        config = write_config(lab, work / "config.toml", state_dir=state, router="open")
        daemon = ApplianceDaemon(lab, config, state, work / "daemon.log").start()
        probe_id, probe = daemon.wait_for(lambda s: s.watched_probes(time.time())[:1] and
                                          tuple(s.watched_probes(time.time())[0])[:2], timeout=90)
        time.sleep(3)
        pid = daemon.process.pid
        scan_ns = lab.ns.name("scan1")
        target = lab.lan_address()
        results = []

        # The distributed scan: 200 /64s of the lab's scanner /48, each routed back through scan1.
        scanners = ipaddress.ip_network(lab.scanner_nets[0]).supernet(new_prefix=48)
        spread = list(scanners.subnets(new_prefix=64))[0x1000]
        before, figures, started = snapshot(daemon), process_figures(pid), time.time()
        done = lab.ns.exec(scan_ns, flood_cli(target, str(spread.supernet(new_prefix=56)), 200, 64, 100),
                           cwd=repo_root(), timeout=300)
        sent = json.loads(done.stdout)["sent"]
        time.sleep(HEALTH_WAIT)
        results.append(("distributed scan (200 /64s)", sent, before, snapshot(daemon), figures,
                        process_figures(pid), time.time() - started, None))

        for n, (name, network, sources, step, ports) in enumerate(FLOODS):
            before, figures, started = snapshot(daemon), process_figures(pid), time.time()
            # The many-/48s flood spares the lab's own networks and the /48 of the other floods.
            exclude = [*lab_networks(lab), "2001:db8::/48"] if step == 48 else []
            flood = lab.ns.popen(scan_ns, flood_cli(target, network, sources, step, ports, exclude,
                                                    "--pps", str(FLOOD_PPS)), cwd=repo_root(), stdout=-1, text=True)
            time.sleep(FLOOD_SECONDS / 2)
            stranger_net = f"2001:db8:0:fff{n}::/64"  # in the flooding /48 itself for the first two
            stranger = str(ipaddress.ip_network(stranger_net)[1])
            lab.ns.exec(scan_ns, flood_cli(probe, stranger_net, 1, 128, 12, (), "--port-base", str(7000 + 100 * n)),
                        cwd=repo_root(), timeout=60)
            sent = json.loads(flood.communicate(timeout=FLOOD_SECONDS * 3)[0])["sent"] + 12
            time.sleep(HEALTH_WAIT)
            store = daemon.store()
            touched = store.db.execute("SELECT count(*) FROM touches WHERE probe_id=? AND src=?",
                                       (probe_id, stranger)).fetchone()[0]
            store.close()
            results.append((f"flood from {name}", sent, before, snapshot(daemon), figures, process_figures(pid),
                            time.time() - started, touched))
        daemon.stop()

    for name, sent, before, after, fig_before, fig_after, seconds, touched in results:
        limited = {reason: after["gaps"].get(reason, 0) - before["gaps"].get(reason, 0)
                   for reason in ("flood", "flood-table", "probe-flood", "episode-cap", "scan-cap", "overrun",
                                  "seq-gap")}
        logged = after["inbound"] - before["inbound"]
        print(f"[{name}] sent {sent}; logged {logged}"
              + "".join(f"; {reason} {n}" for reason, n in limited.items() if n)
              + f"; unaccounted {sent - logged - limited['flood'] - limited['flood-table'] - limited['probe-flood']}")
        grown = (after["bytes"] - before["bytes"]) / 1e6
        print(f"[{name}] scans stored {after['scans'] - before['scans']}; store +{grown:.2f} MB "
              f"({grown / (seconds / 60):.2f} MB/min over {seconds:.0f} s)"
              + ("" if touched is None else
                 f"; the probe address's 12-port scan during it: {touched} of 12 touches stored"))
        cpu = fig_after["cpu_s"] - fig_before["cpu_s"]
        print(f"[{name}] daemon RSS {fig_before['rss_mib']:.0f} -> {fig_after['rss_mib']:.0f} MiB, peak "
              f"{fig_after['peak_mib']:.0f} MiB of the unit's {MEMORY_MAX_MIB}; CPU {cpu:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
