"""`make demo`: the whole appliance running against the lab, until Ctrl-C.

Builds the lab: a home router as OpenWrt ships it (SLAAC, a stateful IPv6 firewall that lets
only echo requests in, miniupnpd granting pinholes), pool DNS, two honest NTP servers and three
harvesters as real ones behave (`harv` feeds two nmap scans, `hping` one liveness ping, `hspread`
a scan spread over 20 sources of one /48, through a pinhole's ports); the appliance's own chronyd.
Starts the real daemon in the appliance's namespace, and prints the status as it changes: the
clock, the pinholes, each server watching, then HARVESTER with its touches. Everything stays
inside the lab's namespaces (2001:db8::/32) and is removed on Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.lab.appliance import ApplianceDaemon, write_config
from tests.lab.lab import Lab
from tests.lab.netns import NetnsUnavailable

DEMO_WINDOW = 600
HARVESTERS = {
    "harv": [{"delay": 5, "scanner": "scan1", "kind": "nmap"}, {"delay": 30, "scanner": "scan2", "kind": "nmap"}],
    "hping": [{"delay": 3, "scanner": "scan1", "kind": "ping"}],
    # Through the router's pinholes (tcp/8080, tcp/3389): 20 sources, one port each.
    "hspread": [{"delay": 10, "scanner": "spread", "kind": "spread", "ports": [8080, 3389] * 10, "per_source": 1}],
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make demo")
    parser.add_argument("--work", default="/tmp/harvestwatch-demo")
    parser.add_argument("--minutes", type=float, default=60.0, help="stop by itself after this long")
    parser.add_argument("--port", type=int, default=8080, help="the status page's port (default 8080)")
    parser.add_argument("--bind", default="127.0.0.1", metavar="ADDRESS",
                        help="the status page's address (default 127.0.0.1; 0.0.0.0 or :: to open it from "
                             "another machine of your LAN, which the page lets in: private and link-local "
                             "addresses only)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    stop = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.append(True))
    print("starting the lab (home router with miniupnpd, DNS, NTP pool, harvesters, scanners) ...", flush=True)
    try:
        lab = Lab(workdir=work / "lab", router="upnp", harvesters=HARVESTERS).start()
    except NetnsUnavailable as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return 1
    with lab:
        state = work / "state"
        # A fresh store each run: the lab's addresses are new each time, the last run's servers gone.
        shutil.rmtree(state, ignore_errors=True)
        # A 10-minute observation window: the honest servers turn from watching to clean within the demo.
        config = write_config(lab, work / "config.toml", state_dir=state, family_prefix=48,
                              observation=DEMO_WINDOW)
        daemon = ApplianceDaemon(lab, config, state, work / "daemon.log").start()
        print(f"appliance {lab.lan_address()} in namespace {lab.lan_ns}; pools: "
              + ", ".join(f"{name} -> {' '.join(members)}" for name, members in lab.pools.items()))
        print("harvesters " + ", ".join(f"{name} {address}" for name, address in lab.harvesters.items())
              + f"; honest {' '.join(lab.honest)}")
        print(f"daemon log: {work / 'daemon.log'}   store: {daemon.db_path}")
        # The page runs outside the lab, on this machine (loopback unless --bind): it only reads the store.
        host = f"[{args.bind}]" if ":" in args.bind else args.bind
        page = subprocess.Popen([sys.executable, "-m", "appliance", "serve", "--db", daemon.db_path,
                                 "--bind", f"{host}:{args.port}", "--workers", "1"],
                                stdout=subprocess.DEVNULL, stderr=open(work / "page.log", "w"))
        print(f"status: .venv/bin/harvestwatch status --db {daemon.db_path}")
        shown_host = "THIS-MACHINE'S-ADDRESS" if args.bind in ("0.0.0.0", "::") else host
        print(f"\n    open http://{shown_host}:{args.port}/   (the status page; log {work / 'page.log'})\n")
        print("Ctrl-C stops the demo and removes the lab.\n", flush=True)
        deadline = time.monotonic() + args.minutes * 60
        shown = ""
        try:
            while not stop and time.monotonic() < deadline and daemon.alive():
                if page.poll() is not None:
                    print(f"the status page stopped (port {args.port} in use? see {work / 'page.log'})",
                          file=sys.stderr)
                    break
                time.sleep(1)
                text = render(daemon)
                if text and text != shown:
                    print(time.strftime("%H:%M:%S"), "-" * 60)
                    print(text, flush=True)
                    shown = text
        finally:
            page.terminate()
            try:
                page.wait(timeout=10)
            except subprocess.TimeoutExpired:
                page.kill()
            daemon.stop()
            if not daemon.alive() and daemon.process.returncode not in (0, None):
                print(daemon.log_tail(), file=sys.stderr)
    print("lab removed")
    return 0


def render(daemon) -> str:
    if not Path(daemon.db_path).exists():
        return ""
    try:
        text = daemon.status_text()
    except Exception:  # the daemon may be creating the schema right now
        return ""
    # The heartbeat changes every flush; show only what a person would call a change.
    return "\n".join(line for line in text.splitlines() if not line.startswith("daemon:"))


if __name__ == "__main__":
    raise SystemExit(main())
