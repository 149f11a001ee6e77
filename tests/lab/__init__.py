"""The network-namespace lab: a simulated LAN, router, DNS, NTP pool, harvester and scanners."""
