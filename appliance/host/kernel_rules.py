"""The filter table as the kernel holds it: each rule's interface names and masks, read byte for byte.

`ip6tables -S` prints an interface from its name and cannot show a wrong mask: a rule written with
a one-bit mask per byte (python-iptables 1.x did that) prints `-i lo` and matches `lan0`, `veth1`,
`tun0`... So `verify` reads the entries the way iptables itself does (getsockopt IP6T_SO_GET_INFO and
IP6T_SO_GET_ENTRIES on a raw socket: CAP_NET_RAW/CAP_NET_ADMIN, no libxtables) and checks every
interface mask against the one iptables makes from the name: 0xff over the name and its NUL, or over
the name without its `+` for a wildcard.

The layouts are the kernel's uapi structs (linux/netfilter_ipv6/ip6_tables.h, netfilter_ipv4/ip_tables.h)
on a 64-bit kernel: Raspberry Pi OS arm64 and Debian arm64/amd64.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import struct
from dataclasses import dataclass

IFNAMSIZ = 16
GET_INFO, GET_ENTRIES = 64, 65            # IP6T_SO_GET_INFO/ENTRIES (= IPT_SO_GET_* for IPv4)
INFO_SIZE = 84                            # name[32], valid_hooks, hook_entry[5], underflow[5], num_entries, size
ENTRIES_HEADER = 40                       # name[32], size, then the entries (8-byte aligned)
# family -> (socket family, sockopt level, offset of iniface in the entry, entry header size)
LAYOUT = {6: (socket.AF_INET6, socket.IPPROTO_IPV6, 64, 168), 4: (socket.AF_INET, socket.IPPROTO_IP, 16, 112)}
TARGET_OFFSET = {6: 140, 4: 88}           # __u16 target_offset, next_offset after ip/ipv6 and nfcache
HOOK_NAMES = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")


class KernelRulesError(OSError):
    """The table could not be read (no privilege, no ip6_tables module)."""


@dataclass(frozen=True)
class Interfaces:
    chain: str
    index: int                            # 1-based position in its chain, as `ip6tables -L --line-numbers`
    inbound: tuple[str, bytes]            # (name, mask)
    outbound: tuple[str, bytes]


def expected_mask(name: str) -> bytes:
    """The mask iptables makes for an interface name: an exact name includes its NUL, `eth+` does not."""
    if not name:
        return bytes(IFNAMSIZ)
    width = len(name) - 1 if name.endswith("+") else len(name) + 1
    return b"\xff" * width + bytes(IFNAMSIZ - width)


def wrong_masks(rules: list[Interfaces]) -> list[str]:
    """Every rule whose interface would match other names than it shows, said plainly."""
    problems = []
    for rule in rules:
        for option, (name, mask) in (("-i", rule.inbound), ("-o", rule.outbound)):
            if mask != expected_mask(name):
                problems.append(f"{rule.chain} rule {rule.index} ({option} {name or '(any)'}) has interface mask "
                                f"{mask.hex()}, not {expected_mask(name).hex()}: it matches other interfaces too")
    return problems


def read_filter(family: int, table: str = "filter") -> list[Interfaces]:
    """Each rule of the table (chain heads and policies left out) with its interface names and masks."""
    blob, hooks = _entries(family, table)
    at_iface, header = LAYOUT[family][2], LAYOUT[family][3]
    rules, chain, index, offset = [], "", 0, 0
    hook_at = {at: name for name, at in hooks.items()}
    while offset < len(blob):
        target_offset, next_offset = struct.unpack_from("HH", blob, offset + TARGET_OFFSET[family])
        if next_offset < header:
            raise KernelRulesError(f"a malformed entry at {offset} in the kernel's {table} table")
        if offset in hook_at:
            chain, index = hook_at[offset], 0
        if _target(blob, offset, family) == b"ERROR":  # a user chain's head (its name follows), or the end
            chain = _text(blob, offset + target_offset + 32, 30)
            index = 0
        elif offset + next_offset < len(blob) and not _is_policy(blob, offset + next_offset, family, hooks):
            index += 1
            names = blob[offset + at_iface:offset + at_iface + 2 * IFNAMSIZ]
            masks = blob[offset + at_iface + 2 * IFNAMSIZ:offset + at_iface + 4 * IFNAMSIZ]
            rules.append(Interfaces(chain, index, (_text(names, 0, IFNAMSIZ), masks[:IFNAMSIZ]),
                                    (_text(names, IFNAMSIZ, IFNAMSIZ), masks[IFNAMSIZ:])))
        offset += next_offset
    return rules


def _is_policy(blob: bytes, next_entry: int, family: int, hooks: dict) -> bool:
    # A chain's last entry is its policy (built-in) or its RETURN (user chain): the next one starts a
    # chain (a hook's entry or an ERROR head). Rules never end a chain, so this tells them apart.
    return next_entry in hooks.values() or _target(blob, next_entry, family) == b"ERROR"


def _target(blob: bytes, entry: int, family: int) -> bytes:
    """The name of an entry's target (struct xt_entry_target: u16 size, then the name); b"" for a verdict."""
    target_offset = struct.unpack_from("H", blob, entry + TARGET_OFFSET[family])[0]
    return blob[entry + target_offset + 2:entry + target_offset + 31].split(b"\0")[0]


def _text(blob: bytes, at: int, size: int) -> str:
    return blob[at:at + size].split(b"\0")[0].decode(errors="replace")


def _entries(family: int, table: str) -> tuple[bytes, dict[str, int]]:
    sock_family, level, _, _ = LAYOUT[family]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    try:
        sock = socket.socket(sock_family, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except OSError as exc:
        raise KernelRulesError(f"cannot open a raw socket to read the {table} table: {exc.strerror}") from None
    with sock:
        info = ctypes.create_string_buffer(table.encode(), INFO_SIZE)
        length = ctypes.c_uint(INFO_SIZE)
        if libc.getsockopt(sock.fileno(), level, GET_INFO, info, ctypes.byref(length)) != 0:
            raise KernelRulesError(f"the kernel did not give the {table} table: {os.strerror(ctypes.get_errno())}")
        fields = struct.unpack_from("I5I5III", info.raw, 32)
        valid, hook_entry, size = fields[0], fields[1:6], fields[12]
        hooks = {HOOK_NAMES[i]: hook_entry[i] for i in range(5) if valid & (1 << i)}
        request = ctypes.create_string_buffer(ENTRIES_HEADER + size)
        request.raw = table.encode().ljust(32, b"\0") + struct.pack("I", size)
        length = ctypes.c_uint(ENTRIES_HEADER + size)
        if libc.getsockopt(sock.fileno(), level, GET_ENTRIES, request, ctypes.byref(length)) != 0:
            # EAGAIN: the table changed between the two calls; the caller may ask again
            raise KernelRulesError(f"the kernel did not give the {table} table's entries: "
                                   f"{os.strerror(ctypes.get_errno())}")
        return request.raw[ENTRIES_HEADER:ENTRIES_HEADER + size], hooks
