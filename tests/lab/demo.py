"""`make demo`: the whole appliance running against the lab, until Ctrl-C.

Builds the lab (router with SLAAC, pool DNS, two honest NTP servers, a harvester whose sidecar
feeds two scanners), starts the real daemon in the appliance's namespace, and prints the
verdicts as they change. Everything stays inside the lab's namespaces (2001:db8::/32) and is
removed on Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import io
import signal
import sys
import time
from pathlib import Path

from appliance.report.status import write_status
from tests.lab.appliance import ApplianceDaemon, write_config
from tests.lab.lab import Lab
from tests.lab.netns import NetnsUnavailable


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make demo")
    parser.add_argument("--work", default="/tmp/harvestwatch-demo")
    parser.add_argument("--minutes", type=float, default=60.0, help="stop by itself after this long")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    stop = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.append(True))
    print("starting the lab (router, DNS, NTP pool, harvester, scanners) ...", flush=True)
    try:
        lab = Lab(workdir=work / "lab").start()
    except NetnsUnavailable as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return 1
    with lab:
        state = work / "state"
        config = write_config(lab, work / "config.toml", state_dir=state)
        daemon = ApplianceDaemon(lab, config, state, work / "daemon.log").start()
        print(f"appliance {lab.lan_address()} in namespace {lab.lan_ns}; pools: "
              + ", ".join(f"{name} -> {' '.join(members)}" for name, members in lab.pools.items()))
        print(f"harvester {lab.harvester}; honest {' '.join(lab.honest)}")
        print(f"daemon log: {work / 'daemon.log'}   store: {daemon.db_path}")
        print(f"status: .venv/bin/harvestwatch status --db {daemon.db_path}   (the web page is issue 3)")
        print("Ctrl-C stops the demo and removes the lab.\n", flush=True)
        deadline = time.monotonic() + args.minutes * 60
        shown = ""
        try:
            while not stop and time.monotonic() < deadline and daemon.alive():
                time.sleep(1)
                text = render(daemon)
                if text and text != shown:
                    print(time.strftime("%H:%M:%S"), "-" * 60)
                    print(text, flush=True)
                    shown = text
        finally:
            daemon.stop()
            if not daemon.alive() and daemon.process.returncode not in (0, None):
                print(daemon.log_tail(), file=sys.stderr)
    print("lab removed")
    return 0


def render(daemon) -> str:
    if not Path(daemon.db_path).exists():
        return ""
    out = io.StringIO()
    store = daemon.store()
    try:
        write_status(out, store)
    except Exception:  # the daemon may be creating the schema right now
        return ""
    finally:
        store.close()
    # The heartbeat changes every flush; show only what a person would call a change.
    return "\n".join(line for line in out.getvalue().splitlines() if not line.startswith("daemon:"))


if __name__ == "__main__":
    raise SystemExit(main())
