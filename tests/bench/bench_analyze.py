"""`make bench`: lines/s and max RSS of `harvestwatch analyze` on a deterministic synthetic log,
beside a bare one-regex Python pass over the same file as a yardstick. Prints figures; asserts
nothing (speed goals are read from the figures, not enforced by tests)."""
import argparse
import os
import subprocess
import sys
import tempfile
import time

YARDSTICK = r"""
import re, sys
rx = re.compile(r"SRC=(\S+) DST=(\S+) .*?PROTO=(\S+)(?: SPT=(\d+) DPT=(\d+))?")
n = 0
with open(sys.argv[1], encoding="utf-8", errors="replace") as log:
    for line in log:
        n += 1
        rx.search(line)
"""


def measure(argv):
    """Run argv, return (seconds, max RSS in MiB) of that child alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"benchmark run failed: {' '.join(argv)}\n{err}")
    return elapsed, usage.ru_maxrss / 1024, err.strip().splitlines()[-1] if err.strip() else ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", default=tempfile.gettempdir())
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    log = os.path.join(args.work, f"bench-{args.lines}-{args.seed}.log")
    if not os.path.exists(log):
        print(f"generating {log} ...", flush=True)
        subprocess.run([sys.executable, "-m", "appliance.synthlog", "--lines", str(args.lines),
                        "--seed", str(args.seed), "-o", log + ".part"], check=True)
        os.replace(log + ".part", log)
    lines = sum(1 for _ in open(log, "rb"))
    size = os.path.getsize(log) / 2**20
    print(f"input: {log}: {lines} lines, {size:.0f} MiB, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as scratch:
        runs = [
            ("yardstick: bare one-regex Python pass", [sys.executable, "-c", YARDSTICK, log]),
            ("harvestwatch analyze (text report, temporary store)",
             [sys.executable, "-m", "appliance", "analyze", log]),
            ("harvestwatch analyze --json --db", [sys.executable, "-m", "appliance", "analyze", "--json", "--db",
                                                  os.path.join(scratch, "bench.sqlite"), log]),
        ]
        for name, argv in runs:
            seconds, rss, last = measure(argv)
            print(f"{name:55s} {seconds:7.2f} s  {lines / seconds:10,.0f} lines/s  max RSS {rss:6.1f} MiB")
            if last:
                print(f"    {last}")


if __name__ == "__main__":
    main()
