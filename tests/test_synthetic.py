"""Ground truth from the synthetic appliance log: every triggered scan is found with its true
trigger ranked first, scans nobody triggered are unattributed, sweeps are sweeps."""
import io

import pytest

from appliance.synthlog import generate

# Every test here runs under both twins of the parser (conftest.twin).
pytestmark = pytest.mark.usefixtures("twin")


# A scan in every episode (the benchmark's log), and a busy LAN: five episodes of noise alone
# after each scan, so that most contacts come from addresses nobody scans.
@pytest.fixture(scope="module", params=[0, 5], ids=["scan-every-episode", "busy-lan"])
def synthetic(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    buffer = io.StringIO()
    truth = generate(buffer, 60_000, seed=11, quiet=request.param)
    (folder / "kern.log").write_text(buffer.getvalue())
    return folder / "kern.log", truth


def test_true_trigger_ranked_first(synthetic, analyze_json):
    log, truth = synthetic
    doc, err = analyze_json(log)
    scans = {(s["target"], s["scanner"]): s for s in doc["scans"]}
    assert len(truth["triggered"]) > 200
    for expected in truth["triggered"]:
        scan = scans[(expected["target"], expected["scanner"])]
        assert scan["port_count"] == expected["ports"]
        assert scan["start_epoch"] == pytest.approx(expected["start"], abs=1.0)
        first = [c for c in scan["candidates"] if c["rank"] == 1]
        trigger = expected["trigger"]
        assert {(c["dst"], c["dport"], c["proto"]) for c in first} == {(trigger["dst"], trigger["dport"], "UDP")}
        assert scan["attribution"] == "candidate"  # DNS and honest servers were contacted too
    for expected in truth["untriggered"]:
        assert scans[(expected["target"], expected["scanner"])]["attribution"] == "unattributed"
    assert len(doc["scans"]) == len(truth["triggered"]) + len(truth["untriggered"])
    assert sorted(s["scanner"] for s in doc["sweeps"]) == sorted(s["scanner"] for s in truth["sweeps"])
    # The harvesters lead the trigger endpoints, each with every contact followed by a scan.
    harvesters = {t["trigger"]["dst"] for t in truth["triggered"]}
    leaders = doc["trigger_endpoints"][:len({(t["trigger"]["dst"], t["trigger"]["dport"]) for t in truth["triggered"]})]
    assert {s["dst"] for s in leaders} == harvesters
    assert all(s["hit_rate"] == 1.0 for s in leaders)
    # Garbage and truncated lines were counted, not fatal.
    assert doc["input"]["skipped"]["not-netfilter"] > 0 and doc["input"]["skipped"]["truncated"] > 0
    assert doc["input"]["lines"] == truth["lines"]
    assert "skipped" in err.splitlines()[-1]
