"""`/metrics`: the Overview's numbers in the Prometheus text format."""
from __future__ import annotations

from ..words import Verdict


def render(doc: dict) -> str:
    numbers, daemon = doc["numbers"], doc["daemon"]
    lines = []

    def metric(name: str, help_text: str, value, kind: str = "gauge", labels: str = "") -> None:
        lines.append(f"# HELP harvestwatch_{name} {help_text}")
        lines.append(f"# TYPE harvestwatch_{name} {kind}")
        lines.append(f"harvestwatch_{name}{labels} {value}")

    metric("daemon_up", "1 if the daemon wrote a heartbeat in the last minute", int(daemon["alive"]))
    metric("firewall_in_force", "1 if the ruleset was verified in force",
           int(bool((doc["firewall"] or {}).get("in_force"))))
    metric("privacy_in_force", "1 if the privacy sysctls are in force",
           int(bool((doc["privacy"] or {}).get("in_force"))))
    metric("scans", "port scans stored", numbers["scans"], "gauge")
    metric("sweeps", "sweeps stored", numbers["sweeps"])
    metric("scanners", "distinct scanner addresses", numbers["scanners"])
    metric("probes_sent", "probe packets sent", numbers["probes"])
    lines.append("# HELP harvestwatch_servers NTP servers by verdict")
    lines.append("# TYPE harvestwatch_servers gauge")
    for verdict, key in ((Verdict.HARVESTER, "harvesters"), (Verdict.SUSPECT, "suspects"),
                         (Verdict.UNVERIFIED, "unverified"), (Verdict.WATCHING, "watching"), (Verdict.CLEAN, "clean")):
        lines.append(f'harvestwatch_servers{{verdict="{verdict}"}} {numbers[key]}')
    metric("gaps", "capture gaps recorded", doc["gaps"]["total"])
    capture = doc["capture"] or {}
    metric("capture_lost_packets", "packets the capture knows it lost", capture.get("lost", 0))
    return "\n".join(lines) + "\n"
