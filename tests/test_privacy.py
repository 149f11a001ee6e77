"""Privacy-address sysctls: the drop-in file, and the live check that restores what the kernel dropped."""
import json

import jinja2
import pytest

from appliance.host import privacy
from tests.lab.netns import Namespaces, NetnsUnavailable, repo_root

WANT = privacy.wanted(1200, 2400)


def test_dropin_sets_the_seed_lifetimes_for_new_and_named_interfaces():
    text = privacy.dropin(1200, 2400, ("eth0",))
    for scope in ("net.ipv6.conf.default.", "net.ipv6.conf.all.", "net/ipv6/conf/eth0/"):
        assert f"{scope}use_tempaddr = 2" in text
        assert f"{scope}temp_prefered_lft = 1200" in text
        assert f"{scope}temp_valid_lft = 2400" in text


def role_dropin(interface: str) -> str:
    """The role's drop-in, rendered as Ansible renders it (Jinja2) for one interface."""
    template = repo_root() / "ansible/roles/harvestwatch/templates/60-harvestwatch-privacy.conf.j2"
    return jinja2.Template(template.read_text(), keep_trailing_newline=True).render(harvestwatch_interface=interface)


@pytest.mark.parametrize("interface", ["eth0", "end0", "eth0.10"])
def test_the_roles_dropin_file_is_what_the_code_wants(interface):
    assert role_dropin(interface) == privacy.dropin(1200, 2400, (interface,))


@pytest.mark.root
@pytest.mark.netns
def test_the_dropin_reaches_an_interface_that_was_there_first_even_with_a_dot_in_its_name(tmp_path):
    """At boot the Pi's eth0 exists before systemd-sysctl runs, so neither `default` nor `all` reaches
    it; its own lines do. Applied as the role's handler applies it (sysctl -e -p), in a namespace."""
    try:
        ns = Namespaces()
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))
    dropin = tmp_path / "60-harvestwatch-privacy.conf"
    dropin.write_text(role_dropin("lan.7"))
    with ns:
        app, peer = ns.add("app"), ns.add("peer")
        ns.veth(app, "lan.7", peer, "hwp1")
        ns.sysctl(app, "net.ipv6.conf.lan/7.use_tempaddr", "0")
        applied = ns.exec(app, ["sysctl", "-e", "-p", str(dropin)])
        assert applied.returncode == 0, applied.stderr
        values = json.loads(ns.python(app, CHECK, "lan.7", "0").stdout)["values"]
        assert values == {"use_tempaddr": 2, "temp_prefered_lft": 1200, "temp_valid_lft": 2400}


def test_a_vanished_interface_is_a_problem_not_a_crash(tmp_path):
    state = privacy.check("eth9", WANT, restore=True, root=tmp_path)
    assert not state.in_force and "eth9" in state.problems[0]


CHECK = """
import json, sys
from appliance.host import privacy
state = privacy.check(sys.argv[1], privacy.wanted(1200, 2400), restore=sys.argv[2] == "1")
print(json.dumps({"in_force": state.in_force, "problems": state.problems, "restored": state.restored,
                  "values": privacy.read(sys.argv[1])}))
"""


@pytest.mark.root
@pytest.mark.netns
def test_kernel_switching_temporary_addresses_off_is_reported_and_restored():
    """A real interface in a throw-away namespace, put in the state the kernel leaves it in after
    "regeneration time exceeded" (use_tempaddr=-1)."""
    try:
        ns = Namespaces()
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))
    with ns:
        app, peer = ns.add("app"), ns.add("peer")
        ns.veth(app, "hwp0", peer, "hwp1")
        ns.sysctl(app, "net.ipv6.conf.hwp0.use_tempaddr", "-1")
        ns.sysctl(app, "net.ipv6.conf.hwp0.temp_prefered_lft", "86400")

        seen = json.loads(ns.python(app, CHECK, "hwp0", "0").stdout)
        assert not seen["in_force"]
        assert any("switched temporary addresses off" in p for p in seen["problems"])
        assert any("temp_prefered_lft is 86400" in p for p in seen["problems"])
        assert seen["values"]["use_tempaddr"] == -1  # only looked

        fixed = json.loads(ns.python(app, CHECK, "hwp0", "1").stdout)
        assert fixed["in_force"] and len(fixed["restored"]) == 3  # valid_lft was the 7-day default
        assert fixed["values"] == {"use_tempaddr": 2, "temp_prefered_lft": 1200, "temp_valid_lft": 2400}
        assert json.loads(ns.python(app, CHECK, "hwp0", "0").stdout)["in_force"]
