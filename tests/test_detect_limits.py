"""What bounds the live detector and store under a flood: the episode cap and the hourly scan quota."""
from __future__ import annotations

from appliance.detect.quota import ScanQuota
from appliance.detect.scans import PORTSCAN, Scan, ScanDetector
from appliance.packet import INBOUND, Packet

PROBE, OWN = "2001:db8:1:1::7", "2001:db8:1:1::1"


def packets(count: int, dst: str, t0: float = 1000.0, ports: int = 1) -> list[Packet]:
    return [Packet(t0 + i * 1e-4, f"2001:db8:{i >> 16:x}:{i & 0xffff:x}::1", dst, "UDP", 1, 20000 + port,
                   INBOUND, "") for i in range(count) for port in range(ports)]


def test_the_detector_follows_a_bounded_number_of_sources_and_counts_the_rest():
    found = []
    detector = ScanDetector(found.append, min_ports=3, window=60, min_hosts=8, max_open=100,
                            keep=lambda address: address == PROBE)
    detector.feed(packets(500, OWN, ports=3))
    assert detector.open_episodes() == 200          # 100 pairs and their 100 sweeps
    assert detector.refused == 400 * 3               # every packet of the 400 sources beyond
    # Probe addresses may open as many again: a flood elsewhere does not blind them.
    detector.feed(packets(150, PROBE, t0=1001.0, ports=3))
    assert detector.refused_keep == 50 * 3
    detector.flush()
    assert sum(1 for scan in found if scan.target == PROBE) == 100
    assert sum(1 for scan in found if scan.target == OWN) == 100


def test_without_a_cap_analyze_follows_everything():
    detector = ScanDetector(lambda scan: None, min_ports=3, window=60, min_hosts=8)
    detector.feed(packets(500, OWN, ports=3))
    assert detector.open_episodes() == 1000 and detector.refused == 0


def scan(scanner: str, target: str = OWN, start: float = 0.0, packets: int = 10) -> Scan:
    return Scan(PORTSCAN, scanner, target, start, start + 1, packets, [("UDP", p) for p in range(packets)])


def test_the_store_takes_a_quota_of_scans_per_network_and_hour_and_counts_the_rest():
    quota = ScanQuota(lambda s: s.target == PROBE, per_network=3, total=5)
    one_network = [scan(f"2001:db8:5:{n:x}::1") for n in range(6)]
    kept, refused = quota.admit(one_network, now=7200.0)
    assert len(kept) == 3 and refused == 30
    # An open scan refused is not counted until it is final; one admitted stays admitted.
    assert quota.admit([scan("2001:db8:5:99::1")], now=7201.0, final=False) == ([], 0)
    assert quota.admit(kept, now=7202.0)[0] == kept
    others = [scan(f"2001:db8:{n + 6:x}::1") for n in range(4)]
    kept, refused = quota.admit(others, now=7203.0)
    assert len(kept) == 2 and refused == 20          # the total of 5 an hour
    probe_scans = [scan(f"2001:db8:5:{n + 50:x}::1", target=PROBE) for n in range(10)]
    assert quota.admit(probe_scans, now=7204.0) == (probe_scans, 0)   # never refused
    kept, refused = quota.admit(one_network, now=10800.0)  # the next hour
    assert len(kept) == 3 and refused == 30


def test_the_live_store_lists_a_bounded_number_of_ports_and_keeps_the_true_count(tmp_path):
    from appliance.store.db import Store
    store = Store(str(tmp_path / "hw.sqlite"))
    store.max_ports = 100
    everything = Scan(PORTSCAN, "2001:db8:5::1", OWN, 0.0, 1.0, 65535, [("TCP", p) for p in range(1, 65536)])
    store.add_scans([everything])
    (row,) = store.scans()
    assert row["port_count"] == 65535 and row["packets"] == 65535
    assert row["ports"].count("TCP") == 100
    store.close()


def test_a_scan_stored_while_open_stays_admitted_into_the_next_hour():
    quota = ScanQuota(lambda s: False, per_network=1, total=10)
    going_on = scan("2001:db8:5::1", start=7199.0)
    assert quota.admit([going_on], now=7199.5, final=False) == ([going_on], 0)   # stored, still open
    assert len(quota.admit([scan("2001:db8:5::2", start=7201.0)], now=7201.0)[0]) == 1  # the new hour's share
    # The open scan, now over, is stored whole, though its /48's share of the new hour is spent.
    assert quota.admit([going_on], now=7202.0) == ([going_on], 0)
