"""systemd's sd-bus cookie on PID 1's system-bus connection: probe and push.

Probes work from outside PID 1: systemd's reply serial on the system bus *is*
its cookie, read from the reply header by dbus-send. The push attaches gdb to
the node's PID 1 and writes the cookie, but only at an address it has first
verified: the value read there plus one must equal the serial of the reply
systemd sends to our own Ping, twice in a row.
"""

import re
import threading
import time
from dataclasses import dataclass, field

from lab.errors import LabError
from lab.gdb import Gdb
from lab.nodes.base import Node

PING = ["dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.systemd1",
        "/org/freedesktop/systemd1", "org.freedesktop.DBus.Peer.Ping"]
# offsetof(struct sd_bus, cookie) on x86-64, computed from each version's
# headers; used only when debug symbols are absent, and verified before use.
COOKIE_OFFSETS = {"219": 0x68, "229": 0x68, "252": 0x58}
UINT32_MAX = 0xFFFFFFFF
COOKIE_CYCLED = 0x80000000


@dataclass
class Ping:
    answered: bool
    serial: int | None
    seconds: float
    raw: str


def ping_systemd(node: Node, timeout: float = 5) -> Ping:
    """A system-bus call to org.freedesktop.systemd1, through dbus-daemon."""
    t0 = time.monotonic()
    res = node.run([*PING[:3], f"--reply-timeout={int(timeout * 1000)}", *PING[3:]], timeout=timeout + 5, check=False)
    m = re.search(r"\bserial=(\d+)", res.stdout)
    return Ping(res.ok and m is not None, int(m.group(1)) if m else None,
                round(time.monotonic() - t0, 2), (res.stdout + res.stderr).strip())


def private_socket_answers(node: Node) -> tuple[bool, str]:
    """systemctl talks to PID 1 over /run/systemd/private, not dbus-daemon."""
    res = node.run(["systemctl", "show", "-p", "Version"], timeout=15, check=False)
    return res.ok, (res.stdout + res.stderr).strip()


@dataclass
class Hit:
    bus: int
    cookie: int


@dataclass
class CookiePush:
    located_by: str
    bus_expr: str = "$rdi"    # how gdb names the bus at the breakpoint: "bus" with symbols
    bus: int = 0
    address: int = 0
    before: int | None = None
    written: int | None = None
    reply_serial_after: int | None = None
    verification: list[str] = field(default_factory=list)
    transcript: str = ""


class InjectionFailed(LabError):
    pass


def _int(text: str) -> int:
    m = re.search(r"(0x[0-9a-fA-F]+|\d+)", text or "")
    if not m:
        raise InjectionFailed(f"gdb printed no number: {text!r}")
    return int(m.group(1), 0)


def _background_ping(node: Node) -> tuple[threading.Thread, dict]:
    box: dict = {}
    pinger = threading.Thread(target=lambda: box.setdefault("ping", ping_systemd(node, timeout=10)), daemon=True)
    pinger.start()
    return pinger, box


def _hits_during_ping(g: Gdb, node: Node, bus_expr: str, offset: int, write: int | None = None,
                      only_bus: int | None = None) -> tuple[list[Hit], Ping]:
    """Ping systemd while PID 1 runs under a breakpoint on sd_bus_send; record
    every hit's bus and cookie. PID 1 stops only for the few MI commands of
    each hit. With `write`, the cookie is written at the first hit on
    only_bus and PID 1 is left at that breakpoint (the caller detaches)."""
    pinger, box = _background_ping(node)
    hits: list[Hit] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (pinger.is_alive() or g.pending_stop()):
        if g.wait_stop(0.3) is None:
            continue
        bus = _int(g.value(f"(unsigned long){bus_expr}"))
        address = bus + offset
        cookie = _int(g.value(f"*(unsigned long *){address}"))
        hits.append(Hit(bus, cookie))
        if write is not None and (only_bus is None or bus == only_bus):
            g.mi(f'-gdb-set var *(unsigned long *){address} = {write}')
            hits.append(Hit(bus, _int(g.value(f"*(unsigned long *){address}"))))
            g.mi("-break-delete")
            g.mi("-target-detach")
            g.attached = False
            break
        g.cont()
    pinger.join(timeout=15)
    return hits, box.get("ping") or Ping(False, None, 0, "ping thread did not finish")


def _locate(g: Gdb, node: Node, systemd_version: str, push: CookiePush) -> tuple[int, str]:
    """Find the cookie's offset; returns (offset, expression for the bus)."""
    line = re.split(r"[.\-+~]", systemd_version.split(":")[-1])[0]
    symbolic = g.try_value("(unsigned long)&((struct sd_bus *)0)->cookie")
    if symbolic is not None:
        push.located_by = f"debug symbols: offsetof(struct sd_bus, cookie) = {_int(symbolic):#x}"
        g.mi('-break-insert -c "bus->is_system" sd_bus_send')
        push.bus_expr = "bus"
        return _int(symbolic), "bus"
    if line not in COOKIE_OFFSETS:
        raise InjectionFailed(f"no debug symbols and no known cookie offset for systemd {systemd_version}")
    push.located_by = (f"no debug symbols: offset {COOKIE_OFFSETS[line]:#x} for systemd {line} (from its "
                       "headers), verified against reply serials")
    g.mi("-break-insert sd_bus_send")
    return COOKIE_OFFSETS[line], "$rdi"


def locate_cookie(node: Node, systemd_version: str) -> CookiePush:
    """Find and verify the address of PID 1's system-bus cookie; writes nothing."""
    g = Gdb(node, 1, provoke_stop=lambda: _background_ping(node))
    push = CookiePush(located_by="")
    try:
        with g:
            offset, bus_expr = _locate(g, node, systemd_version, push)
            g.cont()
            # 1. Which bus answers our Ping, and does cookie+1 == its reply serial?
            hits, ping = _hits_during_ping(g, node, bus_expr, offset)
            match = [h for h in hits if ping.serial is not None and h.cookie + 1 == ping.serial]
            push.verification.append(f"round 1: {len(hits)} sd_bus_send calls; Ping reply serial {ping.serial}; "
                                     f"matching cookie {'found' if match else 'NOT found'}")
            if not match:
                raise InjectionFailed("no sd_bus_send cookie + 1 matched systemd's reply serial "
                                      f"({ping.serial}); refusing to write to an unverified address")
            push.bus = match[0].bus
            push.address = push.bus + offset
            # 2. Same bus, next Ping: the cookie must have advanced to that reply serial - 1.
            hits2, ping2 = _hits_during_ping(g, node, bus_expr, offset)
            on_bus = [h for h in hits2 if h.bus == push.bus]
            confirmed = ping2.serial is not None and any(h.cookie + 1 == ping2.serial for h in on_bus) \
                and all(h.cookie >= ping.serial for h in on_bus)
            push.verification.append(f"round 2: {len(on_bus)} calls on bus {push.bus:#x}; Ping reply serial "
                                     f"{ping2.serial}; {'confirmed' if confirmed else 'NOT confirmed'}")
            if not confirmed:
                raise InjectionFailed("the cookie address did not track systemd's reply serials; not writing")
            push.before = max(h.cookie for h in on_bus)
    finally:
        push.transcript = "\n".join(g.transcript)
    return push


def write_cookie(node: Node, push: CookiePush, value: int) -> CookiePush:
    """Write `value` at the verified address, at PID 1's next send on that bus."""
    g = Gdb(node, 1, provoke_stop=lambda: _background_ping(node))
    try:
        with g:
            g.mi(f'-break-insert -c "(unsigned long){push.bus_expr} == {push.bus}" sd_bus_send')
            g.cont()
            hits, ping = _hits_during_ping(g, node, push.bus_expr, push.address - push.bus, write=value,
                                           only_bus=push.bus)
            push.written = value if any(h.cookie == value for h in hits) else None
            push.reply_serial_after = ping.serial
            push.verification.append(f"write: {value:#x} at {push.address:#x}; Ping reply serial "
                                     f"{ping.serial if ping.serial is None else hex(ping.serial)}")
    finally:
        push.transcript += "\n" + "\n".join(g.transcript)
    return push


def read_cookie(node: Node, address: int) -> tuple[int, str]:
    """Read the cookie at a verified address: attach, read, detach."""
    g = Gdb(node, 1)
    try:
        with g:
            value = _int(g.value(f"*(unsigned long *){address}"))
    finally:
        transcript = "\n".join(g.transcript)
    return value, transcript
