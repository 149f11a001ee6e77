"""Live capture: read netfilter NFLOG (nfnetlink_log) messages straight from the kernel.

ip6tables `-j NFLOG --nflog-group G --nflog-prefix "HW-IN "` hands each logged packet to the one
netlink socket bound to group G in that network namespace. This module binds that socket (plain
`socket` + `struct`: pyroute2 has no nfnetlink_log, the PyPI bindings are broken on 3.11) and turns
each message into the same `Packet` the LOG-line parser makes, field for field, so the live daemon
and `harvestwatch analyze` feed one correlator.

Losses are never silent: the kernel numbers every message of the group (NFULA_SEQ), so a gap is a
count of packets dropped before they reached us, and a socket buffer overrun (ENOBUFS) is reported
too. Both land in `take_events()` for the daemon's gap records.

Message layout: include/uapi/linux/netfilter/nfnetlink.h, nfnetlink_log.h. Protocol names and
which packets get ports follow net/netfilter/nf_log_syslog.c (what `-j LOG` prints).
"""
from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import time

from ..packet import FORWARDED, INBOUND, OUTBOUND, Packet

NETLINK_NETFILTER = 12
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux value; Python 3.11 lacks the name
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = NFNL_SUBSYS_ULOG << 8 | 0
NFULNL_MSG_CONFIG = NFNL_SUBSYS_ULOG << 8 | 1
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE = 1, 2, 3
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4

# Packet attributes (enum nfulnl_attr_type).
NFULA_PACKET_HDR = 1
NFULA_TIMESTAMP = 3
NFULA_IFINDEX_INDEV = 4
NFULA_IFINDEX_OUTDEV = 5
NFULA_PAYLOAD = 9
NFULA_PREFIX = 10
NFULA_SEQ = 12
# Config attributes (enum nfulnl_attr_config) and values.
NFULA_CFG_CMD, NFULA_CFG_MODE, NFULA_CFG_TIMEOUT, NFULA_CFG_QTHRESH, NFULA_CFG_FLAGS = 1, 2, 4, 5, 6
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
NFULNL_CFG_F_SEQ, NFULNL_CFG_F_SEQ_GLOBAL = 0x1, 0x2
NFULNL_COPY_RANGE_MAX = 0xFFFF

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, portid (host byte order)
_NLATTR = struct.Struct("=HH")       # len, type (host byte order; payloads are big-endian)
_NFGENMSG = struct.Struct("!BBH")    # family, version, res_id (the group, big-endian)
_NLA_TYPE_MASK = 0x3FFF              # drops NLA_F_NESTED / NLA_F_NET_BYTEORDER
_BE32 = struct.Struct("!I")
_BE16 = struct.Struct("!H")
_TIMESTAMP = struct.Struct("!QQ")    # seconds, microseconds
_HEADER_BYTES = _NLMSGHDR.size + _NFGENMSG.size

# One datagram holds at most one instance buffer (the kernel caps it at 128 KiB).
_RECV_BYTES = 256 << 10
# Datagrams taken per read_available() call, so a flood cannot starve the daemon's other work;
# what is left keeps the socket readable for the next turn of the selector loop.
_MAX_DATAGRAMS_PER_READ = 4096
# A kernel timestamp further than this from our clock is not believed (a monotonic-clock skb
# stamp on some forwarding paths would read as 1970): receipt time is used instead.
_TIMESTAMP_TRUST_SECONDS = 86400.0

# Bridge and netdev rules log IP packets too (payload still starts at the network header).
_LAYER2_FAMILIES = (socket.AF_UNSPEC, 5, 7)  # NFPROTO_UNSPEC, NFPROTO_NETDEV, NFPROTO_BRIDGE
_IPPROTO_NAMES = {6: "TCP", 17: "UDP", 136: "UDPLITE", 1: "ICMP", 58: "ICMPv6", 50: "ESP", 51: "AH"}
# Minimum header the kernel's LOG needs before it prints ports or an ICMP type: a shorter one
# is printed "INCOMPLETE [n bytes]" and the parser gives no ports.
_HEADER_NEEDED = {6: 20, 17: 8, 136: 8, 1: 8, 58: 8}
_IPV6_EXTENSIONS = frozenset({0, 43, 44, 50, 51, 60})  # hop-by-hop, routing, fragment, ESP, AH, dest
_DIRECTIONS = {(True, False): INBOUND, (False, True): OUTBOUND, (True, True): FORWARDED,
               (False, False): OUTBOUND}  # neither device: as the LOG parser reads empty IN=/OUT=


class NflogError(RuntimeError):
    """NFLOG capture cannot start or go on (not permitted, group busy, no kernel support...)."""


class _Malformed(ValueError):
    pass


# -- decoding (pure) -------------------------------------------------------------------------

def decode_message(buf: bytes, now: float) -> Packet | None:
    """One netlink message (header included) -> Packet, or None if it is not a well-formed
    NFLOG packet message. Never raises."""
    try:
        return _decode_packet_message(memoryview(buf), 0, len(buf), now)[1]
    except (_Malformed, ValueError, struct.error, IndexError):
        return None


def _decode_packet_message(view: memoryview, start: int, end: int, now: float) -> tuple[int | None, Packet]:
    """The message occupying view[start:end] -> (kernel sequence number or None, Packet)."""
    length, msg_type, _flags, _seq, _portid = _NLMSGHDR.unpack_from(view, start)
    if msg_type != NFULNL_MSG_PACKET or length < _HEADER_BYTES or start + length > end:
        raise _Malformed("not an NFLOG packet message")
    family = view[start + _NLMSGHDR.size]
    attrs = _attributes(view, start + _HEADER_BYTES, start + length)
    payload = attrs.get(NFULA_PAYLOAD)
    if payload is None:
        raise _Malformed("no payload (the group is not in copy-packet mode)")
    src, dst, proto, sport, dport = _decode_ip(bytes(payload), family)

    ts = now
    stamp = attrs.get(NFULA_TIMESTAMP)
    if stamp is not None and len(stamp) >= _TIMESTAMP.size:
        seconds, micros = _TIMESTAMP.unpack_from(stamp)
        kernel_ts = seconds + micros / 1e6
        if abs(kernel_ts - now) < _TIMESTAMP_TRUST_SECONDS:
            ts = kernel_ts
    prefix = attrs.get(NFULA_PREFIX)
    prefix_text = "" if prefix is None else bytes(prefix).split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    direction = _DIRECTIONS[NFULA_IFINDEX_INDEV in attrs, NFULA_IFINDEX_OUTDEV in attrs]
    seq_attr = attrs.get(NFULA_SEQ)
    seq = _BE32.unpack_from(seq_attr)[0] if seq_attr is not None and len(seq_attr) >= 4 else None
    return seq, Packet(ts, src, dst, proto, sport, dport, direction, prefix_text)


def _attributes(view: memoryview, offset: int, end: int) -> dict[int, memoryview]:
    attrs: dict[int, memoryview] = {}
    while offset + _NLATTR.size <= end:
        length, attr_type = _NLATTR.unpack_from(view, offset)
        if length < _NLATTR.size or offset + length > end:
            raise _Malformed("attribute runs past its message")
        attrs[attr_type & _NLA_TYPE_MASK] = view[offset + _NLATTR.size:offset + length]
        offset += (length + 3) & ~3
    return attrs


def _decode_ip(data: bytes, family: int) -> tuple[str, str, str, int | None, int | None]:
    """Network-layer bytes -> (src, dst, proto, sport, dport) the way `-j LOG` would print them."""
    if not data:
        raise _Malformed("empty payload")
    version = data[0] >> 4
    if version == 6 and family in (socket.AF_INET6, *_LAYER2_FAMILIES):
        return _decode_ipv6(data)
    if version == 4 and family in (socket.AF_INET, *_LAYER2_FAMILIES):
        return _decode_ipv4(data)
    raise _Malformed(f"not IP (family {family}, version {version})")


def _decode_ipv4(data: bytes):
    header_len = (data[0] & 0x0F) * 4
    if len(data) < 20 or header_len < 20:
        raise _Malformed("short IPv4 header")
    src = socket.inet_ntop(socket.AF_INET, data[12:16])
    dst = socket.inet_ntop(socket.AF_INET, data[16:20])
    non_first_fragment = bool(_BE16.unpack_from(data, 6)[0] & 0x1FFF)
    proto, sport, dport = _transport(data[9], data[header_len:], non_first_fragment)
    return src, dst, proto, sport, dport


def _decode_ipv6(data: bytes):
    if len(data) < 40:
        raise _Malformed("short IPv6 header")
    src, dst = _ipv6_text(data[8:24]), _ipv6_text(data[24:40])
    next_header, offset, non_first_fragment = data[6], 40, False
    # Walk the extension headers as nf_log_syslog.c does; 59 (no next header) ends the walk.
    while next_header in _IPV6_EXTENSIONS:
        if offset + 2 > len(data):
            raise _Malformed("IPv6 extension header cut off")
        if next_header == 44:  # fragment
            if offset + 8 > len(data):
                raise _Malformed("IPv6 fragment header cut off")
            if _BE16.unpack_from(data, offset + 2)[0] & 0xFFF8:
                non_first_fragment = True
            length = 8
        elif next_header == 50:  # ESP: nothing readable beyond it
            return src, dst, "ESP", None, None
        elif next_header == 51:  # AH counts 4-octet units, the others 8-octet units
            length = (data[offset + 1] + 2) * 4
        elif non_first_fragment:
            # Behind a non-first fragment's header are payload bytes, not headers: LOG stops
            # printing here (no PROTO=); we keep the packet, named by number, without ports.
            return src, dst, str(next_header), None, None
        else:
            length = (data[offset + 1] + 1) * 8
        next_header = data[offset]
        offset += length
    proto, sport, dport = _transport(next_header, data[offset:], non_first_fragment)
    return src, dst, proto, sport, dport


def _ipv6_text(packed: bytes) -> str:
    text = socket.inet_ntop(socket.AF_INET6, packed)
    # IPv4-mapped/compatible forms: spelled as the LOG parser's normalize_address spells them.
    return ipaddress.IPv6Address(packed).compressed if "." in text else text


def _transport(number: int, header: bytes, non_first_fragment: bool) -> tuple[str, int | None, int | None]:
    proto = _IPPROTO_NAMES.get(number) or str(number)  # LOG prints unknown protocols as numbers
    needed = _HEADER_NEEDED.get(number)
    if needed is None or non_first_fragment or len(header) < needed:
        return proto, None, None
    if number in (1, 58):
        return proto, None, header[0]  # ICMP type in dport, as the parser does
    sport, dport = struct.unpack_from("!HH", header)
    return proto, sport, dport


# -- the socket ------------------------------------------------------------------------------

# The socket's buffer: what the kernel holds while the daemon is busy. The total flood limit lets
# a burst of 32,000 packets through at a flood's pace, faster than the daemon reads; 8 MB held a
# quarter of it or less (the flood lab overran in about half its runs on two cores).
RCVBUF = 48 << 20


class NflogReader:
    """Binds one NFLOG group in the current network namespace and reads it without blocking."""

    def __init__(self, group: int, *, rcvbuf: int = RCVBUF, copy_range: int = 256):
        if not 0 <= group <= 0xFFFF:
            raise NflogError(f"NFLOG group {group} is out of range 0-65535")
        self.group = group
        self.lost = 0
        self.overruns = 0
        self.malformed = 0
        self.received = 0
        self._events: list[tuple[float, str, int | None]] = []
        self._next_seq = 0  # the kernel numbers a new instance's messages from 0
        self._pending: list[Packet] = []
        self._buffer = bytearray(_RECV_BYTES)
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                       NETLINK_NETFILTER)
        except OSError as exc:
            raise NflogError(f"cannot open a netfilter netlink socket ({exc.strerror}): "
                             "the kernel lacks nfnetlink (CONFIG_NETFILTER_NETLINK)") from exc
        try:
            self._set_rcvbuf(rcvbuf)
            self._sock.bind((0, 0))
            self._bind_group(min(max(copy_range, 1), NFULNL_COPY_RANGE_MAX))
        except BaseException:
            self._sock.close()
            raise
        self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def __enter__(self) -> "NflogReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()  # the kernel destroys the group's instance with the socket

    def take_events(self) -> list[tuple[float, str, int | None]]:
        """(time, "overrun" | "seq-gap", packets lost or None) since the last call."""
        events, self._events = self._events, []
        return events

    def read_available(self) -> list[Packet]:
        """Drain what is queued now; never blocks, never raises on a bad message."""
        packets, self._pending = self._pending, []
        view = memoryview(self._buffer)
        for _ in range(_MAX_DATAGRAMS_PER_READ):
            try:
                size = self._sock.recv_into(self._buffer, 0, socket.MSG_TRUNC)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self._overrun()
                    continue
                raise NflogError(f"NFLOG group {self.group}: receive failed: {exc}") from exc
            if size > len(self._buffer):
                # Cut short: the messages past the buffer show up as a sequence gap.
                self.malformed += 1
                size = len(self._buffer)
            self._take_datagram(view, size, time.time(), packets)
        return packets

    # -- internals --------------------------------------------------------------------------
    def _set_rcvbuf(self, size: int) -> None:
        try:
            # FORCE ignores net.core.rmem_max (needs CAP_NET_ADMIN, which binding needs anyway).
            self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except OSError:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def _bind_group(self, copy_range: int) -> None:
        # One request does it all, so no packet is logged under a half-made configuration:
        # copy packets, flush every packet at once (queue threshold 1, timeout 0: the default
        # batching adds up to a second), number them (SEQ) so gaps can be counted.
        attrs = b"".join((
            _attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])),
            _attr(NFULA_CFG_MODE, struct.pack("!IBB", copy_range, NFULNL_COPY_PACKET, 0)),
            _attr(NFULA_CFG_QTHRESH, _BE32.pack(1)),
            _attr(NFULA_CFG_TIMEOUT, _BE32.pack(0)),
            _attr(NFULA_CFG_FLAGS, _BE16.pack(NFULNL_CFG_F_SEQ | NFULNL_CFG_F_SEQ_GLOBAL)),
        ))
        body = _NFGENMSG.pack(socket.AF_UNSPEC, 0, self.group) + attrs
        request_seq = 1
        message = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), NFULNL_MSG_CONFIG,
                                 NLM_F_REQUEST | NLM_F_ACK, request_seq, 0) + body
        self._sock.settimeout(5.0)
        try:
            self._sock.send(message)
            error = self._wait_for_ack(request_seq)
        except socket.timeout:
            raise NflogError(f"NFLOG group {self.group}: the kernel did not answer the bind request") from None
        except OSError as exc:
            raise NflogError(f"NFLOG group {self.group}: bind request failed: {exc}") from exc
        if error:
            raise NflogError(self._explain(error))

    def _wait_for_ack(self, request_seq: int) -> int:
        """Read until the kernel's answer to our request; packets logged meanwhile are kept."""
        view = memoryview(self._buffer)
        while True:
            size = min(self._sock.recv_into(self._buffer, 0, socket.MSG_TRUNC), len(self._buffer))
            offset = 0
            while offset + _NLMSGHDR.size <= size:
                length, msg_type, _flags, seq, _portid = _NLMSGHDR.unpack_from(view, offset)
                if length < _NLMSGHDR.size:
                    break
                if msg_type == NLMSG_ERROR and seq == request_seq and length >= _NLMSGHDR.size + 4:
                    return -struct.unpack_from("=i", view, offset + _NLMSGHDR.size)[0]
                offset += (length + 3) & ~3
            self._take_datagram(view, size, time.time(), self._pending)

    def _explain(self, error: int) -> str:
        where = f"NFLOG group {self.group}"
        if error in (errno.EPERM, errno.EBUSY):
            owner = _group_owner(self.group)
            if owner is not None or error == errno.EBUSY:
                who = f" (netlink port {owner})" if owner is not None else ""
                return (f"{where} is busy: another socket in this network namespace has bound "
                        f"it{who}; only one reader per group")
            return f"{where}: not permitted: binding needs CAP_NET_ADMIN (run as root)"
        if error in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOENT, errno.EPROTONOSUPPORT):
            return (f"{where}: the kernel refused the request ({os.strerror(error)}): it probably "
                    "lacks nfnetlink_log (CONFIG_NETFILTER_NETLINK_LOG, module nfnetlink_log)")
        return f"{where}: the kernel refused the bind request: {os.strerror(error)}"

    def _take_datagram(self, view: memoryview, size: int, now: float, packets: list[Packet]) -> None:
        offset = 0
        while offset + _NLMSGHDR.size <= size:
            length, msg_type = _NLMSGHDR.unpack_from(view, offset)[:2]
            if length < _NLMSGHDR.size or offset + length > size:
                self.malformed += 1  # the rest of the datagram cannot be framed
                return
            if msg_type == NFULNL_MSG_PACKET:
                try:
                    seq, packet = _decode_packet_message(view, offset, offset + length, now)
                except (_Malformed, ValueError, struct.error, IndexError):
                    self.malformed += 1
                    seq = _sequence_only(view, offset, offset + length)
                else:
                    packets.append(packet)
                    self.received += 1
                if seq is not None:
                    self._check_sequence(seq, now)
            # NLMSG_DONE ends a batch; NOOP/ERROR (late acks) carry no packet.
            offset += (length + 3) & ~3
        if offset < size:
            self.malformed += 1  # bytes too few to be a message

    def _check_sequence(self, seq: int, now: float) -> None:
        gap = (seq - self._next_seq) & 0xFFFFFFFF
        if 0 < gap < 1 << 31:  # a forward jump (the 32-bit counter may wrap); backward: ignore
            self.lost += gap
            self._events.append((now, "seq-gap", gap))
        self._next_seq = (seq + 1) & 0xFFFFFFFF

    def _overrun(self) -> None:
        self.overruns += 1
        self._events.append((time.time(), "overrun", None))


def _sequence_only(view: memoryview, start: int, end: int) -> int | None:
    """The sequence number of a message whose packet could not be decoded, so it is not
    mistaken for a loss."""
    try:
        seq = _attributes(view, start + _HEADER_BYTES, end).get(NFULA_SEQ)
        return _BE32.unpack_from(seq)[0] if seq is not None and len(seq) >= 4 else None
    except (_Malformed, ValueError, struct.error, IndexError):
        return None


def _attr(attr_type: int, payload: bytes) -> bytes:
    raw = _NLATTR.pack(_NLATTR.size + len(payload), attr_type) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _group_owner(group: int) -> int | None:
    """Netlink port id holding `group` in this namespace, from /proc/net/netfilter/nfnetlink_log."""
    try:
        with open("/proc/self/net/netfilter/nfnetlink_log") as table:
            for line in table:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == str(group):
                    return int(fields[1])
    except (OSError, ValueError):
        pass
    return None
