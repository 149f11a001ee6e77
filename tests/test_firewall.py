"""The HarvestWatch ruleset in real network namespaces: real ip6tables-legacy, real NFLOG, real packets.

Two namespaces joined by a veth: `app` (the appliance, 2001:db8:1:1::1/64) and `peer`, which
holds a LAN address (2001:db8:1:1::2) and an address outside the LAN (2001:db8:99::2) so one
namespace can play both a LAN client and an outside scanner.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from appliance.host import firewall
from tests.lab.netns import Namespaces, NetnsUnavailable, repo_root

APP, LAN_PEER, OUTSIDE = "2001:db8:1:1::1", "2001:db8:1:1::2", "2001:db8:99::2"
PREFIX = "2001:db8:1:1::/64"
GROUP = 17


@pytest.fixture
def pair(request):
    """The two namespaces; the appliance's interface is called `eth0` unless a test asks otherwise."""
    try:
        nets = Namespaces()
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))
    try:
        app, peer = nets.add("app"), nets.add("peer")
        iface = getattr(request, "param", "eth0")
        nets.veth(app, iface, peer, "eth0")
        nets.address(app, iface, f"{APP}/64")
        nets.address(peer, "eth0", f"{LAN_PEER}/64")
        nets.address(peer, "eth0", f"{OUTSIDE}/128")
        nets.exec(app, ["ip", "-6", "route", "add", "2001:db8:99::/64", "dev", iface])
        yield nets, app, peer
    finally:
        nets.close()


def in_ns(nets: Namespaces, ns: str, code: str, *args: str, timeout: float = 30) -> str:
    done = nets.python(ns, textwrap.dedent(code), *args, check=False, timeout=timeout, cwd=repo_root())
    assert done.returncode == 0, done.stderr
    return done.stdout


def apply_in(nets, ns, **ruleset) -> list[str]:
    """Apply a ruleset inside `ns` and return what verify() then finds wrong."""
    out = in_ns(nets, ns, """
        import json, sys
        from appliance.host import firewall
        ruleset = firewall.Ruleset(**json.loads(sys.argv[1]))
        firewall.apply(ruleset)
        print(json.dumps(firewall.verify(ruleset)))
    """, json.dumps({"lan_prefixes": [PREFIX], "nflog_group": GROUP, **ruleset}))
    return json.loads(out)


def saved(nets, ns, family=6) -> list[str]:
    command = "ip6tables-legacy" if family == 6 else "iptables-legacy"
    return nets.exec(ns, [command, "-S"]).stdout.splitlines()


def test_apply_is_verified_and_idempotent(pair):
    nets, app, _ = pair
    assert apply_in(nets, app) == []
    first = saved(nets, app), saved(nets, app, 4)
    assert apply_in(nets, app) == []
    assert (saved(nets, app), saved(nets, app, 4)) == first
    rules = first[0]
    assert [line for line in rules if line.startswith("-A INPUT")] == ["-A INPUT -j HW-IN"]
    assert [line for line in rules if line.startswith("-A OUTPUT")] == ["-A OUTPUT -j HW-OUT"]
    assert f"-A HW-IN -s {PREFIX} -p tcp -m multiport --dports 22,80 -j ACCEPT" in rules
    assert rules[-1] == '-A HW-OUT -m comment --comment "HarvestWatch: log new outbound" -j NFLOG --nflog-group 17'
    assert "-A INPUT -j HW-IN4" in first[1]
    # The default (nft) ip6tables cannot see them; the legacy one is the truth.
    nft = nets.exec(app, ["ip6tables-nft", "-S"], check=False).stdout
    assert "HW-IN" not in nft


# Inside `app`: the capture and a listener on 22, then the peer plays LAN client and outside
# scanner, then the appliance sends one new packet out. Prints what NFLOG delivered.
CLIENT = """
import json, socket, sys
results = {}
for name, source, port in (("lan-ssh", sys.argv[1], 22), ("outside-ssh", sys.argv[2], 22),
                           ("outside-9999", sys.argv[2], 9999)):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(1.0)
    s.bind((source, 0))
    try:
        s.connect((sys.argv[3], port)); results[name] = "connected"
    except socket.timeout:
        results[name] = "timeout"
    except OSError as exc:
        results[name] = exc.strerror
    s.close()
print(json.dumps(results))
"""

TRAFFIC = """
    import json, socket, subprocess, sys, time
    from appliance.capture.nflog import NflogReader
    peer_ns, group = sys.argv[1], int(sys.argv[2])
    reader = NflogReader(group)
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("::", 22)); listener.listen(8)
    client = sys.argv[3]
    done = subprocess.run(["ip", "netns", "exec", peer_ns, sys.executable, "-c", client,
                           "%(lan)s", "%(outside)s", "%(app)s"], capture_output=True, text=True, timeout=20)
    out = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    out.sendto(b"x", ("%(lan)s", 4000))
    time.sleep(0.2)
    packets = reader.read_available()
    print(json.dumps({"client": json.loads(done.stdout or "{}"), "client_err": done.stderr,
                      "packets": [[p.direction, p.src, p.dst, p.proto, p.dport] for p in packets]}))
""" % {"lan": LAN_PEER, "outside": OUTSIDE, "app": APP}


def test_services_answer_the_lan_only_and_the_rest_is_logged_then_dropped(pair):
    nets, app, peer = pair
    assert apply_in(nets, app) == []
    result = json.loads(in_ns(nets, app, TRAFFIC, peer, str(GROUP), CLIENT))
    assert result["client"] == {"lan-ssh": "connected", "outside-ssh": "timeout", "outside-9999": "timeout"}, result
    packets = result["packets"]
    inbound = {(p[1], p[4]) for p in packets if p[0] == "in"}
    assert (OUTSIDE, 22) in inbound and (OUTSIDE, 9999) in inbound
    assert (LAN_PEER, 22) not in inbound, "the LAN's own SSH connection must not be logged as a scan"
    assert ["out", APP, LAN_PEER, "UDP", 4000] in packets
    # The established SSH session's packets are not logged in either direction.
    assert not any(p[0] == "out" and p[2] == LAN_PEER and p[3] == "TCP" for p in packets)


# Interface names that python-iptables' one-bit masks made match `-i lo` (the firewall accepted
# everything unlogged on them), and names of other shapes.
@pytest.mark.parametrize("pair", ["lan0", "veth7", "tun0", "tap0", "bond0", "wlan0", "enp1s0", "eth0.7"],
                         indirect=True)
def test_every_interface_name_is_filtered_and_logged(pair):
    nets, app, peer = pair
    assert apply_in(nets, app) == []
    result = json.loads(in_ns(nets, app, TRAFFIC, peer, str(GROUP), CLIENT))
    assert result["client"] == {"lan-ssh": "connected", "outside-ssh": "timeout", "outside-9999": "timeout"}, result
    inbound = {(p[1], p[4]) for p in result["packets"] if p[0] == "in"}
    assert {(OUTSIDE, 22), (OUTSIDE, 9999)} <= inbound, result
    assert ["out", APP, LAN_PEER, "UDP", 4000] in result["packets"]
    # The kernel's own copy of the loopback rules: the mask covers "lo" and its NUL, nothing less.
    masks = json.loads(in_ns(nets, app, """
        import json
        from appliance.host import kernel_rules
        print(json.dumps([[r.chain, r.inbound[0], r.inbound[1].hex(), r.outbound[0], r.outbound[1].hex()]
                          for r in kernel_rules.read_filter(6) if r.chain in ("HW-IN", "HW-OUT") and r.index == 1]))
    """))
    assert masks == [["HW-IN", "lo", "ffffff" + "00" * 13, "", "00" * 16],
                     ["HW-OUT", "", "00" * 16, "lo", "ffffff" + "00" * 13]]


SENDER = """
import socket, sys
for source, count in ((sys.argv[1], 600), (sys.argv[2], 40)):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind((source, 0))
    for port in range(count):
        s.sendto(b"", (sys.argv[3], 20000 + port))
    s.close()
"""

FLOOD = """
    import json, socket, subprocess, sys, time
    from appliance.capture.nflog import NflogReader
    from appliance.host import firewall
    peer_ns, group = sys.argv[1], int(sys.argv[2])
    reader = NflogReader(group)
    sender = sys.argv[3]
    subprocess.run(["ip", "netns", "exec", peer_ns, sys.executable, "-c", sender, "%(outside)s", "%(lan)s", "%(app)s"],
                   check=True, timeout=20)
    time.sleep(0.3)
    packets = []
    for _ in range(20):
        batch = reader.read_available()
        if not batch:
            break
        packets += batch
    logged = {}
    for p in packets:
        if p.direction == "in":
            logged[p.src] = logged.get(p.src, 0) + 1
    print(json.dumps({"logged": logged, "dropped": firewall.flood_counts()["flood"], "lost": reader.lost}))
""" % {"lan": LAN_PEER, "outside": OUTSIDE, "app": APP}


def test_flood_limit_bounds_one_source_and_counts_what_it_dropped(pair):
    nets, app, peer = pair
    assert apply_in(nets, app, rate=20, burst=100) == []
    result = json.loads(in_ns(nets, app, FLOOD, peer, str(GROUP), SENDER))
    flooder = result["logged"].get(OUTSIDE, 0)
    assert 100 <= flooder < 200, result  # the burst, plus what the rate refills while sending
    assert result["dropped"] == 600 - flooder, result
    assert result["logged"].get(LAN_PEER) == 40, "another /64 must not be limited by the flooder"
    assert result["lost"] == 0


def test_remove_takes_out_only_ours(pair):
    nets, app, _ = pair
    nets.exec(app, ["ip6tables-legacy", "-A", "INPUT", "-s", "2001:db8:5::/64", "-j", "ACCEPT"])
    assert apply_in(nets, app) == []
    assert [rule for rule in saved(nets, app) if rule.startswith("-A INPUT")] == \
        ["-A INPUT -j HW-IN", "-A INPUT -s 2001:db8:5::/64 -j ACCEPT"]
    in_ns(nets, app, "from appliance.host import firewall; firewall.remove(); firewall.remove()")
    assert saved(nets, app) == ["-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT",
                                "-A INPUT -s 2001:db8:5::/64 -j ACCEPT"]
    assert not [line for line in saved(nets, app, 4) if "HW-" in line]


# A firewall as Raspberry Pi OS users keep one: nftables (nftables.service's /etc/nftables.conf, or
# ufw/firewalld through iptables-nft), counting what it sees and accepting SSH.
USERS_NFT = """
table inet users_firewall {
    chain input {
        type filter hook input priority filter; policy accept;
        tcp dport 22 counter accept
        counter
    }
}
"""


def nft_counters(nets, ns) -> list[int]:
    listing = nets.exec(ns, ["nft", "list", "table", "inet", "users_firewall"]).stdout
    return [int(n) for n in re.findall(r"counter packets (\d+)", listing)]


@pytest.mark.skipif(not shutil.which("nft"), reason="nft (package nftables) not installed")
def test_an_nftables_firewall_already_there_keeps_working_beside_ours(pair):
    """The role leaves iptables-nft as the default where nftables is in use (ansible/roles/harvestwatch
    packages.yml); the kernel then runs both: the user's nftables chain and the appliance's legacy
    rules each see every packet, and applying or removing ours leaves theirs as it was."""
    nets, app, peer = pair
    nets.exec(app, ["nft", "-f", "-"], input=USERS_NFT)
    before = nets.exec(app, ["nft", "list", "ruleset"]).stdout
    assert apply_in(nets, app) == []
    assert nets.exec(app, ["nft", "list", "ruleset"]).stdout == before
    result = json.loads(in_ns(nets, app, TRAFFIC, peer, str(GROUP), CLIENT))
    # Theirs accepts SSH from anywhere; ours still answers the LAN only and logs the outside's tries.
    assert result["client"] == {"lan-ssh": "connected", "outside-ssh": "timeout", "outside-9999": "timeout"}, result
    inbound = {(p[1], p[4]) for p in result["packets"] if p[0] == "in"}
    assert (OUTSIDE, 22) in inbound and (OUTSIDE, 9999) in inbound
    ssh_counted, others_counted = nft_counters(nets, app)
    assert ssh_counted >= 2 and others_counted >= 1, (ssh_counted, others_counted)
    in_ns(nets, app, "from appliance.host import firewall; firewall.remove()")
    assert not [line for line in saved(nets, app) if "HW-" in line]
    assert nets.exec(app, ["nft", "list", "table", "inet", "users_firewall"]).returncode == 0
    assert "tcp dport 22 counter" in nets.exec(app, ["nft", "list", "ruleset"]).stdout


def test_verify_names_what_was_changed_behind_its_back(pair):
    nets, app, _ = pair
    assert apply_in(nets, app) == []
    nets.exec(app, ["ip6tables-legacy", "-D", "HW-IN", "-m", "comment", "--comment", "HarvestWatch: log new inbound",
                    "-j", "NFLOG", "--nflog-group", str(GROUP)])
    nets.exec(app, ["ip6tables-legacy", "-I", "INPUT", "-j", "ACCEPT"])
    problems = json.loads(in_ns(nets, app, """
        import json
        from appliance.host import firewall
        print(json.dumps(firewall.verify(firewall.Ruleset(lan_prefixes=["%s"], nflog_group=%d))))
    """ % (PREFIX, GROUP)))
    assert any("HW-IN differs" in p and "missing: -A HW-IN -m comment --comment \"HarvestWatch: log new inbound\"" in p
               for p in problems), problems
    assert "INPUT has 1 rule(s) before the jump to HW-IN" in problems
    assert apply_in(nets, app) == []  # re-applying repairs both


def harvestwatch(nets, ns, *args) -> subprocess.CompletedProcess:
    return nets.exec(ns, [sys.executable, "-m", "appliance.cli", *args], check=False, cwd=repo_root())


def test_command_line_apply_verify_show_remove(pair, tmp_path):
    nets, app, _ = pair
    config = tmp_path / "config.toml"
    config.write_text("[firewall]\ntcp_services = [22, 8080]\nnflog_group = 17\n")
    applied = harvestwatch(nets, app, "firewall", "apply", "--config", str(config), "--prefix", PREFIX)
    assert applied.returncode == 0, applied.stderr
    assert "in force" in applied.stdout and PREFIX in applied.stdout
    assert harvestwatch(nets, app, "firewall", "verify", "--config", str(config), "--prefix", PREFIX).returncode == 0
    shown = harvestwatch(nets, app, "firewall", "show")
    assert f"-A HW-IN -s {PREFIX} -p tcp -m multiport --dports 22,8080 -j ACCEPT" in shown.stdout
    assert "ip6tables-legacy" in shown.stdout
    assert harvestwatch(nets, app, "firewall", "remove").returncode == 0
    after = harvestwatch(nets, app, "firewall", "verify", "--config", str(config), "--prefix", PREFIX)
    assert after.returncode == 1 and "NOT IN FORCE: chain HW-IN is missing" in after.stdout
    assert "not applied" in harvestwatch(nets, app, "firewall", "show").stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[firewall]\ntcp_services = [0]\n")
    refused = harvestwatch(nets, app, "firewall", "apply", "--config", str(bad))
    assert refused.returncode == 2 and "tcp_services" in refused.stderr


def test_missing_kernel_extensions_are_named(tmp_path):
    (tmp_path / "ip6_tables_matches").write_text("conntrack\ncomment\nicmp6\nhl\nmultiport\nudp\ntcp\n")
    (tmp_path / "ip6_tables_targets").write_text("ERROR\n")
    assert firewall.missing_extensions(str(tmp_path)) == ["match hashlimit", "match set", "target NFLOG"]
    assert firewall.missing_extensions(str(tmp_path / "nowhere")) == ["ip6_tables (no /proc/net/ip6_tables_*)"]


@pytest.mark.root
def test_an_unprivileged_daemon_is_not_told_the_kernel_lacks_ip6_tables():
    """The kernel's listings are root-only (0440) and the daemon runs as its own user: found on
    the booted image, where the hint wrongly said "the kernel lacks: ip6_tables"."""
    listing = "/proc/net/ip6_tables_matches"
    if not os.path.exists(listing) or os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root, setpriv and the ip6_tables module loaded")
    probe = "from appliance.host import firewall; print(firewall.missing_extensions())"
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=str(repo_root()), check=True).stdout
    assert out.strip() == "[]"


IPV4_PROBE = """
import json, socket, sys
app = sys.argv[1]
result = {}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.connect((app, 5353))  # connected: the kernel's port-unreachable answer reaches this socket
s.send(b"\\0" * 12)  # an mDNS query, as a stranger on the internet would send it
try:
    s.recv(512)
    result["mdns"] = "answered"
except ConnectionRefusedError:
    result["mdns"] = "refused"
except socket.timeout:
    result["mdns"] = "silent"
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.settimeout(1)
try:
    t.connect((app, 22))
    result["ssh"] = "connected"
except ConnectionRefusedError:
    result["ssh"] = "refused"
except OSError:
    result["ssh"] = "silent"
print(json.dumps(result))
"""


def test_over_ipv4_every_service_answers_the_lan_only(pair):
    # A source outside every private range (TEST-NET-3): the ruleset must drop what it sends to any
    # port. Nothing listens on 22 or 5353 here: without the rules the kernel refuses (port closed),
    # with them the packets vanish. Private (LAN) sources cannot be tried: the lab uses no real range.
    nets, app, peer = pair
    nets.address(app, "eth0", "203.0.113.1/24")
    nets.address(peer, "eth0", "203.0.113.2/24")
    assert json.loads(in_ns(nets, peer, IPV4_PROBE, "203.0.113.1")) == {"mdns": "refused", "ssh": "refused"}
    assert apply_in(nets, app) == []
    assert json.loads(in_ns(nets, peer, IPV4_PROBE, "203.0.113.1")) == {"mdns": "silent", "ssh": "silent"}
    counted = nets.exec(app, ["iptables-legacy", "-S", "HW-IN4", "-v"]).stdout
    assert re.search(r'services are LAN-only" -c (\d+)', counted).group(1) != "0", counted


# -- floods from many sources (tests/lab/flood.py: any source address, one socket) ----------------
def flood_from(nets, ns, network, sources, step_bits, ports=1, target=APP) -> int:
    done = nets.exec(ns, [sys.executable, "-m", "tests.lab.flood", target, network, "--sources", str(sources),
                          "--step-bits", str(step_bits), "--ports", str(ports)], cwd=repo_root(), timeout=120)
    return json.loads(done.stdout)["sent"]


def chain_counts(nets, ns) -> dict:
    return json.loads(in_ns(nets, ns, """
        import json
        from appliance.host import firewall
        print(json.dumps({"counters": firewall.counters(6, "HW-IN"), "flood": firewall.flood_counts()}))
    """))


def test_a_network_rotating_addresses_is_limited_as_one_source(pair):
    """Sources in 3,000 different /64s of one /48 (the flood that stored 60,000 scans): the /48 limit
    holds them to one network's share, while a scanner elsewhere is untouched; every packet that
    was not logged is counted."""
    nets, app, peer = pair
    assert apply_in(nets, app, rate=100, burst=200) == []  # a /48 may send 200/s, burst 1600
    sent = flood_from(nets, peer, "2001:db8:77::/48", 3000, 64, ports=2)
    # The /48's burst may have taken its /32's (both 1600); the /32's rate (400/s) is twice the
    # /48's: a second later the rest of the /32 has its share again, whatever the flood's pace.
    time.sleep(1.0)
    other = flood_from(nets, peer, "2001:db8:4400::/40", 1, 64, ports=50)
    counts = chain_counts(nets, app)
    logged = counts["counters"]["HarvestWatch: log new inbound"]
    by_tier = counts["counters"]
    assert by_tier["HarvestWatch: flood limit per /48"] >= sent - 2000, counts  # the burst and two seconds' rate
    assert by_tier["HarvestWatch: flood limit per /64"] == 0, counts
    assert logged + counts["flood"]["flood"] == sent + other, counts
    assert counts["flood"]["flood-table"] == 0, counts
    assert logged >= 1600 + other, "the other network's 50 packets must all be logged"


def test_a_full_source_table_is_counted_not_silent(pair):
    """70,000 sources, each in a /64 of its own, fill the per-/64 table (65,536 entries): the kernel
    drops the rest without counting them anywhere; the firewall's accounting names them."""
    nets, app, peer = pair
    assert apply_in(nets, app, rate=100_000, burst=200_000, rate_total=100_000) == []
    sent = flood_from(nets, peer, "2001:db8:80::/41", 70_000, 64)
    counts = chain_counts(nets, app)
    logged = counts["counters"]["HarvestWatch: log new inbound"]
    overflow = counts["flood"]["flood-table"]
    assert counts["flood"]["flood"] == 0, counts
    assert logged <= firewall.TABLE_MAX, counts
    # Exact but for the one packet per CPU that the reading allows to be between two rules.
    assert sent - logged - os.cpu_count() <= overflow <= sent - logged, counts
    assert overflow >= 70_000 - firewall.TABLE_MAX - os.cpu_count(), counts


PROBE = "2001:db8:1:1::7"


def test_probe_addresses_are_logged_while_a_flood_from_everywhere_is_limited(pair):
    """A flood from 4,000 networks empties the total limit (10/s, burst 80); a scan of a watched probe
    address that comes meanwhile is logged whole, a scan of the appliance's own address is not."""
    nets, app, peer = pair
    nets.address(app, "eth0", f"{PROBE}/64")
    # The lab is one /32 (2001:db8::/32): per-source limits above the total, so the total is what limits.
    assert apply_in(nets, app, rate=1000, burst=2000, rate_total=10) == []
    in_ns(nets, app, f"from appliance.host import probe_set; probe_set.add({PROBE!r}, 60)")
    members = in_ns(nets, app, "from appliance.host import probe_set; print(probe_set.members())")
    assert PROBE in members
    result = json.loads(in_ns(nets, app, """
        import json, subprocess, sys
        from appliance.capture.nflog import NflogReader
        reader = NflogReader(int(sys.argv[1]))
        def flood(target, network, sources, ports):
            subprocess.run(["ip", "netns", "exec", sys.argv[2], sys.executable, "-m", "tests.lab.flood", target,
                            network, "--sources", str(sources), "--step-bits", "48", "--ports", str(ports)],
                           check=True, capture_output=True, timeout=60)
        flood(sys.argv[3], "2001:db8:8000::/33", 4000, 1)          # the flood
        flood(sys.argv[4], "2001:db8:4400::/40", 1, 40)            # a scan of the probe address
        flood(sys.argv[3], "2001:db8:4500::/40", 1, 40)            # a scan of the appliance's address
        logged = {}
        for _ in range(50):
            batch = reader.read_available()
            if not batch:
                break
            for p in batch:
                logged[p.dst + " " + p.src] = logged.get(p.dst + " " + p.src, 0) + 1
        print(json.dumps(logged))
    """, str(GROUP), peer, APP, PROBE, timeout=120))
    assert result.get(f"{PROBE} 2001:db8:4400::1") == 40, result
    assert result.get(f"{APP} 2001:db8:4500::1", 0) < 40, result
    counts = chain_counts(nets, app)["flood"]
    to_appliance = sum(n for key, n in result.items() if key.startswith(APP + " "))
    assert to_appliance + counts["flood"] == 4000 + 40, (counts, result)  # what was not logged is counted
    assert counts["probe-flood"] == 0 and counts["flood-table"] == 0, counts
