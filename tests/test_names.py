"""Scanner names: shown only when the PTR name leads back to the same address (a real dnsmasq)."""
from __future__ import annotations

import ipaddress
import json
import textwrap
import time

import pytest

from tests.lab.netns import Namespaces, NetnsUnavailable, repo_root

HONEST, LIAR, NAMELESS = "2001:db8:77::10", "2001:db8:77::66", "2001:db8:77::99"


@pytest.fixture
def dns_ns(tmp_path):
    try:
        nets = Namespaces()
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))
    try:
        ns = nets.add("dns")
        reverse = ipaddress.ip_address(LIAR).reverse_pointer
        nets.popen(ns, ["timeout", "60", "dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--port=53",
                        "--listen-address=::1", "--bind-interfaces", f"--pid-file={tmp_path / 'dnsmasq.pid'}",
                        f"--host-record=scanner.research.example,{HONEST}",
                        f"--ptr-record={reverse},www.bank.example",            # claims a name it does not own
                        "--host-record=www.bank.example,2001:db8:99::1"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # bounded: until dnsmasq answers
            if "scanner" in lookup(nets, ns, HONEST):
                break
            time.sleep(0.1)
        yield nets, ns
    finally:
        nets.close()


def lookup(nets, ns, *addresses) -> str:
    code = textwrap.dedent("""
        import json, sys
        from appliance.attribute.names import confirmed_name
        print(json.dumps({a: confirmed_name(a, nameservers=["::1"], timeout=1.0) for a in sys.argv[1:]}))
    """)
    return nets.python(ns, code, *addresses, cwd=repo_root(), check=False).stdout


def test_only_forward_confirmed_names_are_kept(dns_ns):
    nets, ns = dns_ns
    names = json.loads(lookup(nets, ns, HONEST, LIAR, NAMELESS))
    assert names == {HONEST: "scanner.research.example", LIAR: None, NAMELESS: None}


def test_dns_failure_is_no_name_not_an_error(dns_ns):
    nets, ns = dns_ns
    code = ("from appliance.attribute.names import confirmed_name; "
            f"print(confirmed_name('{HONEST}', nameservers=['2001:db8:77::53'], timeout=0.5))")
    assert nets.python(ns, code, cwd=repo_root()).stdout.strip() == "None"


def test_the_store_remembers_what_was_checked(tmp_path):
    from appliance.store.db import Store
    store = Store(str(tmp_path / "s.sqlite"))
    try:
        store.db.executemany(
            "INSERT INTO scans(kind, scanner, scanner_net, target, start, end, packets, port_count, ports, protocols, "
            "targets) VALUES ('portscan', ?, '2001:db8:77::/64', '2001:db8:1::1', ?, ?, 10, 10, '[]', '{}', '[]')",
            [(HONEST, 100.0, 101.0), (LIAR, 200.0, 201.0)])
        assert store.unnamed_scanners(10) == [LIAR, HONEST]
        store.set_scanner_names({LIAR: None, HONEST: "scanner.research.example"})
        assert store.unnamed_scanners(10) == []
        assert store.scanner_names() == {HONEST: "scanner.research.example"}
    finally:
        store.close()
