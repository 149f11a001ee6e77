"""Self-probing: the NTP packet and its checks, pool look-ups, probe addresses, one packet per probe.

The arithmetic and the checks are tested on hand-built packets. Everything else runs against real
parts in two throw-away network namespaces joined by a veth pair (2001:db8::/32 only; set up by
the `net` fixture of tests/probe_net.py):

    app  eth0 2001:db8:S:1::10/64     the appliance: probe addresses are minted here, probes sent
    srv  eth0 2001:db8:S:1::123       chronyd (local stratum 8), the real NTP server
              2001:db8:S:1::53        dnsmasq, the pool names
              2001:db8:S:1::321       a capture socket on UDP 123 and 321 that never answers
              2001:db8:S:1::4b/5b/6b  hand-made NTP servers: kiss-o'-death, stale replies, stale then good
              2001:db8:S:1::124       nothing listens: ICMP port unreachable

Code that must run in `app` (pyroute2 works on the current namespace, sockets too) is one of the
`in_app_*` functions below, run there by `call()` in a fresh interpreter. Needs root, iproute2,
chronyd and dnsmasq; skips with the reason otherwise. Namespaces and daemons are always removed,
and every daemon runs under `timeout`, so even a leaked one ends by itself.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import pickle
import socket
import struct
import time

import pytest

from appliance.probe import addresses
from appliance.probe.addresses import (
    IFA_F_DADFAILED,
    IFA_F_MANAGETEMPADDR,
    IFA_F_NODAD,
    IFA_F_PERMANENT,
    IFA_F_TEMPORARY,
    InterfaceAddress,
    InterfaceGone,
    choose_prefix_source,
    is_reserved_iid,
    mint_probe_address,
    random_address,
)
from appliance.probe.ntp import BadReply, client_request, ntp_to_unix, parse_reply
from appliance.probe.pools import PoolLookupError, resolve_pool
from appliance.probe.send import send_probe
from tests.probe_net import Sink, net  # noqa: F401  (net: the namespaces fixture)

UNIX_TO_NTP = 2_208_988_800
ERA_2036 = 2 ** 32 - UNIX_TO_NTP  # Unix time of 2036-02-07 06:28:16 UTC, when NTP seconds wrap


# ---- NTP packets built by hand ----------------------------------------------------------------

def ntp_stamp(unix: float) -> bytes:
    """A Unix time as an NTP timestamp field (era wrapped), written independently of the module."""
    whole = int(unix // 1)
    fraction = int(round((unix - whole) * 2 ** 32))
    if fraction == 2 ** 32:
        whole, fraction = whole + 1, 0
    return struct.pack("!II", (whole + UNIX_TO_NTP) % 2 ** 32, fraction)


def server_packet(origin: bytes, t2: float | None, t3: float | None, *, stratum=2, refid=bytes([192, 0, 2, 1]),
                  leap=0, version=4, mode=4) -> bytes:
    """An NTP reply as a server sends it; None timestamps are left zero."""
    header = struct.pack("!BBbb", (leap << 6) | (version << 3) | mode, stratum, 6, -20)
    header += bytes(8) + refid + bytes(8)  # root delay and dispersion, refid, reference timestamp
    return (header + origin + (ntp_stamp(t2) if t2 is not None else bytes(8))
            + (ntp_stamp(t3) if t3 is not None else bytes(8)))


T1 = 1_700_000_000.25


def test_client_request_is_version_4_mode_3_and_reveals_nothing_but_a_random_nonce():
    packet, transmit = client_request()
    assert len(packet) == 48 and len(transmit) == 8
    assert packet[0] == 0b00_100_011  # leap 0, version 4, mode 3 (client)
    assert packet[1:40] == bytes(39)  # no clock, no reference, no origin: nothing about this host
    assert packet[40:48] == transmit and transmit != bytes(8)
    nonces = {client_request()[1] for _ in range(50)}
    assert len(nonces) == 50  # two probes cannot be linked by their packet


def test_offset_and_delay_of_a_server_half_a_second_ahead_over_a_20_ms_path():
    _, transmit = client_request()
    t2 = T1 + 0.010 + 0.5        # 10 ms to get there, the server's clock is 0.5 s ahead
    t3 = t2 + 0.002              # 2 ms to answer
    t4 = t3 - 0.5 + 0.010        # 10 ms back, our clock
    reply = parse_reply(server_packet(transmit, t2, t3, stratum=2, refid=bytes([192, 0, 2, 1])), transmit, T1, t4)
    assert reply.stratum == 2 and reply.leap == 0
    assert reply.offset == pytest.approx(0.5, abs=1e-6)
    assert reply.delay == pytest.approx(0.020, abs=1e-6)
    assert reply.refid == "192.0.2.1"


def test_a_server_behind_us_has_a_negative_offset():
    _, transmit = client_request()
    t2, t3 = T1 + 0.005 - 3.0, T1 + 0.006 - 3.0
    reply = parse_reply(server_packet(transmit, t2, t3), transmit, T1, T1 + 0.011)
    assert reply.offset == pytest.approx(-3.0, abs=1e-6)
    assert reply.delay == pytest.approx(0.010, abs=1e-6)


def test_stratum_1_refid_is_the_reference_name_and_untrusted_bytes_are_dropped():
    _, transmit = client_request()
    gps = parse_reply(server_packet(transmit, T1, T1, stratum=1, refid=b"GPS\0"), transmit, T1, T1)
    assert gps.refid == "GPS"
    hostile = parse_reply(server_packet(transmit, T1, T1, stratum=1, refid=b"<\n\x1b>"), transmit, T1, T1)
    assert hostile.refid == "<>"  # control characters never reach the status page


def test_an_unsynchronised_server_is_a_reply_with_leap_3():
    _, transmit = client_request()
    reply = parse_reply(server_packet(transmit, T1, T1, leap=3, stratum=16), transmit, T1, T1)
    assert (reply.leap, reply.stratum) == (3, 16)


def test_version_3_server_is_accepted():
    _, transmit = client_request()
    assert parse_reply(server_packet(transmit, T1, T1, version=3), transmit, T1, T1).stratum == 2


@pytest.mark.parametrize("build, reason", [
    (lambda tx: server_packet(tx, T1, T1)[:47], "too short for NTP: 47 bytes"),
    (lambda tx: b"", "too short for NTP: 0 bytes"),
    (lambda tx: server_packet(tx, T1, T1, mode=3), "not a server reply: mode 3"),  # our request reflected
    (lambda tx: server_packet(tx, T1, T1, mode=5), "not a server reply: mode 5"),
    (lambda tx: server_packet(tx, T1, T1, version=0), "unknown NTP version 0"),
    (lambda tx: server_packet(tx, T1, T1, version=7), "unknown NTP version 7"),
    (lambda tx: server_packet(bytes(8), T1, T1), "origin timestamp does not echo our request"),
    (lambda tx: server_packet(bytes(reversed(tx)), T1, T1), "origin timestamp does not echo our request"),
    (lambda tx: server_packet(tx, T1, T1, stratum=0, refid=b"RATE"), "kiss-o'-death RATE"),
    (lambda tx: server_packet(tx, T1, T1, stratum=0, refid=b"DENY"), "kiss-o'-death DENY"),
    (lambda tx: server_packet(tx, T1, T1, stratum=0, refid=bytes(4)), "kiss-o'-death (no code)"),
    (lambda tx: server_packet(tx, T1, None), "transmit timestamp is zero"),
    (lambda tx: server_packet(tx, None, T1), "receive timestamp is zero"),
])
def test_unusable_replies_are_refused_with_the_reason(build, reason):
    _, transmit = client_request()
    with pytest.raises(BadReply) as caught:
        parse_reply(build(transmit), transmit, T1, T1 + 0.01)
    assert caught.value.reason.startswith(reason)
    assert str(caught.value) == caught.value.reason


def test_trailing_bytes_after_the_header_do_not_spoil_a_reply():
    # Extension fields and MACs follow the 48-byte header.
    _, transmit = client_request()
    reply = parse_reply(server_packet(transmit, T1 + 1, T1 + 1) + bytes(20), transmit, T1, T1)
    assert reply.offset == pytest.approx(1.0, abs=1e-6)


def test_ntp_to_unix_fraction_and_epoch():
    assert ntp_to_unix(struct.pack("!II", UNIX_TO_NTP, 0), near=0) == 0
    assert ntp_to_unix(struct.pack("!II", UNIX_TO_NTP + 1_700_000_000, 2 ** 31), near=1_700_000_000) == 1_700_000_000.5


def test_ntp_to_unix_across_the_2036_wrap():
    # Just after the wrap the seconds field is small again; it still means 2036, not 1900.
    assert ntp_to_unix(struct.pack("!II", 10, 0), near=ERA_2036 + 5) == ERA_2036 + 10
    # Just before the wrap, read by a clock already past it.
    assert ntp_to_unix(struct.pack("!II", 2 ** 32 - 10, 0), near=ERA_2036 + 5) == ERA_2036 - 10
    # Today's timestamps stay in era 0 even when read near the wrap.
    today = 1_700_000_000
    assert ntp_to_unix(ntp_stamp(today), near=today) == today
    assert ntp_to_unix(ntp_stamp(ERA_2036 - 100), near=today) == ERA_2036 - 100


def test_offset_is_small_for_a_reply_straddling_the_2036_wrap():
    _, transmit = client_request()
    t1 = ERA_2036 - 0.004
    t2, t3, t4 = ERA_2036 + 0.001, ERA_2036 + 0.002, ERA_2036 + 0.007
    reply = parse_reply(server_packet(transmit, t2, t3), transmit, t1, t4)
    assert abs(reply.offset) < 0.001 and reply.delay == pytest.approx(0.010, abs=1e-6)


# ---- addresses: pure parts ----------------------------------------------------------------------

def test_reserved_interface_identifiers():
    assert is_reserved_iid(0)                                # subnet-router anycast
    assert is_reserved_iid(0x0200_5EFF_FE00_0000) and is_reserved_iid(0x0200_5EFF_FEFF_FFFF)
    assert is_reserved_iid(0xFDFF_FFFF_FFFF_FF80) and is_reserved_iid(0xFDFF_FFFF_FFFF_FFFF)
    assert is_reserved_iid(0x0000_5EFE_C000_0201) and is_reserved_iid(0x0200_5EFE_C000_0201)  # ISATAP
    for ordinary in (1, 0x0200_5EFF_FDFF_FFFF, 0x0200_5EFF_FF00_0000, 0xFDFF_FFFF_FFFF_FF7F,
                     0x0100_5EFE_0000_0000, 0x1234_5678_9ABC_DEF0):
        assert not is_reserved_iid(ordinary), hex(ordinary)


def test_random_addresses_stay_in_the_prefix_and_differ():
    for prefix in ("2001:db8:7:1::/64", "2001:db8:7::/48"):
        network = ipaddress.IPv6Network(prefix)
        drawn = {random_address(network) for _ in range(200)}
        assert len(drawn) == 200
        for text in drawn:
            address = ipaddress.IPv6Address(text)
            assert address in network and address.compressed == text
            assert not is_reserved_iid(int(address) & (2 ** 64 - 1))


def test_random_address_draws_again_after_a_reserved_identifier(monkeypatch):
    draws = iter([0, 0xFDFF_FFFF_FFFF_FF99, 0x1111_2222_3333_4444])
    monkeypatch.setattr(addresses.secrets, "randbits", lambda bits: next(draws))
    assert random_address(ipaddress.IPv6Network("2001:db8:7:1::/64")) == "2001:db8:7:1:1111:2222:3333:4444"


def addr(address, prefixlen=64, *, flags=0, preferred=3600, valid=7200, scope=0):
    return InterfaceAddress(address, prefixlen, scope, flags, preferred, valid)


def test_prefix_source_is_the_live_slaac_address_not_temporary_static_or_probe():
    slaac = addr("2001:db8:1:1:aaaa::1", flags=IFA_F_MANAGETEMPADDR)
    temporary = addr("2001:db8:2:2::7", flags=IFA_F_TEMPORARY, valid=99999)
    static = addr("2001:db8:3:3::1", flags=IFA_F_PERMANENT, preferred=0xFFFFFFFF, valid=0xFFFFFFFF)
    probe = addr("2001:db8:1:1::99", 128, flags=IFA_F_NODAD, preferred=0)
    link_local = addr("fe80::1", scope=253, flags=IFA_F_PERMANENT)
    assert choose_prefix_source([temporary, static, probe, link_local, slaac]) == slaac
    assert choose_prefix_source([temporary, static, probe, link_local]) == static  # last resort
    assert choose_prefix_source([temporary, probe, link_local]) is None


def test_a_unique_local_address_never_gives_the_prefix():
    # OpenWrt advertises a ULA /64 beside the global one; probes from it would never leave the LAN.
    ula = addr("fd12:3456:789a:1::1", flags=IFA_F_MANAGETEMPADDR, valid=0xFFFFFFFF)
    slaac = addr("2001:db8:1:1::1", flags=IFA_F_MANAGETEMPADDR, valid=7200)
    assert choose_prefix_source([ula, slaac]) == slaac
    assert choose_prefix_source([ula]) is None


def test_a_withdrawn_prefix_gives_way_to_a_live_one_and_failed_dad_never_counts():
    old = addr("2001:db8:1:1::1", flags=IFA_F_MANAGETEMPADDR, preferred=0, valid=90000)
    new = addr("2001:db8:2:2::1", flags=IFA_F_MANAGETEMPADDR, preferred=100, valid=200)
    duplicate = addr("2001:db8:3:3::1", flags=IFA_F_MANAGETEMPADDR | IFA_F_DADFAILED, valid=10 ** 6)
    assert choose_prefix_source([old, new, duplicate]) == new
    assert choose_prefix_source([old, duplicate]) == old


@pytest.mark.parametrize("prefix, valid_lft, message", [
    ("2001:db8:7:1::/80", 60, "longer than /64"),
    ("2001:db8:7:1::/64", 0, "valid_lft"),
    ("2001:db8:7:1::/64", 0xFFFFFFFF, "valid_lft"),  # "forever" would never be cleaned up
])
def test_mint_refuses_bad_arguments_before_touching_the_interface(prefix, valid_lft, message):
    with pytest.raises(ValueError, match=message):
        mint_probe_address("hw-no-such-if", prefix, valid_lft)


def test_unknown_probe_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown probe kind"):
        send_probe("2001:db8::1", "2001:db8::2", "tcp123")


def test_pool_errors_without_any_network():
    with pytest.raises(PoolLookupError) as caught:
        resolve_pool("pool.probe.test", nameservers=[])
    assert caught.value.reason == "no nameservers given"
    assert str(caught.value) == "pool.probe.test: no nameservers given"
    with pytest.raises(PoolLookupError) as caught:
        resolve_pool("pool.probe.test", nameservers=["ns.example"])
    assert caught.value.reason.startswith("bad nameserver in ['ns.example']")
    again = pickle.loads(pickle.dumps(caught.value))
    assert (again.name, again.reason) == (caught.value.name, caught.value.reason)


# ---- code run inside the app namespace (by Net.call; the namespaces: tests/probe_net.py) --------
# Each returns something JSON can carry.

def in_app_probe(source: str, server: str, kind: str, timeout: float):
    started = time.time()
    result = dataclasses.asdict(send_probe(source, server, kind, timeout=timeout))
    return {**result, "started": started, "finished": time.time()}


def in_app_mint_and_probe(ifname: str, server: str, kind: str, timeout: float):
    source = mint_probe_address(ifname, addresses.global_prefix(ifname), 600)
    return in_app_probe(source, server, kind, timeout)


def in_app_mint(ifname: str, prefix: str, valid_lft: int, count: int = 1):
    return [mint_probe_address(ifname, prefix, valid_lft) for _ in range(count)]


def in_app_probe_addresses(ifname: str):
    return addresses.probe_addresses(ifname)


def in_app_remove_twice(ifname: str, address: str):
    addresses.remove_probe_address(ifname, address)
    addresses.remove_probe_address(ifname, address)  # already gone: nothing happens
    return addresses.probe_addresses(ifname)


def in_app_global_prefix(ifname: str):
    prefix = addresses.global_prefix(ifname)
    return None if prefix is None else str(prefix)


def in_app_source_towards(destination: str, port: int = 9):
    """The source address the kernel picks for ordinary traffic (an unbound UDP socket)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.connect((destination, port))
        return sock.getsockname()[0]


def in_app_wait_expired(ifname: str, address: str, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if address not in addresses.probe_addresses(ifname):
            return True
        time.sleep(0.1)
    return False


def in_app_all_on_missing(ifname: str):
    """What each address function does for an interface that does not exist."""
    outcomes = {}
    for name, action in (
            ("global_prefix", lambda: addresses.global_prefix(ifname)),
            ("mint_probe_address", lambda: mint_probe_address(ifname, "2001:db8:7:1::/64", 60)),
            ("probe_addresses", lambda: addresses.probe_addresses(ifname)),
            ("remove_probe_address", lambda: addresses.remove_probe_address(ifname, "2001:db8:7:1::5"))):
        try:
            outcomes[name] = ["returned", repr(action())]
        except InterfaceGone as exc:
            outcomes[name] = ["InterfaceGone", exc.ifname, str(exc)]
    return outcomes


def in_app_resolve(name: str, nameservers, timeout: float, silent_on: str | None = None,
                   resolv_conf: str | None = None):
    from appliance.probe import pools
    silent = None
    if silent_on:  # a "nameserver" that reads nothing and answers nothing
        silent = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        silent.bind((silent_on, 53))
    saved = pools.SYSTEM_RESOLV_CONF
    if resolv_conf is not None:
        pools.SYSTEM_RESOLV_CONF = resolv_conf
    started = time.monotonic()
    try:
        return {"members": resolve_pool(name, nameservers=nameservers, timeout=timeout),
                "seconds": time.monotonic() - started}
    except PoolLookupError as exc:
        return {"name": exc.name, "reason": exc.reason, "seconds": time.monotonic() - started}
    finally:
        pools.SYSTEM_RESOLV_CONF = saved
        if silent:
            silent.close()


# ---- probe addresses on a real interface --------------------------------------------------------

def test_global_prefix_is_none_until_a_global_64_exists(net):
    net.ip("link", "add", "tst0", "type", "veth", "peer", "name", "tst0p")
    net.ip("link", "set", "tst0p", "up")
    net.ip("link", "set", "tst0", "up")
    assert net.call("global_prefix", "tst0") is None  # link-local only
    other = f"{net.site}:5::/64"
    net.call("mint", "tst0", other, 60)
    assert net.call("global_prefix", "tst0") is None  # a probe /128 is not a prefix
    net.ip("addr", "add", f"{net.site}:5::7/64", "dev", "tst0", "nodad")
    assert net.call("global_prefix", "tst0") == other
    assert net.call("global_prefix", "eth0") == net.prefix


def test_the_prefix_is_the_global_one_beside_a_ula_and_the_live_one_while_renumbering(net):
    net.ip("link", "add", "tst2", "type", "veth", "peer", "name", "tst2p")
    net.ip("link", "set", "tst2p", "up")
    net.ip("link", "set", "tst2", "up")
    try:
        net.ip("addr", "add", "fd00:db8:7:1::5/64", "dev", "tst2", "nodad", "mngtmpaddr")
        assert net.call("global_prefix", "tst2") is None  # a ULA alone: no way to the internet
        old, new = f"{net.site}:8::/64", f"{net.site}:9::/64"
        net.ip("addr", "add", f"{net.site}:8::5/64", "dev", "tst2", "nodad", "mngtmpaddr")
        assert net.call("global_prefix", "tst2") == old
        # Renumbering: the old prefix deprecated (preferred 0), a new one beside it.
        net.ip("addr", "change", f"{net.site}:8::5/64", "dev", "tst2", "nodad", "mngtmpaddr",
               "preferred_lft", "0", "valid_lft", "900")
        net.ip("addr", "add", f"{net.site}:9::5/64", "dev", "tst2", "nodad", "mngtmpaddr",
               "preferred_lft", "600", "valid_lft", "900")
        assert net.call("global_prefix", "tst2") == new
        # Two live global prefixes (two routers): netlink's lifetimes decide, the longer valid.
        net.ip("addr", "change", f"{net.site}:8::5/64", "dev", "tst2", "nodad", "mngtmpaddr",
               "preferred_lft", "800", "valid_lft", "3000")
        assert net.call("global_prefix", "tst2") == old
    finally:
        net.ip("link", "del", "tst2")


def test_minted_probe_address_is_a_fresh_deprecated_nodad_128_in_the_prefix(net):
    first, second = net.call("mint", "eth0", net.prefix, 600, 2)
    assert first != second
    for address in (first, second):
        assert ipaddress.IPv6Address(address) in ipaddress.IPv6Network(net.prefix)
        seen = net.kernel_view(address)
        assert seen is not None, f"{address} not on eth0"
        assert seen["prefixlen"] == 128
        assert seen["preferred_life_time"] == 0 and seen.get("deprecated")
        assert seen.get("nodad") and not seen.get("tentative")
        assert 590 <= seen["valid_life_time"] <= 600
    listed = net.call("probe_addresses", "eth0")
    assert first in listed and second in listed
    assert net.app_address not in listed  # the host's own /64 address is not a probe address

    remaining = net.call("remove_twice", "eth0", first)
    assert first not in remaining and second in remaining
    assert net.kernel_view(first) is None
    assert net.kernel_view(net.app_address) is not None  # the /64 is untouched
    net.call("remove_twice", "eth0", second)


def test_the_kernel_removes_an_expired_probe_address_by_itself(net):
    [address] = net.call("mint", "eth0", net.prefix, 1)
    assert net.kernel_view(address) is not None
    assert net.call("wait_expired", "eth0", address, 5) is True
    assert net.kernel_view(address) is None


def test_probe_address_is_never_the_source_of_ordinary_traffic(net):
    probes = net.call("mint", "eth0", net.prefix, 600, 4)
    for probe in probes:
        # The destination right next to the probe address: longest-prefix matching (RFC 6724
        # rule 8) would pick the probe address if it were not deprecated (rule 3 comes first).
        neighbour = str(ipaddress.IPv6Address(probe) + 1)
        assert net.call("source_towards", neighbour) == net.app_address
    assert net.call("source_towards", net.chrony) == net.app_address

    # Control: a preferred /128 added the same way but without preferred_lft 0 IS picked there,
    # so the check above would notice a probe address that the kernel could choose.
    control = random_address(ipaddress.IPv6Network(net.prefix))
    net.ip("addr", "add", f"{control}/128", "dev", "eth0", "nodad", "valid_lft", "600", "preferred_lft", "600")
    try:
        assert net.call("source_towards", str(ipaddress.IPv6Address(control) + 1)) == control
    finally:
        net.ip("addr", "del", f"{control}/128", "dev", "eth0")


def test_a_missing_interface_is_interface_gone_for_every_function(net):
    outcomes = net.call("all_on_missing", "hw-gone0")
    for function, outcome in outcomes.items():
        assert outcome[:2] == ["InterfaceGone", "hw-gone0"], function
        assert "'hw-gone0' is not there" in outcome[2]
    # An interface that existed and was unplugged (deleted) after probes were minted on it.
    net.ip("link", "add", "tst1", "type", "veth", "peer", "name", "tst1p")
    net.ip("link", "set", "tst1", "up")
    net.call("mint", "tst1", f"{net.site}:6::/64", 60)
    net.ip("link", "del", "tst1")  # takes its peer with it
    assert net.call("all_on_missing", "tst1")["probe_addresses"][0] == "InterfaceGone"


# ---- probes -------------------------------------------------------------------------------------

def test_ntp_probe_from_a_fresh_address_gets_chronys_answer(net):
    result = net.call("mint_and_probe", "eth0", net.chrony, "ntp", 2.0)
    assert result["error"] is None
    assert ipaddress.IPv6Address(result["source"]) in ipaddress.IPv6Network(net.prefix)
    assert result["source"] != net.app_address
    assert (result["kind"], result["server"], result["port"]) == ("ntp", net.chrony, 123)
    assert result["started"] <= result["sent_at"] <= result["finished"]
    assert 1024 <= result["sport"] <= 65535
    reply = result["reply"]
    assert reply["stratum"] == 8 and reply["leap"] == 0  # chronyd's `local stratum 8`
    assert abs(reply["offset"]) < 0.05  # same clock on both ends
    assert -0.001 <= reply["delay"] < 0.1
    assert reply["refid"] == "127.127.1.1"  # chrony's local reference, as ntpq shows it


@pytest.mark.parametrize("kind, port, length", [("ntp", 123, 48), ("udp123", 123, 0), ("udp321", 321, 0)])
def test_each_probe_is_exactly_one_datagram_from_the_probe_address(net, kind, port, length):
    with Sink(net, [(net.sink, 123, "capture"), (net.sink, 321, "capture")]) as sink:
        result = net.call("mint_and_probe", "eth0", net.sink, kind, 0.3)
        datagrams = sink.datagrams(1)
    assert result["sent_at"] is not None and result["port"] == port
    assert datagrams == [{"to": [net.sink, port], "source": result["source"], "sport": result["sport"],
                          "data": datagrams[0]["data"] if datagrams else None}]
    data = bytes.fromhex(datagrams[0]["data"])
    assert len(data) == length
    if kind == "ntp":
        assert data[0] == 0b00_100_011 and data[1:40] == bytes(39) and data[40:] != bytes(8)
        assert result["reply"] is None and result["error"] == "no reply within 0.3 s"
        assert result["finished"] - result["sent_at"] >= 0.3
    else:
        assert result["reply"] is None and result["error"] is None  # nothing to wait for


def test_probe_from_an_address_not_on_the_host_sends_nothing_and_says_why(net):
    [gone] = net.call("mint", "eth0", net.prefix, 600)
    net.call("remove_twice", "eth0", gone)  # as if it had expired
    never = net.host("dead:beef")
    with Sink(net, [(net.sink, 123, "capture"), (net.sink, 321, "capture")]) as sink:
        results = [net.call("probe", source, net.sink, "udp321", 1.0) for source in (gone, never)]
        results.append(net.call("probe", never, net.sink, "ntp", 1.0))
        datagrams = sink.datagrams(0)
    assert datagrams == []
    for result in results:
        assert result["sent_at"] is None and result["sport"] is None and result["reply"] is None
        assert result["error"] == "the probe address is not on this host (expired or removed) (EADDRNOTAVAIL)"
        assert result["finished"] - result["started"] < 0.5  # no waiting for an answer to nothing


def test_ntp_probe_to_a_closed_port_reports_the_refusal(net):
    result = net.call("probe", net.app_address, net.host("124"), "ntp", 2.0)
    assert result["sent_at"] is not None and result["reply"] is None
    assert result["error"] == "the server refused: ICMP port unreachable (ECONNREFUSED)"
    assert result["finished"] - result["started"] < 1.5  # told at once, not at the timeout


def test_kiss_o_death_ends_the_probe_at_once_with_the_code(net):
    with Sink(net, [(net.host("4b"), 123, "kod")]) as sink:
        result = net.call("probe", net.app_address, net.host("4b"), "ntp", 3.0)
        assert len(sink.datagrams(1)) == 1
    assert result["reply"] is None and result["error"] == "kiss-o'-death RATE"
    assert result["finished"] - result["sent_at"] < 1.5


def test_stale_and_garbage_replies_are_skipped_for_the_real_answer(net):
    with Sink(net, [(net.host("5b"), 123, "stale"), (net.host("6b"), 123, "stale-then-good")]) as sink:
        good = net.call("probe", net.app_address, net.host("6b"), "ntp", 2.0)
        stale = net.call("probe", net.app_address, net.host("5b"), "ntp", 0.5)
        assert len(sink.datagrams(2)) == 2  # one request each, nothing retried
    assert good["error"] is None
    assert good["reply"]["stratum"] == 3 and good["reply"]["refid"] == "192.0.2.1"
    assert good["reply"]["offset"] == pytest.approx(2.5, abs=0.1)
    assert good["finished"] - good["sent_at"] < 1.0  # did not wait for the timeout
    assert stale["reply"] is None
    assert stale["error"] == "bad reply: origin timestamp does not echo our request (stale or forged reply)"
    assert stale["finished"] - stale["sent_at"] >= 0.5


# ---- pool look-ups against dnsmasq --------------------------------------------------------------

def test_pool_members_are_the_aaaa_answers_sorted_and_compressed(net):
    got = net.call("resolve", "pool.probe.test", [net.dns], 2.0)
    s = net.site
    assert got.get("members") == [f"{s}:2::9", f"{s}:2::10", f"{s}:2::a:1"], got


def test_pool_lookup_without_nameservers_uses_resolv_conf(net):
    conf = net.workdir / "resolv.conf"
    conf.write_text(f"search probe.test\nnameserver {net.dns}\n")
    got = net.call("resolve", "pool.probe.test", None, 2.0, None, str(conf))
    assert len(got.get("members", [])) == 3, got
    # The search domain is never appended: a bare name is not turned into pool.probe.test.
    bare = net.call("resolve", "pool", None, 2.0, None, str(conf))
    assert "members" not in bare, bare
    missing = net.call("resolve", "pool.probe.test", None, 2.0, None, str(net.workdir / "no-such-resolv.conf"))
    assert missing["reason"].startswith("no nameservers configured"), missing


def test_unknown_pool_name_is_nxdomain(net):
    got = net.call("resolve", "nosuch.probe.test", [net.dns], 2.0)
    assert (got.get("name"), got.get("reason")) == ("nosuch.probe.test", "no such name (NXDOMAIN)")


def test_name_without_aaaa_says_so(net):
    got = net.call("resolve", "v4only.probe.test", [net.dns], 2.0)
    assert got.get("reason") == "the name exists but has no AAAA (IPv6) records"


def test_silent_nameserver_times_out_within_the_timeout(net):
    silent = net.app_address  # a socket on port 53 that never answers
    got = net.call("resolve", "pool.probe.test", [silent], 0.5, silent)
    assert got.get("reason") == f"no answer within 0.5 s from {silent}"
    assert 0.4 <= got["seconds"] < 1.5


def test_refusing_nameserver_is_named_in_the_reason(net):
    # dnsmasq serves only probe.test and has no upstream: it refuses any other name.
    got = net.call("resolve", "pool.elsewhere.test", [net.dns], 2.0)
    reason = got.get("reason", "")
    assert reason.startswith("every nameserver failed: ") and net.dns in reason and reason.endswith("REFUSED"), got
    assert got["seconds"] < 1.0  # told at once, not at the timeout


def test_a_dead_first_nameserver_does_not_hide_a_working_second(net):
    # resolv.conf with two nameservers of which the first is down: the answer must still come.
    dead = net.app_address  # a socket on port 53 that never answers
    got = net.call("resolve", "pool.probe.test", [dead, net.dns], 2.0, dead)
    assert len(got.get("members", [])) == 3, got
    assert got["seconds"] < 2.0
