"""The seed's three Detective results, rebuilt as kernel log lines, come out the same."""
import random

import pytest

from appliance.synthlog import expand

# Every test here runs under both twins of the parser (conftest.twin).
pytestmark = pytest.mark.usefixtures("twin")

PREFIX = "2001:db8:1:1:"  # the seed's redacted "my:prefix:my:prefix"
SEED_SCANS = [
    # start, ports, scanner, target, [(time, sport, server)]
    ("19:33:10", 117, "2604:a880:800:10::970:a001", PREFIX + "7c0d:e6cb:8719:7d94",
     [("19:32:25", 42539, "2604:a880:1:20::a7:f007"), ("19:33:05", 59081, "2604:a880:1:20::a7:f009")]),
    ("20:01:19", 110, "2604:a880:800:10::89:c001", PREFIX + "c10a:acd0:af40:c259",
     [("20:01:13", 58417, "2604:a880:1:20::a7:f00c")]),
    ("19:12:02", 114, "2604:a880:800:10::ba:4001", PREFIX + "95b4:83a9:31a7:2e6",
     [("19:11:58", 52382, "2604:a880:1:20::a7:f005")]),
]


def seed_log():
    rng = random.Random(2016)
    lines = []
    for start, ports, scanner, target, triggers in SEED_SCANS:
        for at, sport, server in triggers:
            lines.append((at, f"HW-OUT IN= OUT=eth0 SRC={expand(target)} DST={expand(server)} LEN=76 TC=0 "
                              f"HOPLIMIT=64 FLOWLBL=0 PROTO=UDP SPT={sport} DPT=123 LEN=56"))
        for port in rng.sample(range(1, 10000), ports):
            proto = rng.choice(["TCP", "UDP"])
            lines.append((start, f"HW-IN IN=eth0 OUT= SRC={expand(scanner)} DST={expand(target)} LEN=60 TC=0 "
                                 f"HOPLIMIT=50 FLOWLBL=0 PROTO={proto} SPT=44444 DPT={port} "
                                 + ("WINDOW=1024 RES=0x00 SYN URGP=0" if proto == "TCP" else "LEN=8")))
    lines.sort(key=lambda item: item[0])
    return "".join(f"Jan 13 {at} gw kernel: {text}\n" for at, text in lines)


def test_seed_detective_output(tmp_path, analyze_json, run_cli):
    log = tmp_path / "kern.log"
    log.write_text(seed_log())
    doc, _ = analyze_json("--year", "2016", log)
    found = {s["target"]: s for s in doc["scans"]}
    assert len(found) == 3
    for start, ports, scanner, target, triggers in SEED_SCANS:
        scan = found[target]
        assert scan["start"] == f"2016-01-13T{start}.000Z"
        assert (scan["scanner"], scan["port_count"], scan["duration"]) == (scanner, ports, 0.0)
        got = sorted((c["time"][11:19], c["sport"], c["dst"], c["dport"], c["lag"]) for c in scan["candidates"])
        want = sorted((at, sport, server, 123,
                       float(int(start[-2:]) - int(at[-2:]) + 60 * (int(start[3:5]) - int(at[3:5]))))
                      for at, sport, server in triggers)
        assert got == want
    # A single trigger to a single server from an address that sent nothing else: certain.
    assert found[PREFIX + "c10a:acd0:af40:c259"]["attribution"] == "certain"
    assert found[PREFIX + "7c0d:e6cb:8719:7d94"]["attribution"] == "candidate"
    # The human report reads like the Detective's.
    code, out, _ = run_cli("analyze", "--year", "2016", log)
    assert code == 0
    assert ("SCAN DETECTED: startTime=2016-01-13T19:33:10.000Z numPortsScanned=117" in out)
    # The seed prints lag=47.0s/7.0s for these packets, but its own times (19:32:25, 19:33:05 against
    # a 19:33:10 start) give 45 s and 5 s; we report the lag the times give.
    assert "lag=45.0s @2016-01-13T19:32:25.000Z  [2001:db8:1:1:7c0d:e6cb:8719:7d94]:42539 -> " \
           "[2604:a880:1:20::a7:f007]:123 UDP" in out
    assert "One or more of these packets may have triggered the scan..." in out
