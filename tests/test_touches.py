"""Touches: every unsolicited packet from the internet that reaches a probe address is evidence."""
from appliance.detect.touches import TouchDetector
from appliance.lan import LanNetworks
from appliance.packet import FORWARDED, INBOUND, OUTBOUND, Packet

PROBE = "2001:db8:1:1:a1b2:c3d4:e5f6:1"
OTHER = "2001:db8:1:1::10"                  # the appliance's stable address: no probe address
SCANNER = "2001:db8:5ca1:10::1"
ROUTER = "2001:db8:1:1::1"                  # on the LAN
T0 = 1_700_000_000.0


def detector(*lan: str) -> TouchDetector:
    touches = TouchDetector(LanNetworks(lan))
    touches.watch(PROBE, 7, T0, T0 + 3600)
    return touches


def packet(ts, src, dst, proto="TCP", dport=443, direction=INBOUND) -> Packet:
    return Packet(ts, src, dst, proto, None if proto == "ICMPv6" else 40000, dport, direction, "HW-IN")


def test_one_packet_of_any_kind_from_outside_is_a_touch():
    touches = detector()
    touches.feed([packet(T0 + 5, SCANNER, PROBE, "ICMPv6", 128),       # one echo request
                  packet(T0 + 6, SCANNER, PROBE, "TCP", 443),           # one SYN
                  packet(T0 + 7, "2001:db8:5ca1:11::2", PROBE, "UDP", 1900),
                  packet(T0 + 8, SCANNER, PROBE, "TCP", 443)])          # the same again: counted
    assert touches.take() == {(7, SCANNER, "ICMPv6", 128): [T0 + 5, T0 + 5, 1],
                              (7, SCANNER, "TCP", 443): [T0 + 6, T0 + 8, 2],
                              (7, "2001:db8:5ca1:11::2", "UDP", 1900): [T0 + 7, T0 + 7, 1]}
    assert touches.take() == {}  # handed over once


def test_the_lan_and_the_appliance_itself_are_no_evidence():
    touches = detector("2001:db8:99::/48")
    touches.feed([
        packet(T0 + 1, ROUTER, PROBE),                                # the probe address's own /64
        packet(T0 + 2, "fe80::1", PROBE, "ICMPv6", 135),              # neighbour discovery, link-local
        packet(T0 + 3, "fd00:1::5", PROBE),                           # ULA: a home network's own
        packet(T0 + 4, "2001:db8:99:3::7", PROBE),                    # a configured LAN prefix
        packet(T0 + 5, "::1", PROBE),
        packet(T0 + 6, SCANNER, OTHER),                               # not a probe address
        packet(T0 + 7, PROBE, SCANNER, "UDP", 123, OUTBOUND),         # the probe itself, going out
        packet(T0 + 8, SCANNER, PROBE, direction=FORWARDED),          # passing through, not to us
        packet(T0 - 1, SCANNER, PROBE),                               # before the address existed
        packet(T0 + 3700, SCANNER, PROBE),                            # after its window
    ])
    assert touches.take() == {}


def test_a_probe_address_s_own_lan_traffic_is_no_trigger_but_its_probe_is():
    touches = detector()
    pinhole_request = packet(T0 + 1, PROBE, ROUTER, "TCP", 5000, OUTBOUND)
    probe_packet = packet(T0 + 2, PROBE, "2001:db8:f00d::123", "UDP", 123, OUTBOUND)
    ordinary = packet(T0 + 3, OTHER, ROUTER, "UDP", 53, OUTBOUND)
    assert touches.triggers([pinhole_request, probe_packet, ordinary]) == [probe_packet, ordinary]


def test_windows_end_and_new_ones_start():
    touches = detector()
    touches.watch("2001:db8:1:1::beef", 8, T0 + 100, T0 + 200)
    touches.forget(T0 + 300)
    assert touches.watched == 1  # only the first window is still open
    touches.feed([packet(T0 + 250, SCANNER, "2001:db8:1:1::beef")])
    assert touches.take() == {}


def test_the_passive_sign_counts_packets_from_the_internet_and_not_the_lans_multicast():
    # Before the on-link prefix is known, a LAN host's mDNS from its global address looks "outside"
    # by source alone; multicast never crosses a home router, so it is not from the internet.
    lan = LanNetworks([])
    assert lan.came_from_internet(SCANNER, OTHER)
    assert not lan.came_from_internet(ROUTER, "ff02::fb")
    assert not lan.came_from_internet(SCANNER, "FF02::1:3")
    assert not lan.came_from_internet("fe80::1", OTHER)
    assert not LanNetworks(["2001:db8:1:1::/64"]).came_from_internet(ROUTER, OTHER)
