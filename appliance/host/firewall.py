"""The HarvestWatch ruleset: apply, verify, show and remove it (iptables-legacy).

Every new inbound IPv6 packet that is not the LAN talking to the appliance's own services, or
traffic IPv6 itself needs, is handed to NFLOG (the capture) and dropped; every new outbound
packet is handed to NFLOG (the trigger history). The small IPv4 part keeps every service (SSH, the
page, mDNS) LAN-only over IPv4 too.

Floods are limited in tiers, so that what a flood costs is bounded and what it hides is counted:
- packets to a watched probe address (the ipset `HW-PROBES`, filled by the daemon as it probes, each
  entry expiring with its window) come first, with a limit of their own: a flood from elsewhere
  never crowds out the evidence that matters;
- then per source /64, /48 and /32 (hashlimit), fine first, so a network that rotates addresses
  is one source, and a flood from one /48 leaves the rest of its /32 (an ISP's other customers)
  their share;
- then a total over all sources (what the daemon is sized for), for floods from many networks.
Each limit drops unlogged and is counted by its rule; the hashlimit tables are bounded, and a
packet dropped because a table was full (the kernel counts it nowhere) is counted as the packets
that reached the tiers minus those the tiers dropped or logged.

Each rule is written once, below, in `ip6tables -S` syntax, and goes to the kernel through
`ip6tables-legacy-restore --noflush`: parsed by iptables itself, one transaction per table, nothing
outside our chains and our jumps touched (what ufw and Docker do). python-iptables wrote the rules
before, and showed three defects here (a segfault after a refresh, option tables misread with
iptables 1.8.11, and interface masks of one bit per byte, which made `-i lo` match `lan0`, `veth1`,
`tun0`: the firewall failed open while its text read right). `verify` reads back both the text
(`-S`, which must equal the ruleset) and the kernel's own bytes for what text cannot show
(kernel_rules: the interface masks).

Why legacy: the kernel evaluates both the legacy tables and nftables, so the rules work whichever
`ip6tables` the system prefers, but only `ip6tables-legacy` shows them: `show` says so. The image
makes legacy the default.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass

from ..lan import IPV4_PRIVATE, LINK_LOCAL, ULA, lan_prefix
from ..settings import CONFIG_PATH
from . import kernel_rules, probe_set

CHAIN_IN, CHAIN_OUT, CHAIN_IN4 = "HW-IN", "HW-OUT", "HW-IN4"
PROBE_SET = probe_set.NAME
# The limits, each a rule whose counter is what it dropped, and the reason that count is recorded under.
PROBE_LIMIT = "HarvestWatch: flood limit, probe addresses"
TIER_LIMITS = {64: "HarvestWatch: flood limit per /64", 48: "HarvestWatch: flood limit per /48",
               32: "HarvestWatch: flood limit per /32", None: "HarvestWatch: flood limit, all sources"}
REACHED = "HarvestWatch: reached the flood limits"
LOGGED = "HarvestWatch: log new inbound"
# Per tier, (rate, burst) as multiples of the /64's: a /48 may send twice what one /64 may, a /32
# four times (coarse networks hold many hosts); both burst eight times, so that a scan spread over a
# site (200 hosts x 100 ports in a fifth of a second) passes whole. Fine first: a /48's flood is cut
# at the /48 tier; its burst may empty the /32's, but from then on it passes half the /32's rate,
# and the other networks of that /32 (an ISP's other customers) have the other half. A /32 burst
# of sixteen times (tried) let floods from one /32 past at a pace the daemon could not read in the
# flood lab (overruns, lost messages).
TIER_SCALE = {64: (1, 1), 48: (2, 8), 32: (4, 8)}
BURST_MAX = 1_000_000            # the most hashlimit takes
HASHLIMIT_SCALE = 1_000_000      # hashlimit's time unit per second (revision 2 and later)
TOTAL_BURST_SECONDS = 16         # the total's (and the probe addresses') burst: this many seconds of its rate
TABLE_SIZE, TABLE_MAX = 4096, 65536  # buckets and most entries of each per-source table (kernel memory)
LAN_LINK_LOCAL, LAN_ULA, IPV4_LAN = LINK_LOCAL, ULA, IPV4_PRIVATE
ICMPV6_ERRORS = (1, 2, 3, 4)               # unreachable, packet too big (PMTU), time exceeded, parameter problem
NDP_TYPES = (133, 134, 135, 136, 137)      # router/neighbour solicitation and advertisement, redirect
MLD_TYPES = (130, 131, 132, 143)           # multicast listener query/report/done, MLDv2 report
ECHO_REQUEST = 128
COMMANDS = {6: "ip6tables-legacy", 4: "iptables-legacy"}
RESTORE = {6: "ip6tables-legacy-restore", 4: "iptables-legacy-restore"}
HOOKS = {CHAIN_IN: (6, "INPUT"), CHAIN_OUT: (6, "OUTPUT"), CHAIN_IN4: (4, "INPUT")}
# Extensions the ruleset needs, as the kernel lists them once loaded (for a clear error).
NEEDED = {"matches": ("conntrack", "comment", "icmp6", "hl", "multiport", "hashlimit", "set", "udp", "tcp"),
          "targets": ("NFLOG",)}
SINGULAR = {"matches": "match", "targets": "target"}


class FirewallError(RuntimeError):
    """The ruleset could not be applied, read or removed; the text says why and what to do."""


@dataclass(frozen=True)
class Ruleset:
    lan_prefixes: tuple[str, ...] = ()     # on-link and configured LAN prefixes (IPv6)
    tcp_services: tuple[int, ...] = (22, 80)
    nflog_group: int = 5
    rate: int = 500                        # logged packets/s per source /64 before the flood limit
    burst: int = 4000
    rate_total: int = 2000                 # logged packets/s over all sources (and again for probe addresses)

    def __post_init__(self):
        prefixes = tuple(str(ipaddress.IPv6Network(p, strict=False)) for p in self.lan_prefixes)
        object.__setattr__(self, "lan_prefixes", tuple(dict.fromkeys(prefixes)))
        object.__setattr__(self, "tcp_services", tuple(int(p) for p in self.tcp_services))

    def limits(self) -> list[str]:
        """The flood limits, in `-S` syntax: probe addresses first, then /64, /48, /32, then the total."""
        def hashlimit(label: str, rate: int, burst: int, srcmask: int | None) -> str:
            burst = min(burst, BURST_MAX)
            # The kernel keeps a cost per packet, millionths of a second (1e6 // rate): a high rate is
            # enforced (and shown) as the rate that cost gives. Written as enforced, the text stays true.
            rate = HASHLIMIT_SCALE // (HASHLIMIT_SCALE // rate)
            # An entry idle for burst/rate seconds has its whole burst back, as a new one would:
            # expiring it then changes nothing and keeps the table small.
            expire = max(1000, -(-burst * 1000 // rate))
            # The kernel reuses a table by name with its old settings: new settings get a new name.
            name = f"hw{label}-{rate:x}-{burst:x}"[:15]
            mode = " --hashlimit-mode srcip" if srcmask else ""
            table = f" --hashlimit-htable-size {TABLE_SIZE} --hashlimit-htable-max {TABLE_MAX}" if srcmask else ""
            mask = f" --hashlimit-srcmask {srcmask}" if srcmask else ""
            return (f"-m hashlimit --hashlimit-above {rate}/sec --hashlimit-burst {burst}{mode} --hashlimit-name {name}"
                    f"{table} --hashlimit-htable-expire {expire}{mask}")

        total_burst = self.rate_total * TOTAL_BURST_SECONDS
        probe = f"-m set --match-set {PROBE_SET} dst"
        probe_limit = hashlimit("pr", self.rate_total, total_burst, None)
        rules = [
            f'{probe} -m comment --comment "{PROBE_LIMIT}" {probe_limit} -j DROP',
            f'{probe} -m comment --comment "HarvestWatch: log probe-address traffic" -j NFLOG'
            f' --nflog-group {self.nflog_group}',
            f'{probe} -m comment --comment "HarvestWatch: drop logged probe-address traffic" -j DROP',
            f'-m comment --comment "{REACHED}"',
        ]
        for prefix, (rate, burst) in TIER_SCALE.items():
            rules.append(f'-m comment --comment "{TIER_LIMITS[prefix]}" '
                         f'{hashlimit(str(prefix), self.rate * rate, self.burst * burst, prefix)} -j DROP')
        rules.append(f'-m comment --comment "{TIER_LIMITS[None]}" '
                     f'{hashlimit("all", self.rate_total, total_burst, None)} -j DROP')
        return rules

    def chains(self) -> dict[str, list[str]]:
        """Chain name -> its rules, each in `-S` syntax without the leading `-A CHAIN`."""
        ports = ",".join(str(p) for p in self.tcp_services)
        lan6 = (LAN_LINK_LOCAL, LAN_ULA, *self.lan_prefixes)
        inbound = [
            "-i lo -j ACCEPT",
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            *(f"-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT" for t in ICMPV6_ERRORS),
            *(f"-p ipv6-icmp -m icmp6 --icmpv6-type {t} -m hl --hl-eq 255 -j ACCEPT" for t in NDP_TYPES),
            *(f"-s {LAN_LINK_LOCAL} -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT" for t in MLD_TYPES),
            *(f"-s {net} -p ipv6-icmp -m icmp6 --icmpv6-type {ECHO_REQUEST} -j ACCEPT" for net in lan6),
            f"-s {LAN_LINK_LOCAL} -p udp -m udp --dport 546 -j ACCEPT",          # DHCPv6 client
            *(f"-s {net} -p udp -m udp --dport 5353 -j ACCEPT" for net in lan6),  # mDNS: harvestwatch.local
            *(f"-s {net} -p tcp -m multiport --dports {ports} -j ACCEPT" for net in lan6 if ports),
            *self.limits(),
            f'-m comment --comment "{LOGGED}" -j NFLOG --nflog-group {self.nflog_group}',
            '-m comment --comment "HarvestWatch: drop what was logged" -j DROP',
        ]
        outbound = [
            "-o lo -j RETURN",
            "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
            *(f"-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN" for t in (*NDP_TYPES, *MLD_TYPES)),
            f'-m comment --comment "HarvestWatch: log new outbound" -j NFLOG --nflog-group {self.nflog_group}',
        ]
        # IPv4 carries nothing the appliance watches: every service (SSH, the page, mDNS, whatever
        # else listens) answers the LAN only, replies come back, the rest is dropped unlogged.
        inbound4 = [
            "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
            *(f"-s {net} -j RETURN" for net in IPV4_LAN),
            '-m comment --comment "HarvestWatch: services are LAN-only" -j DROP',
        ]
        return {CHAIN_IN: inbound, CHAIN_OUT: outbound, CHAIN_IN4: inbound4}


# -- apply / remove (ip6tables-legacy-restore) --------------------------------------------------
def apply(ruleset: Ruleset) -> None:
    """Install or replace the ruleset: our chains rebuilt, one jump to each first in its hook, in one
    transaction per table (iptables-restore --noflush: nothing else in the table is touched).
    The probe addresses' set is made first (the rules name it); its entries are kept."""
    try:
        probe_set.ensure()
    except probe_set.ProbeSetError as exc:
        raise FirewallError(f"{exc} (the kernel needs ip_set and ip_set_hash_ip; this needs CAP_NET_ADMIN)") from None
    for family in (6, 4):
        script = ["*filter"]
        chains = {name: rules for name, rules in ruleset.chains().items() if HOOKS[name][0] == family}
        script += [f":{name} - [0:0]" for name in chains]  # created, or flushed if it exists
        for name, rules in chains.items():
            hook = HOOKS[name][1]
            script += [f"-A {name} {spec}" for spec in rules]
            script += [f"-D {hook} -j {name}"] * _jumps(family, hook, name)
            script.append(f"-I {hook} 1 -j {name}")
        _restore(family, script, "apply")


def remove() -> None:
    """Take the ruleset out: the jumps from INPUT/OUTPUT, then our chains. Nothing else is touched."""
    for family in (6, 4):
        script = ["*filter"]
        for name, (chain_family, hook) in HOOKS.items():
            if chain_family != family or saved_rules(family, name) is None:
                continue
            script += [f"-D {hook} -j {name}"] * _jumps(family, hook, name)
            script += [f"-F {name}", f"-X {name}"]
        if len(script) > 1:
            _restore(family, script, "remove")
    try:
        probe_set.destroy()
    except probe_set.ProbeSetError as exc:
        raise FirewallError(str(exc)) from None


def _jumps(family: int, hook: str, chain: str) -> int:
    return (saved_rules(family, hook) or []).count(f"-A {hook} -j {chain}")


def _restore(family: int, script: list[str], action: str) -> None:
    command = _which(RESTORE[family])
    if command is None:
        raise FirewallError(f"{RESTORE[family]} is not installed (Debian package iptables)")
    try:
        done = subprocess.run([command, "-w", "5", "--noflush"], input="\n".join([*script, "COMMIT", ""]),
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FirewallError(f"cannot {action} the HarvestWatch ruleset ({RESTORE[family]}): {exc}") from None
    if done.returncode != 0:
        said = " ".join(line for line in done.stderr.splitlines() if not line.startswith("Try `")) or "failed"
        if action == "remove":
            raise FirewallError(f"cannot remove the HarvestWatch chains ({RESTORE[family]}): {said}")
        raise FirewallError(_explain(family, said))


def _explain(family: int, said: str) -> str:
    missing = missing_extensions() if family == 6 else []
    hint = (f"; the kernel lacks: {', '.join(missing)} (enable the matching CONFIG_NETFILTER_XT_* "
            "modules)" if missing else "")
    if "Permission denied" in said or "Operation not permitted" in said:
        hint += "; this needs CAP_NET_ADMIN and CAP_NET_RAW"
    return f"the kernel refused the HarvestWatch ruleset ({RESTORE[family]}): {said}{hint}"


def missing_extensions(proc: str = "/proc/net") -> list[str]:
    """Extensions the ruleset needs that the kernel has not loaded (after a failed attempt: cannot)."""
    missing = []
    for kind, names in NEEDED.items():
        try:
            with open(os.path.join(proc, f"ip6_tables_{kind}")) as listing:
                loaded = set(listing.read().split())
        except FileNotFoundError:
            return ["ip6_tables (no /proc/net/ip6_tables_*)"]
        except OSError:
            return []  # root-only (the daemon's own user): nothing to say rather than a wrong guess
        missing += [f"{SINGULAR[kind]} {name}" for name in names if name not in loaded]
    return missing


# -- read back (ip6tables-legacy) --------------------------------------------------------------
def saved_rules(family: int, chain: str, counters: bool = False) -> list[str] | None:
    """The chain as `ipNtables-legacy -S` prints it; None if the chain does not exist."""
    command = _which(COMMANDS[family])
    if command is None:
        raise FirewallError(f"{COMMANDS[family]} is not installed (Debian package iptables)")
    argv = [command, "-w", "5", "-S", chain] + (["-v"] if counters else [])
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        if "No chain" in done.stderr or "does not exist" in done.stderr:
            return None
        raise FirewallError(f"{' '.join(argv)}: {done.stderr.strip() or 'failed'}")
    return done.stdout.splitlines()


def _which(command: str) -> str | None:
    # sbin is not on every PATH (sudo, cron, a user's shell).
    return shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")


def verify(ruleset: Ruleset) -> list[str]:
    """What differs between the kernel and `ruleset`: [] when every rule and hook is in force."""
    problems = []
    for chain_name, rules in ruleset.chains().items():
        family, hook_name = HOOKS[chain_name]
        found = saved_rules(family, chain_name)
        if found is None:
            problems.append(f"chain {chain_name} is missing ({COMMANDS[family]})")
            continue
        expected = [f"-N {chain_name}", *(f"-A {chain_name} {spec}" for spec in rules)]
        if found != expected:
            missing = [line for line in expected if line not in found]
            extra = [line for line in found if line not in expected]
            detail = "; ".join([*(f"missing: {m}" for m in missing[:3]), *(f"unexpected: {e}" for e in extra[:3])])
            problems.append(f"chain {chain_name} differs from the ruleset ({detail or 'rule order'})")
        hook = saved_rules(family, hook_name) or []
        appended = [line for line in hook if line.startswith("-A ")]
        jumps = [i for i, line in enumerate(appended) if line == f"-A {hook_name} -j {chain_name}"]
        if not jumps:
            problems.append(f"{hook_name} does not jump to {chain_name} ({COMMANDS[family]})")
        elif jumps[0] != 0:
            problems.append(f"{hook_name} has {jumps[0]} rule(s) before the jump to {chain_name}")
    # The text above cannot show an interface mask: the kernel's own bytes can.
    for family in (6, 4):
        ours = [name for name, (chain_family, _) in HOOKS.items() if chain_family == family]
        try:
            rules = kernel_rules.read_filter(family)
        except kernel_rules.KernelRulesError as exc:
            problems.append(f"cannot check the interface masks ({COMMANDS[family]}): {exc}")
            continue
        problems += kernel_rules.wrong_masks([rule for rule in rules if rule.chain in ours])
    return problems


def counters(family: int, chain: str) -> dict[str, int]:
    """Packet counters of the chain's commented rules, by comment (the first rule of each comment)."""
    found = {}
    for line in saved_rules(family, chain, counters=True) or []:
        words = shlex.split(line)
        if "--comment" in words and "-c" in words:
            found.setdefault(words[words.index("--comment") + 1], int(words[words.index("-c") + 1]))
    return found


def flood_counts() -> dict[str, int]:
    """Packets dropped unlogged since the ruleset was applied, by gap reason: `probe-flood` (over
    the probe addresses' own limit), `flood` (over a per-source or the total limit), `flood-table`
    (a per-source table was full: reached the limits, yet neither limited nor logged)."""
    found = counters(6, CHAIN_IN)
    limited = sum(found.get(comment, 0) for comment in TIER_LIMITS.values())
    # Counters are read rule by rule while packets flow: up to one packet per CPU may sit between
    # two rules at that moment, and is not taken for a table overflow.
    table_full = found.get(REACHED, 0) - limited - found.get(LOGGED, 0) - (os.cpu_count() or 1)
    return {"probe-flood": found.get(PROBE_LIMIT, 0), "flood": limited, "flood-table": max(0, table_full)}


def backend_note() -> str:
    """Which iptables the system's `ip6tables` command is, and what that means for seeing our rules."""
    target = _which("ip6tables") or ""
    # Follow the alternatives links only as far as the variant's name: both end in xtables-*-multi.
    for _ in range(8):
        if target.endswith(("-nft", "-legacy")) or not os.path.islink(target):
            break
        target = os.path.join(os.path.dirname(target), os.readlink(target))
    if target.endswith("-nft"):
        return ("note: this system's `ip6tables` is the nft variant; it does not show these rules. "
                "The kernel applies both; read them with ip6tables-legacy (update-alternatives --set "
                "ip6tables /usr/sbin/ip6tables-legacy makes it the default, as the appliance image does).")
    if target.endswith("-legacy"):
        return "ip6tables is iptables-legacy here: `ip6tables -S` shows these rules."
    return "ip6tables is not installed; the rules were read with ip6tables-legacy."


# -- command line ------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("apply", "verify", "show", "remove"),
                        help="apply: install or refresh; verify: compare the kernel with the config "
                        "(exit 1 on a difference); show: print what is in force; remove: take it out")
    parser.add_argument("--config", default=CONFIG_PATH, metavar="PATH",
                        help="configuration file: services, NFLOG group, rate limit, LAN prefixes")
    parser.add_argument("--prefix", action="append", default=[], metavar="NET", type=_prefix_option,
                        help="an on-link LAN prefix to allow (default: the interface's current SLAAC /64)")
    parser.add_argument("--boot", action="store_true",
                        help="as the boot unit does, before the network is up: apply only if firewall.manage "
                             "is true in the configuration")


def _prefix_option(text: str) -> str:
    try:
        return str(lan_prefix(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def ruleset_from_config(config, onlink: list[str]) -> Ruleset:
    f = config.firewall
    return Ruleset(lan_prefixes=(*config.appliance.lan_prefixes, *onlink), tcp_services=tuple(f.tcp_services),
                   nflog_group=f.nflog_group, rate=f.rate, burst=f.burst, rate_total=f.rate_total)


def main(args) -> int:
    from ..config import ConfigError, load_given
    try:
        if args.action == "remove":
            remove()
            print("HarvestWatch firewall removed (ip6tables-legacy and iptables-legacy).")
            return 0
        if args.action == "show":
            return _show()
        config = load_given(args.config)
        if getattr(args, "boot", False) and not config.firewall.manage:
            print("HarvestWatch firewall: firewall.manage is false in the configuration: not applied.")
            return 0
        onlink = list(args.prefix) or _onlink_prefix(config.appliance.interface)
        ruleset = ruleset_from_config(config, onlink)
        if args.action == "apply":
            apply(ruleset)
        problems = verify(ruleset)
    except (ConfigError, FirewallError, ValueError) as exc:
        print(f"harvestwatch firewall: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"NOT IN FORCE: {problem}")
    if problems:
        return 1
    print(f"HarvestWatch firewall in force: LAN {', '.join((LAN_LINK_LOCAL, LAN_ULA, *ruleset.lan_prefixes))}; "
          f"services tcp {','.join(map(str, ruleset.tcp_services)) or 'none'}; NFLOG group {ruleset.nflog_group}")
    return 0


def _onlink_prefix(interface: str) -> list[str]:
    from ..probe.addresses import InterfaceGone, global_prefix
    try:
        prefix = global_prefix(interface)
    except InterfaceGone as exc:
        print(f"harvestwatch firewall: {exc}; only link-local and ULA count as LAN", file=sys.stderr)
        return []
    return [str(prefix)] if prefix else []


def _show() -> int:
    any_rules = False
    for chain_name, (family, hook_name) in HOOKS.items():
        rules = saved_rules(family, chain_name)
        if rules is None:
            continue
        any_rules = True
        print(f"# {COMMANDS[family]} -S {chain_name}  (jumped to from {hook_name})")
        print("\n".join(rules))
        for comment, packets in counters(family, chain_name).items():
            print(f"#   {packets:>10} packets: {comment.removeprefix('HarvestWatch: ')}")
    if not any_rules:
        print("The HarvestWatch firewall is not applied in this network namespace.")
    print(backend_note())
    return 0
