"""verify's check of the kernel's interface masks: what iptables makes from a name, and what it flags."""
from appliance.host.kernel_rules import Interfaces, expected_mask, wrong_masks

ANY = ("", bytes(16))


def test_the_mask_iptables_makes_covers_the_name_and_its_nul_or_stops_before_the_wildcard():
    assert expected_mask("lo") == b"\xff" * 3 + bytes(13)
    assert expected_mask("eth+") == b"\xff" * 3 + bytes(13)
    assert expected_mask("enx0123456789ab") == b"\xff" * 16
    assert expected_mask("") == bytes(16)


def test_a_one_bit_mask_that_lets_lo_match_lan0_is_named():
    # What python-iptables 1.x wrote for `-i lo`: 0x01 per byte, so "lan0" & mask == "lo" & mask.
    bad = Interfaces("HW-IN", 1, ("lo", b"\x01\x01\x01" + bytes(13)), ANY)
    good = Interfaces("HW-OUT", 1, ANY, ("lo", expected_mask("lo")))
    assert wrong_masks([good]) == []
    [problem] = wrong_masks([bad, good])
    assert problem.startswith("HW-IN rule 1 (-i lo) has interface mask 010101")
    assert "matches other interfaces" in problem


def test_a_mask_without_a_name_is_named_too():
    assert wrong_masks([Interfaces("HW-IN", 3, ("", b"\xff" + bytes(15)), ANY)])
