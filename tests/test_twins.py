"""The parser's C leaf (appliance/parse/_speedups.c) finds what its Python twin finds, on every input.

Each case runs `analyze` twice over the same files, once per twin of `line_fields`, and compares
everything a user can see: stored scans, candidates and their ranks, contacts, suspects, the text
report, and the line/record/skip counts. The leaf hands back every line it is not sure about, so
the packets must come out the same whichever lines it took itself. Skipped where it is not built."""
import gzip
import io
import os
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_seed import seed_log

from appliance.analyze import Settings, analyze
from appliance.parse import netfilter
from appliance.report.text import write_text
from appliance.store.db import Store
from appliance.synthlog import expand, generate


def test_the_c_leaf_is_built():
    # `make venv` installs a C compiler and builds it; without it analyze is about twice as slow.
    if os.environ.get("HARVESTWATCH_PURE"):
        pytest.skip("HARVESTWATCH_PURE is set: the C leaf is left out on purpose")
    assert netfilter.c_line_fields is not None, "appliance/parse/_speedups was not built (see `make venv`)"


needs_leaf = pytest.mark.skipif(netfilter.c_line_fields is None, reason="the parser's C leaf is not built")


def run_twin(folder, paths, settings, twin, monkeypatch):
    monkeypatch.setattr(netfilter, "line_fields", netfilter.c_line_fields if twin == "c" else netfilter.py_line_fields)
    db_path = os.path.join(folder, f"{twin}.sqlite")
    for leftover in (db_path, db_path + "-wal", db_path + "-shm"):
        if os.path.exists(leftover):
            os.remove(leftover)
    store = Store(db_path)
    try:
        result = analyze([str(p) for p in paths], store, settings)
        store.select_scans(result.scan_ids)
        report = io.StringIO()
        write_text(report, store, settings.lookback)
        db = store.db
        seen = {
            "scans": db.execute("SELECT kind, scanner, scanner_net, target, start, end, packets, port_count, ports, "
                                "protocols, targets, attribution FROM scans ORDER BY start, kind, scanner, target"
                                ).fetchall(),
            "candidates": db.execute("SELECT s.kind, s.scanner, s.target, s.start, c.ts, c.src, c.sport, c.dst, "
                                     "c.dport, c.proto, c.lag, c.rank FROM candidates c JOIN scans s ON "
                                     "s.id = c.scan_id ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10").fetchall(),
            "contacts": db.execute("SELECT * FROM contacts ORDER BY src, proto, dst, dport").fetchall(),
            "suspects": db.execute("SELECT * FROM suspects ORDER BY proto, dst, dport").fetchall(),
        }
        seen = {name: [tuple(row) for row in rows] for name, rows in seen.items()}
        seen["report"] = report.getvalue()
        seen["counts"] = (result.lines, result.records, dict(result.skipped))
        return seen
    finally:
        store.close()


def assert_same(folder, paths, settings, monkeypatch):
    python = run_twin(folder, paths, settings, "python", monkeypatch)
    compiled = run_twin(folder, paths, settings, "c", monkeypatch)
    for name in python:
        assert compiled[name] == python[name], f"the twins differ in {name}"
    return python


@needs_leaf
@pytest.mark.parametrize("settings", [
    Settings(),
    Settings(min_ports=4, window=0.5, min_hosts=3, lookback=20.0),
    Settings(min_ports=30, window=600.0, lookback=3600.0, tz="America/New_York"),
], ids=["defaults", "tight", "wide-new-york"])
def test_synthetic_log(tmp_path, monkeypatch, settings):
    log = tmp_path / "kern.log"
    with open(log, "w") as out:
        truth = generate(out, 30_000, seed=5)
    seen = assert_same(tmp_path, [log], settings, monkeypatch)
    assert seen["scans"] and seen["candidates"] and seen["contacts"]
    if settings == Settings():
        assert len(seen["scans"]) == len(truth["triggered"]) + len(truth["untriggered"]) + len(truth["sweeps"])


@needs_leaf
def test_rotated_gzip_files_and_a_year(tmp_path, monkeypatch):
    # Two files in the wrong order, one gzip: the clock and the episodes carry across files.
    buffer = io.StringIO()
    generate(buffer, 12_000, seed=9)
    lines = buffer.getvalue().splitlines(keepends=True)
    half = len(lines) // 2
    older, newer = tmp_path / "kern.log.1.gz", tmp_path / "kern.log"
    with gzip.open(older, "wt") as out:
        out.writelines(lines[:half])
    newer.write_text("".join(lines[half:]))
    assert_same(tmp_path, [newer, older], Settings(year=2025), monkeypatch)


@needs_leaf
def test_seed_scans(tmp_path, monkeypatch):
    log = tmp_path / "kern.log"
    log.write_text(seed_log())
    seen = assert_same(tmp_path, [log], Settings(year=2016), monkeypatch)
    assert len(seen["scans"]) == 3


@needs_leaf
def test_psad_fixtures(tmp_path, monkeypatch, psad_fixture):
    folder = os.path.dirname(psad_fixture("README.md"))
    logs = sorted(os.path.join(folder, name) for name in os.listdir(folder) if name != "README.md")
    for log in logs:
        assert_same(tmp_path, [log], Settings(year=2008, min_ports=5), monkeypatch)


# -- arbitrary logs: every wrapper, layout and flaw the parser knows, mixed --------------------
SCANNERS = ["2001:db8:5ca0:10::a001", "2001:db8:5ca0:10::b001", "192.0.2.7", "::ffff:198.51.100.9"]
TARGETS = ["2001:db8:1:1::10", "2001:db8:1:1:a:b:c:d", "2001:db8:1:1::", "192.0.2.200", "::1",
           "2001:db8:0:0:1::1", "2001:db8::1:0:0:1", "2001:db8:0:1:2:3:4:5", "2001:db8:1:0:2:0:0:3"]
SERVERS = ["2001:db8:f00d:20::a7:f001", "2001:db8:a1:1::123", "198.51.100.123"]


def spell(address, rng):
    """The kernel's spelling (IPv6 expanded), or now and then another one the parser must take."""
    if ":" not in address:
        return address
    style = rng.random()
    if style < 0.8:
        return expand(address)
    if style < 0.9:
        return expand(address).upper()
    return address


def wrapper(ts, rng):
    """One of the line wrappers, for epoch second `ts` (boot at 1768262000)."""
    t = time.gmtime(int(ts))
    frac = f"{ts % 1:.6f}"[1:]
    up = f"[{ts - 1768262000:12.6f}] "
    kind = rng.randrange(8)
    if kind == 0:
        return time.strftime("%b %d %H:%M:%S", t).replace(" 0", "  ", 1) + " gw kernel: " + up
    if kind == 1:
        return time.strftime("%b %e %H:%M:%S", t) + " gw kernel: "
    if kind == 2:
        return time.strftime("%Y-%m-%dT%H:%M:%S", t) + frac + "+00:00 gw kernel: "
    if kind == 3:
        return time.strftime("%Y-%m-%d %H:%M:%S", t) + rng.choice(["Z", "+0100", "-05:00", ""]) + " gw kernel: "
    if kind == 4:
        return f"4,{rng.randrange(10**6)},{int((ts - 1768262000) * 1e6)},-;"
    if kind == 5:
        return up
    if kind == 6:
        return "kern.log:" + time.strftime("%b %e %H:%M:%S", t) + " gw kernel: " + up
    return time.strftime("%b %e %H:%M:%S", t) + " gw " + up + "gw kernel: "


def record(ts, rng, last):
    """One record; `last` holds the previous one's addresses, which come again more often than not
    (a scan is a run of one source and one destination)."""
    inbound = rng.random() < 0.7
    if inbound:
        if last.get("in") is None or rng.random() < 0.3:
            last["in"] = rng.choice(SCANNERS), rng.choice(TARGETS)
        src, dst = last["in"]
        iif, oif = "eth0", rng.choice(["", "", "wlan0"])
    else:
        if last.get("out") is None or rng.random() < 0.5:
            last["out"] = rng.choice(TARGETS), rng.choice(SERVERS)
        src, dst = last["out"]
        iif, oif = rng.choice(["", "", "br0"]), "eth0"
    proto = rng.choice(["TCP", "TCP", "UDP", "UDPLITE", "ICMPv6", "ICMP", "47", "SCTP"])
    if proto in ("ICMPv6", "ICMP"):
        tail = f"PROTO={proto} TYPE={rng.choice([128, 135, 3, 70000])} CODE=0 ID=1 SEQ=2 "
    elif proto == "47":
        tail = "PROTO=47 "
    else:
        sport = rng.choice([rng.randrange(1, 65536), 0, 65535, 99999])
        tail = f"PROTO={proto} SPT={sport} DPT={rng.randrange(1, 40)} " + rng.choice(
            ["WINDOW=1024 RES=0x00 SYN URGP=0 ", "LEN=8 ", "", "INCOMPLETE [8 bytes] "])
        if rng.random() < 0.1:
            tail = f"PROTO={proto}" + rng.choice(["", " ", " INCOMPLETE [4 bytes]", " SPT=12", "\t"])
    mac = rng.choice(["MAC=b8:27:eb:00:00:01:f8:1a:67:00:00:02:86:dd ", "", "PHYSIN=eth1 "])
    prefix = rng.choice(["HW-IN ", "HW-OUT ", "[UFW BLOCK] ", "DROP ", "", "x IN=y "])
    return (f"{prefix}IN={iif} OUT={oif} {mac}SRC={spell(src, rng)} DST={spell(dst, rng)} LEN=60 TC=0 "
            f"HOPLIMIT=51 FLOWLBL=0 {tail}")


def damage(line, rng):
    kind = rng.randrange(12)
    if kind == 0:
        return line[: rng.randrange(len(line))]
    if kind == 1:
        at = rng.randrange(len(line))
        return line[:at] + rng.choice(["\x00", "\r", "ÿ", "\ufffd", " ", "PROTO=", "IN=", "SRC="]) + line[at:]
    if kind == 2:
        return line.replace("Jan", "Foo").replace("2026-", "2026-13-")
    if kind == 3:
        return rng.choice(["usb 1-1: new device", "", "   ", "SRC=x IN=y", "\u2028IN= SRC= PROTO=TCP"])
    return line


@st.composite
def logs(draw):
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    ts = 1768262400.0 + draw(st.floats(0, 86400 * 300))
    lines, last = [], {}
    for _ in range(draw(st.integers(1, 400))):
        step = rng.choice([0.0, 0.001, 0.05, 0.3, 1.0, 2.0, 5.0, 30.0, 61.0, 400.0, -1.5, -120.0])
        ts = max(1768262001.0, ts + step)
        if rng.random() < 0.3:
            ts = float(int(ts))  # whole seconds: ties with the window and lookback edges
        line = wrapper(ts, rng) + record(ts, rng, last)
        lines.append(damage(line, rng) if rng.random() < 0.15 else line)
    return "\n".join(lines) + rng.choice(["\n", "", "\r\n"])


@needs_leaf
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=logs(), fixed_year=st.booleans())
def test_arbitrary_logs(tmp_path_factory, monkeypatch, text, fixed_year):
    folder = tmp_path_factory.mktemp("arbitrary")
    log = folder / "kern.log"
    log.write_bytes(text.encode("utf-8", "surrogatepass"))
    os.utime(log, (1768262400 + 86400 * 400,) * 2)
    assert_same(folder, [log], Settings(min_ports=3, window=5.0, min_hosts=3, lookback=30.0,
                                        year=2026 if fixed_year else None, boot_time=1768262000.0), monkeypatch)


@needs_leaf
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes(tmp_path_factory, monkeypatch, data):
    folder = tmp_path_factory.mktemp("bytes")
    log = folder / "kern.log"
    log.write_bytes(data + b"\nJan 13 19:33:10 gw kernel: [ 1.0] IN=eth0 OUT= SRC=2001:0db8:0000:0000:0000:0000:"
                           b"0000:0001 DST=2001:0db8:0000:0000:0000:0000:0000:0002 PROTO=TCP SPT=1 DPT=2 \n")
    assert_same(folder, [log], Settings(year=2026), monkeypatch)


@needs_leaf
def test_more_sources_than_the_address_cache_holds(tmp_path, monkeypatch):
    # A distributed scan: 9,000 sources, one destination, so the address cache is emptied while a
    # line's destination is the one seen last.
    lines = [f"Jan 13 19:{n // 600:02d}:{n // 10 % 60:02d} gw kernel: [{1000 + n / 10:.6f}] HW-IN IN=eth0 OUT= "
             f"SRC=198.51.{n // 250}.{n % 250} DST=192.0.2.2 LEN=60 PROTO=TCP SPT=4000 DPT={n % 50 + 1} "
             f"WINDOW=1024 SYN URGP=0" for n in range(9000)]
    log = tmp_path / "kern.log"
    log.write_text("\n".join(lines) + "\n")
    seen = assert_same(tmp_path, [log], Settings(year=2026, min_ports=3, min_hosts=3), monkeypatch)
    assert seen["counts"][:2] == (9000, 9000)


@needs_leaf
def test_a_leap_second_stamp_spoils_nothing_else_in_its_minute(tmp_path, monkeypatch):
    body = ("HW-IN IN=eth0 OUT= SRC=2001:0db8:0000:0000:0000:0000:0000:0001 "
            "DST=2001:0db8:0000:0000:0000:0000:0000:0002 LEN=60 PROTO=TCP SPT=1 DPT={} ")
    log = tmp_path / "kern.log"
    log.write_text("".join(f"Jan 13 19:33:{second} gw kernel: {body.format(port)}\n"
                           for port, second in enumerate(["60", "10", "11", "61", "12"], start=1)))
    os.utime(log, (1768262400 + 86400 * 30,) * 2)
    seen = assert_same(tmp_path, [log], Settings(), monkeypatch)
    assert seen["counts"] == (5, 3, {"bad-timestamp": 2})
