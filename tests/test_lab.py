"""The network-namespace lab gives the appliance a realistic world: SLAAC with privacy addresses,
pool DNS, honest NTP servers, and a harvester whose contact is followed by two waves of scans."""
import ipaddress
import os
import re
import secrets
import time
from pathlib import Path

import pytest

from tests.lab.netns import NetnsUnavailable, run

pytestmark = [pytest.mark.root, pytest.mark.netns]

if os.geteuid() != 0:
    pytest.skip("the lab needs root (network namespaces)", allow_module_level=True)

from tests.lab.lab import Lab, missing_tools  # noqa: E402

if missing_tools():
    pytest.skip(f"the lab needs {', '.join(missing_tools())}", allow_module_level=True)

DELAY1, DELAY2 = 1.0, 4.0
SCAN_WAIT = DELAY2 + 15  # nmap itself takes about a second; generous for a loaded 2-core machine


@pytest.fixture(scope="module")
def lab():
    began = time.monotonic()
    try:
        lab = Lab(delay1=DELAY1, delay2=DELAY2).start()
    except NetnsUnavailable as error:
        pytest.skip(str(error))
    print(f"\nlab {lab.tag} started in {time.monotonic() - began:.2f} s")
    try:
        yield lab
    finally:
        lab.close()


def fresh_lan_address(lab) -> str:
    """A new /128 in the LAN prefix, usable at once (nodad) and never picked as a default source."""
    prefix = ipaddress.ip_network(lab.lan_prefix)
    address = str(prefix[secrets.randbits(64) | (1 << 63)])
    run(["ip", "-n", lab.lan_ns, "addr", "add", f"{address}/128", "dev", lab.lan_dev, "nodad", "preferred_lft", "0"])
    return address


def count_arrivals(lab, destination: str) -> None:
    """Counting rules (no target) in lan's INPUT: packets from each scanner net to `destination`."""
    for net in lab.scanner_nets:
        run(["ip", "netns", "exec", lab.lan_ns, "ip6tables-legacy", "-w", "-A", "INPUT",
             "-s", net, "-d", destination])


def arrivals(lab, destination: str) -> list[int]:
    """Packets counted so far from [scanner net 1, scanner net 2] to `destination`."""
    rules = run(["ip", "netns", "exec", lab.lan_ns, "ip6tables-legacy", "-w", "-S", "INPUT", "-v"]).stdout
    counts = []
    for net in lab.scanner_nets:
        match = re.search(rf"-s {re.escape(net)} -d {re.escape(destination)}/128 -c (\d+) ", rules)
        assert match, rules
        counts.append(int(match.group(1)))
    return counts


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"no {what} within {seconds} s")


def test_lan_has_slaac_and_temporary_address(lab):
    prefix = ipaddress.ip_network(lab.lan_prefix)
    stable, temporary = lab.lan_address(), lab.lan_temporary_addresses()
    assert stable and ipaddress.ip_address(stable) in prefix
    assert temporary and all(ipaddress.ip_address(a) in prefix for a in temporary)
    assert stable not in temporary
    sysctl = run(["ip", "netns", "exec", lab.lan_ns, "sysctl", "-n",
                  f"net.ipv6.conf.{lab.lan_dev}.use_tempaddr", f"net.ipv6.conf.{lab.lan_dev}.temp_valid_lft"])
    assert sysctl.stdout.split() == ["2", "2400"]


def test_lan_routes_only_through_the_router_and_the_lab_internet_ends_in_the_lab(lab):
    routes = run(["ip", "-n", lab.lan_ns, "-6", "route", "show", "default"]).stdout
    assert "proto ra" in routes
    # The router's way out is the lab's internet core, a namespace with no way out at all.
    assert "dev wan0" in run(["ip", "-n", lab.rtr_ns, "-6", "route", "show", "default"]).stdout
    assert run(["ip", "-n", lab.net_ns, "-6", "route", "show", "default"]).stdout == ""
    assert run(["ip", "-n", lab.net_ns, "-4", "route", "show", "default"]).stdout == ""


def test_pool_names_resolve_from_lan(lab):
    for name, members in lab.pools.items():
        assert lab.call(lab.lan_ns, "resolve_aaaa", lab.nameserver, name) == sorted(members)
    resolv = Path("/etc/netns") / lab.lan_ns / "resolv.conf"
    assert resolv.read_text() == f"nameserver {lab.nameserver}\n"


def test_every_ntp_server_answers_lan(lab):
    for server in lab.honest + [lab.harvester]:
        assert lab.call(lab.lan_ns, "ntp_reply_mode", server, 2.0) == 4, server


def test_cli_reaches_the_appliance(lab):
    assert lab.call(lab.cli_ns, "udp_port_state", lab.lan_address(), 9) == "closed"


def test_harvester_contact_is_followed_by_two_scans_and_honest_contact_by_none(lab):
    honest_source, harvested_source = fresh_lan_address(lab), fresh_lan_address(lab)
    for address in (honest_source, harvested_source):
        count_arrivals(lab, address)

    lab.call(lab.lan_ns, "send_udp", honest_source, lab.honest[0], 123)
    sent = time.monotonic()
    lab.call(lab.lan_ns, "send_udp", harvested_source, lab.harvester, 321)

    def recorded(event, **fields):
        return [line for line in lab.journal() if line["event"] == event
                and all(line.get(key) == value for key, value in fields.items())]

    wait_for(lambda: recorded("packet", src=harvested_source, dport=321), 5, "journal line for the packet")
    wait_for(lambda: arrivals(lab, harvested_source)[0], SCAN_WAIT, "first-wave scan arrival")
    first_at = time.monotonic() - sent
    wait_for(lambda: arrivals(lab, harvested_source)[1], SCAN_WAIT, "second-wave scan arrival")
    second_at = time.monotonic() - sent
    assert DELAY1 <= first_at < second_at and second_at >= DELAY2

    scans = wait_for(lambda: len(recorded("scan", target=harvested_source)) == 2
                     and recorded("scan", target=harvested_source), 10, "both scans in the journal")
    assert [(scan["wave"], scan["scanner"], scan["returncode"]) for scan in scans] == [
        (1, lab.ns.name("scan1"), 0), (2, lab.ns.name("scan2"), 0)]
    first, second = arrivals(lab, harvested_source)
    print(f"\nscan arrivals after the packet: wave 1 {first_at:.2f} s ({first} packets), "
          f"wave 2 {second_at:.2f} s ({second} packets)")
    assert first >= 150 and second >= 150  # ~100 TCP + ~100 UDP ports each

    # The honest server's contact is as old as the harvester's: both waves would have come by now.
    assert arrivals(lab, honest_source) == [0, 0]
    assert not [line for line in lab.journal() if honest_source in line.values()]


def test_harvester_refuses_sources_outside_the_lan(lab):
    # From the router's upstream side: a source the sidecar must never hand to a scanner.
    lab.call(lab.rtr_ns, "send_udp", None, lab.harvester, 123)
    refused = wait_for(lambda: [line for line in lab.journal() if line["event"] == "refused"], 5, "refusal")
    source = refused[0]["src"]
    assert ipaddress.ip_address(source) not in ipaddress.ip_network(lab.lan_prefix)
    time.sleep(DELAY1 + 1)
    assert not [line for line in lab.journal() if line["event"] == "scan" and line["target"] == source]


def test_close_leaves_nothing_behind():
    lab = Lab(delay1=DELAY1, delay2=DELAY2).start()
    prefix, workdir, daemons = f"hw-{lab.tag}-", str(lab.workdir), list(lab.ns.processes)
    assert len(daemons) == 6  # dnsmasq, 3 chronyd, radvd, harvester
    lab.close()
    lab.close()  # twice is harmless
    assert not [ns for ns in run(["ip", "netns", "list"]).stdout.split() if ns.startswith(prefix)]
    assert not [d for d in Path("/etc/netns").glob(f"{prefix}*")] if Path("/etc/netns").exists() else True
    assert all(process.poll() is not None for process in daemons)
    assert not leftover_processes(prefix, workdir)
    assert not Path(workdir).exists()


def leftover_processes(*markers: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(marker in text for marker in markers):
            found.append(text)
    return found
