"""Configuration (documented defaults, clear refusals) and the probe schedule."""
import pytest

from appliance.config import DEBIAN_POOLS, ConfigError, from_dict, load
from appliance.probe.schedule import ProbeScheduler


def test_an_absent_or_empty_config_gives_the_documented_defaults(tmp_path):
    empty = tmp_path / "config.toml"
    empty.write_text("")
    for config in (load(str(empty)), load(str(tmp_path / "missing.toml"), missing_ok=True)):
        assert config.probe.pools == DEBIAN_POOLS and "2.pool.ntp.org" in config.probe.pools
        assert config.probe.observation >= 24 * 3600
        assert config.detect.min_ports == 10 and config.privacy.temp_prefered_lft == 1200
        assert config.db_path == "/var/lib/harvestwatch/harvestwatch.sqlite"


def test_values_are_read_and_typed(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[appliance]\ninterface = "lan0"\nstate_dir = "/tmp/hw/"\n'
                    '[probe]\npools = ["0.pool.lab.test"]\nnameservers = ["2001:db8:53::1"]\nmin_gap = 2\n')
    config = load(str(path))
    assert config.appliance.interface == "lan0" and config.db_path == "/tmp/hw/harvestwatch.sqlite"
    assert config.probe.min_gap == 2.0 and isinstance(config.probe.min_gap, float)


@pytest.mark.parametrize("data, words", [
    ({"probe": {"min_gap": -1}}, "probe.min_gap must be positive"),
    ({"probe": {"kinds": ["ntp", "tcp80"]}}, "probe.kinds"),
    ({"probe": {"pools": []}}, "probe.pools is empty"),
    ({"probe": {"nameservers": ["dns.example"]}}, "is not an IP address"),
    ({"probe": {"observaton": 5}}, "unknown key probe.observaton"),
    ({"detect": {"min_ports": "10"}}, "detect.min_ports must be a whole number"),
    ({"firewall": {"tcp_services": [22, 70000]}}, "firewall.tcp_services must be 1..65535, got 70000"),
    ({"firewal": {}}, "unknown section [firewal]"),
    ({"appliance": {"lan_prefixes": ["2001:db8::/300"]}}, "is not a network"),
    ({"privacy": {"temp_valid_lft": 600}}, "temp_valid_lft must be longer"),
    ({"privacy": {"temp_prefered_lft": -1}}, "privacy.temp_prefered_lft must be 60..4294967294, got -1"),
    ({"probe": {"reply_timeout": float("inf")}}, "probe.reply_timeout must be a finite number, got inf"),
    ({"store": {"flush_every": float("nan")}}, "store.flush_every must be a finite number, got nan"),
    ({"appliance": {"state_dir": "var/lib/harvestwatch"}}, "appliance.state_dir must be an absolute path"),
    # ::/0 would make the whole internet LAN: the firewall would serve it, the page show itself to it.
    ({"appliance": {"lan_prefixes": ["::/0"]}}, "::/0 is wider than one site"),
    ({"appliance": {"lan_prefixes": ["2001:db8::/32"]}}, "must be a /48 or longer"),
    ({"appliance": {"lan_prefixes": ["2001:db8:1::1"]}}, "has no prefix length"),
    ({"appliance": {"lan_prefixes": ["ff02::/16"]}}, "ff02::/16 is not a LAN"),
    ({"appliance": {"lan_prefixes": ["::1/128"]}}, "::1/128 is not a LAN"),
])
def test_a_bad_value_is_refused_with_the_key_named(data, words):
    with pytest.raises(ConfigError) as refused:
        from_dict(data, source="/etc/harvestwatch/config.toml")
    assert words in str(refused.value) and "/etc/harvestwatch/config.toml" in str(refused.value)


def test_lan_prefixes_of_a_site_or_inside_ula_and_link_local_are_taken():
    prefixes = ["2001:db8:1::/48", "2001:db8:1:2::/64", "fd00::/8", "fe80::/10"]
    assert from_dict({"appliance": {"lan_prefixes": prefixes}}).appliance.lan_prefixes == prefixes


def test_a_file_that_is_not_utf8_is_refused_in_one_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b'[appliance]\nstate_dir = "/var/lib/\xff\xfe"\n')
    with pytest.raises(ConfigError, match=r"config.toml: not UTF-8 text \(byte 34\)"):
        load(str(path))


def test_broken_toml_is_refused_with_the_file_named(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[probe\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(str(path))


def run_schedule(scheduler: ProbeScheduler, servers: list[str], seconds: int, live_cap: int | None = None):
    """Every second for `seconds`: the rounds the scheduler sends, [(time, [(server, kind)])]."""
    history: dict = {}
    rounds, held = [], 0
    for now in range(seconds):
        chosen = scheduler.choose(servers, history, float(now), live=held)
        if chosen:
            for server, kind in chosen:
                kinds = history.get(server, (0.0, {}))[1]
                history[server] = (float(now), {**kinds, kind: kinds.get(kind, 0) + 1})
            held += len(chosen)
            scheduler.sent(float(now))
            rounds.append((now, chosen))
    return rounds


def test_schedule_spreads_probes_over_servers_kinds_and_time():
    servers = ["2001:db8::a", "2001:db8::b"]
    scheduler = ProbeScheduler(["ntp", "udp123", "udp321"], server_interval=100, min_gap=10, round_every=0,
                               first_delay=5, start=0, max_live=10)
    rounds = run_schedule(scheduler, servers, 400)
    done = [(t, server, kind) for t, chosen in rounds for server, kind in chosen]
    assert all(len(chosen) == 1 for _, chosen in rounds)  # round_every 0: one probe at a time
    times = [t for t, _, _ in done]
    assert times[0] == 5 and all(b - a >= 10 for a, b in zip(times, times[1:]))
    for server in servers:
        mine = [(t, k) for t, s, k in done if s == server]
        assert all(b[0] - a[0] >= 100 for a, b in zip(mine, mine[1:]))   # once per server interval
        assert [k for _, k in mine[:3]] == ["ntp", "udp123", "udp321"]   # every kind in turn
    assert len(done) == 8  # then the cap on live addresses holds it back


def test_probes_leave_in_rounds_no_faster_on_average_than_min_gap():
    servers = [f"2001:db8::{n:x}" for n in range(1, 21)]
    scheduler = ProbeScheduler(["ntp", "udp123"], server_interval=150, min_gap=10, round_every=60,
                               first_delay=5, start=0, max_live=1000)
    planned = scheduler.next_due(servers, {})
    rounds = run_schedule(scheduler, servers, 400)
    times = [t for t, _ in rounds]
    # Rounds of at most round_every / min_gap probes, round_every apart: 20 servers, six at a time.
    assert [(t, len(chosen)) for t, chosen in rounds[:4]] == [(5, 6), (65, 6), (125, 6), (185, 6)]
    assert all(b - a >= 60 for a, b in zip(times, times[1:]))
    assert all(len(chosen) <= 6 for _, chosen in rounds)
    assert all(len({server for server, _ in chosen}) == len(chosen) for _, chosen in rounds)  # one per server
    # Never-probed servers first, and each server again no sooner than server_interval.
    first = [server for _, chosen in rounds[:4] for server, _ in chosen][:20]
    assert sorted(first) == sorted(servers)
    seen: dict[str, int] = {}
    for t, chosen in rounds:
        for server, _ in chosen:
            assert t - seen.get(server, -1000) >= 150
            seen[server] = t
    # What the page shows before the first round: six servers a round, a round a minute.
    assert [at for at, _ in planned] == [5.0] * 6 + [65.0] * 6 + [125.0] * 6 + [185.0] * 2


def test_schedule_waits_while_the_live_address_cap_is_reached():
    scheduler = ProbeScheduler(["ntp"], server_interval=1, min_gap=1, round_every=0, first_delay=0, start=0,
                               max_live=3)
    assert scheduler.choose(["2001:db8::a"], {}, 10.0, live=3) == []
    assert scheduler.choose(["2001:db8::a"], {}, 10.0, live=2) == [("2001:db8::a", "ntp")]
    rounds = ProbeScheduler(["ntp"], server_interval=1, min_gap=1, round_every=10, first_delay=0, start=0,
                            max_live=5)
    servers = [f"2001:db8::{n:x}" for n in range(1, 9)]
    assert len(rounds.choose(servers, {}, 10.0, live=3)) == 2  # a round fills only the room left
