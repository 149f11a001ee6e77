"""`make bench`: lines/s and max RSS of `harvestwatch analyze` on a deterministic synthetic log,
beside a bare one-regex Python pass over the same file as a yardstick. Prints figures; asserts
nothing (speed goals are read from the figures, not enforced by tests).

Runs: the yardstick; `analyze` as a user runs it (text report, temporary store) and with
`--json --db`; the parse -> detect -> attribute stages alone (no store, no report), to show where
the time goes; `analyze` with the parser's Python twin instead of its C leaf (HARVESTWATCH_PURE=1,
as on a Pi); and `analyze` on the log of a busy LAN (the same generator with fewer scans, so that
more of its lines are ordinary contacts, each stored once), where storing contacts takes most of
the time.

This machine's speed varies from run to run (by up to 1.7x on the 2-core VM it was written on), so
every run is repeated (--repeat, rounds interleaved so that a slow spell hits every run alike) and
the fastest and slowest times are printed; the ratio to the yardstick is taken fastest to fastest."""
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


STAGES_ONLY = r"""
import sys
from collections import Counter
from appliance.analyze import CONTACT_BATCH, Settings, few_collections
from appliance.attribute.triggers import TriggerHistory
from appliance.capture.files import open_log, read_blocks
from appliance.detect.scans import ScanDetector
from appliance.parse import netfilter
from appliance.parse.clock import LineClock, file_reference_time
settings, found = Settings(), []  # the scans are counted, not kept: a store would not hold them
parser = netfilter.NetfilterParser(LineClock(reference=file_reference_time(sys.argv[1])), Counter())
history = TriggerHistory(settings.lookback)
detector = ScanDetector(lambda scan: found.append(1), min_ports=settings.min_ports, window=settings.window,
                        min_hosts=settings.min_hosts, candidates=history.candidates)
with few_collections(), open_log(sys.argv[1]) as stream:
    for block in read_blocks(stream):
        packets = parser.parse(block)
        history.feed(packets)
        detector.feed(packets)
        if len(history.contacts) >= CONTACT_BATCH:
            history.take_contacts()
    detector.flush()
print(f"{netfilter.line_fields.__name__}: {parser.lines} lines, {len(found)} scans and sweeps", file=sys.stderr)
"""


def measure(argv, env=None):
    """Run argv, return (seconds, max RSS in MiB) of that child alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"benchmark run failed: {' '.join(argv)}\n{err}")
    return elapsed, usage.ru_maxrss / 1024, err.strip().splitlines()[-1] if err.strip() else ""


# The busy-LAN log: eleven episodes of noise alone after each scan or sweep (a twelfth of the
# benchmark log's scans, each line more likely an ordinary contact of an address nobody scans).
BUSY_QUIET = 11


def synthetic_log(work, lines, seed, quiet=0):
    """The synthetic log of these settings, generated once and kept in `work`."""
    log = os.path.join(work, f"bench-{lines}-{seed}.log" if not quiet else f"busy-{lines}-{seed}-{quiet}.log")
    if not os.path.exists(log):
        print(f"generating {log} ...", flush=True)
        subprocess.run([sys.executable, "-m", "appliance.synthlog", "--lines", str(lines), "--seed", str(seed),
                        "--quiet", str(quiet), "-o", log + ".part"], check=True)
        os.replace(log + ".part", log)
    return log


def count_lines(path):
    with open(path, "rb") as log:
        return sum(1 for _ in log)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--work", default=tempfile.gettempdir())
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    log = synthetic_log(args.work, args.lines, args.seed)
    busy = synthetic_log(args.work, args.lines, args.seed, quiet=BUSY_QUIET)
    lines, busy_lines = count_lines(log), count_lines(busy)
    size = os.path.getsize(log) / 2**20
    print(f"input: {log}: {lines} lines, {size:.0f} MiB, {os.cpu_count()} CPUs; best and worst of {args.repeat} runs")
    from appliance.parse import netfilter
    print("parser's C leaf: " + ("built" if netfilter.c_line_fields is not None else
                                 "NOT BUILT (no C compiler at install time): the Python twin runs"))
    pure = dict(os.environ, HARVESTWATCH_PURE="1")
    with tempfile.TemporaryDirectory() as scratch:
        runs = [
            ("yardstick: bare one-regex Python pass", [sys.executable, "-c", YARDSTICK, log], None, lines),
            ("harvestwatch analyze (text report, temporary store)",
             [sys.executable, "-m", "appliance", "analyze", log], None, lines),
            ("harvestwatch analyze --json --db", [sys.executable, "-m", "appliance", "analyze", "--json", "--db",
                                                  os.path.join(scratch, "bench.sqlite"), log], None, lines),
            ("  parse -> detect -> attribute alone (no store/report)", [sys.executable, "-c", STAGES_ONLY, log],
             None, lines),
            ("harvestwatch analyze, Python twin (HARVESTWATCH_PURE=1)",
             [sys.executable, "-m", "appliance", "analyze", log], pure, lines),
            (f"harvestwatch analyze, busy-LAN log ({busy_lines} lines)",
             [sys.executable, "-m", "appliance", "analyze", busy], None, busy_lines),
        ]
        results = {name: [] for name, *_ in runs}
        for _ in range(args.repeat):
            for name, argv, env, count in runs:
                if "--db" in argv and os.path.exists(argv[argv.index("--db") + 1]):
                    os.remove(argv[argv.index("--db") + 1])  # each run imports into a new store
                results[name].append(measure(argv, env))
        for name, argv, env, count in runs:
            times = sorted(seconds for seconds, _, _ in results[name])
            rss = max(rss for _, rss, _ in results[name])
            print(f"{name:55s} {times[0]:6.2f}-{times[-1]:5.2f} s  {count / times[0]:10,.0f} lines/s  "
                  f"max RSS {rss:6.1f} MiB")
            if results[name][-1][2]:
                print(f"    {results[name][-1][2]}")
        best = {name: min(seconds for seconds, _, _ in results[name]) for name in results}
        yardstick = best[runs[0][0]]
        for name in (runs[1][0], runs[4][0]):
            print(f"{name}: {best[name] / yardstick:.1f}x the yardstick (fastest runs; target 4x)")


if __name__ == "__main__":
    main()
