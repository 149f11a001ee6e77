"""How numbers, ports and spans read: the words the page, the CLI and the notifications share."""
from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from appliance.report.human import lag_text, plural, port_ranges


def test_plurals_read_right():
    assert plural(1, "scan") == "1 scan" and plural(0, "scan") == "0 scans" and plural(2, "scan") == "2 scans"
    assert plural(2, "family") == "2 families" and plural(3, "scanner family") == "3 scanner families"
    assert plural(2, "address") == "2 addresses" and plural(1, "probe address") == "1 probe address"
    assert plural(2, "NTP reply") == "2 NTP replies" and plural(2, "day") == "2 days"
    assert plural(12_345, "packet") == "12,345 packets"


def test_ports_read_as_ranges_by_protocol():
    ports = [("tcp", p) for p in range(1, 101)] + [("udp", p) for p in range(1, 101)]
    assert port_ranges(ports) == "TCP 1–100, UDP 1–100"
    assert port_ranges([{"proto": "UDP", "port": 53}, {"proto": "TCP", "port": 443}, {"proto": "TCP", "port": 22},
                        {"proto": "TCP", "port": 23}]) == "TCP 22, 23, 443, UDP 53"
    assert port_ranges([("ICMPV6", None), ("TCP", 80)]) == "TCP 80, ICMPV6"
    assert port_ranges([]) == ""


@given(st.sets(st.integers(min_value=0, max_value=65535), max_size=300))
def test_port_ranges_name_exactly_the_ports_given(ports):
    text = port_ranges([("TCP", p) for p in ports])
    named = set()
    for part in re.findall(r"\d+–\d+|\d+", text):
        low, _, high = part.partition("–")
        named |= set(range(int(low), int(high or low) + 1))
    assert named == ports
    assert "–" not in text or all(int(b) - int(a) >= 2 for a, b in re.findall(r"(\d+)–(\d+)", text))


def test_lags_read_at_a_glance():
    assert lag_text(5.097) == "5.1 s" and lag_text(10800.0) == "3 h 0 min" and lag_text(None) == "—"
    assert lag_text(61) == "1 min" and lag_text(90061) == "1 d 1 h"
