"""systemd's sd-bus cookie on PID 1's system-bus connection: probe and push.

Probes work from outside PID 1: systemd's reply serial on the system bus *is*
its cookie, read from the reply header by dbus-send.

The push never stops PID 1 for longer than one gdb batch and never puts a
breakpoint in it (lab.nodetools.gdb): the cookie is *located* without ptrace, by
reading PID 1's memory through /proc/1/mem (lab/assets/nodelab-procmem.c)
for the one uint64 that tracks systemd's reply serials to our Pings round
after round (read after each reply, it lies at or above that reply's serial
and below the next one's); it is then *written* by one gdb batch, only if
the value there is still within reach of what was located, PID 1 stopped
for that poke alone. With debug symbols, gdb also checks that the address
is `cookie` of a `struct sd_bus` whose `is_system` is set, and the seeds'
own diagnostic, `p /x bus->cookie`, is what the report quotes.
"""

import re
import time
from dataclasses import dataclass, field

from lab.recipes import cbuild
from lab.nodetools import gdb
from lab.errors import LabError
from lab.backends.node import Node

PING = ["dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.systemd1",
        "/org/freedesktop/systemd1", "org.freedesktop.DBus.Peer.Ping"]
SERIAL = re.compile(r"\bserial=(\d+)")   # the reply's own serial, not reply_serial=
UINT32_MAX = 0xFFFFFFFF
COOKIE_CYCLED = 0x80000000
PROCMEM_IN_NODE = "/usr/local/sbin/nodelab-procmem"
# How far past a reply's serial the cookie may have moved by the time it is
# read (other messages PID 1 sends meanwhile), and how many rounds a located
# address must track the serials before anything is written to it.
WINDOW = 4096
MAX_DRIVE = 100   # Pings drive_bus sends at most
MIN_ROUNDS, MAX_ROUNDS = 3, 8


@dataclass
class Ping:
    answered: bool
    serial: int | None
    seconds: float
    raw: str


def _ping_argv(timeout: float) -> list[str]:
    return [*PING[:3], f"--reply-timeout={int(timeout * 1000)}", *PING[3:]]


def ping_systemd(node: Node, timeout: float = 5) -> Ping:
    """A system-bus call to org.freedesktop.systemd1, through dbus-daemon."""
    t0 = time.monotonic()
    res = node.run(_ping_argv(timeout), timeout=timeout + 5, check=False)
    m = SERIAL.search(res.stdout)
    return Ping(res.ok and m is not None, int(m.group(1)) if m else None,
                round(time.monotonic() - t0, 2), (res.stdout + res.stderr).strip())


def drive_bus(node: Node, pings: int, timeout: float = 1) -> list[int | None]:
    """Up to `pings` (at most MAX_DRIVE) system-bus Pings to systemd1 from one
    shell in the node, one after another, stopping at the first that gets no
    answer within `timeout` s: each reply is one send of PID 1's, so this
    moves its cookie on by as many. The reply serials, None last for an
    unanswered Ping; a reply whose first line shows no serial is left out."""
    pings = max(0, min(pings, MAX_DRIVE))
    script = (f'i=0; while [ $i -lt {pings} ]; do i=$((i + 1)); out=$({" ".join(_ping_argv(timeout))} 2>&1) || '
              f'{{ echo "unanswered: $out" | head -n 1; break; }}; echo "$out" | head -n 1; done')
    res = node.run(["sh", "-c", script], timeout=pings * (timeout + 5) + 10, check=False)
    serials: list[int | None] = []
    for line in res.stdout.splitlines():
        if line.startswith("unanswered:"):
            serials.append(None)
            break
        if m := SERIAL.search(line):
            serials.append(int(m.group(1)))
    return serials


def private_socket_answers(node: Node) -> tuple[bool, str]:
    """systemctl talks to PID 1 over /run/systemd/private, not dbus-daemon."""
    res = node.run(["systemctl", "show", "-p", "Version"], timeout=15, check=False)
    return res.ok, (res.stdout + res.stderr).strip()



class InjectionFailed(LabError):
    pass


@dataclass
class CookiePush:
    located_by: str = ""
    address: int = 0
    bus: int | None = None             # the struct sd_bus, where debug symbols say so
    before: int | None = None
    written: int | None = None
    reply_serial_after: int | None = None
    serials_after: list[int | None] = field(default_factory=list)   # confirm_write's Pings, None last if unanswered
    verification: list[str] = field(default_factory=list)
    transcript: str = ""

    @property
    def cookie_expr(self) -> str:
        """How gdb names the cookie: the seeds' `bus->cookie` where symbols allow."""
        if self.bus is not None:
            return f"((struct sd_bus *) {self.bus:#x})->cookie"
        return f"*(unsigned long *) {self.address:#x}"


def _procmem(node: Node, *args: str) -> dict[int, int]:
    res = node.run([PROCMEM_IN_NODE, *args], timeout=60, check=False)
    if res.rc != 0:
        raise InjectionFailed(f"reading PID 1's memory failed (exit {res.rc}): {res.stderr.strip()[-300:]}")
    values = {}
    for line in res.stdout.split("\n"):
        if line.strip():
            address, value = line.split()
            values[int(address, 16)] = int(value, 16)
    return values


def install_procmem(node: Node) -> None:
    node.put_file(PROCMEM_IN_NODE, cbuild.static_binary("nodelab-procmem.c", "nodelab-procmem").read_bytes(), 0o755)


def _answered(node: Node) -> int:
    ping = ping_systemd(node)
    if not ping.answered or ping.serial is None:
        raise InjectionFailed(f"systemd did not answer a system-bus Ping before the injection: {ping.raw[-300:]}")
    return ping.serial


def locate_cookie(node: Node) -> CookiePush:
    """Find PID 1's system-bus cookie without stopping PID 1; writes nothing."""
    install_procmem(node)
    push = CookiePush()
    serial = _answered(node)
    found = _procmem(node, "scan", "1", str(serial), str(serial + WINDOW))
    push.verification.append(f"round 0: Ping reply serial {serial}; {len(found)} uint64 values in "
                             f"[{serial}, {serial + WINDOW}] in PID 1's heap and anonymous memory")
    rounds = 0
    while found and rounds < MAX_ROUNDS and (len(found) > 1 or rounds < MIN_ROUNDS):
        rounds += 1
        serial = _answered(node)
        # The cookie read after the previous reply was below this reply's serial...
        earlier = {a: v for a, v in found.items() if v < serial}
        now = _procmem(node, "read", "1", *(hex(a) for a in earlier)) if earlier else {}
        # ...and, read after this reply, it has moved on and lies at or above its serial.
        found = {a: v for a, v in now.items() if serial <= v <= serial + WINDOW and v > earlier[a]}
        push.verification.append(f"round {rounds}: Ping reply serial {serial}; {len(found)} address(es) "
                                 f"still track the reply serials")
    if len(found) != 1:
        raise InjectionFailed(f"{len(found)} addresses in PID 1 tracked systemd's reply serials over "
                              f"{rounds} rounds (one is needed); refusing to write to an unverified address")
    (push.address, push.before), = found.items()
    push.located_by = (f"/proc/1/mem: the one uint64 that tracked systemd's reply serials over {rounds} Pings, "
                       f"at {push.address:#x}")
    # With debug symbols gdb names the struct around it.
    offset = "(unsigned long) &((struct sd_bus *) 0)->cookie"
    check = gdb.batch(node, 1, [f"p /x {offset}", f"p ((struct sd_bus *) ({push.address:#x} - {offset}))->is_system",
                                f"p /x (unsigned long) {push.address:#x} - {offset}"])
    push.transcript = check.transcript
    if check.number(0) is None:
        push.verification.append("no debug symbols for struct sd_bus: the address is known by the serials alone")
    elif check.value(1) != "true":
        raise InjectionFailed(f"gdb: the located address is not the cookie of a system bus "
                              f"(is_system = {check.value(1)}); not writing")
    else:
        push.bus = check.number(2)
        push.located_by += f", which gdb's debug symbols show is bus->cookie of the system bus {push.bus:#x}"
        push.verification.append(f"debug symbols: offsetof(struct sd_bus, cookie) = {check.number(0):#x}; "
                                 f"bus {push.bus:#x} is_system = true")
    return push


def track(node: Node, push: CookiePush) -> CookiePush:
    """The located cookie read again through /proc/1/mem (no ptrace), so that
    a write long after locate_cookie is guarded by where the cookie is now
    (write_cookie refuses beyond WINDOW of it). Refuses an address whose value
    went backwards or leapt: it no longer tracks the serials."""
    now = _procmem(node, "read", "1", hex(push.address)).get(push.address)
    if now is None or not push.before <= now <= push.before + 2**20:
        raise InjectionFailed(f"the located cookie at {push.address:#x} went from {push.before} to {now}: "
                              f"refusing to write to an address that no longer tracks systemd's serials")
    push.verification.append(f"read again before the write: {push.before} -> {now}")
    push.before = now
    return push


def write_cookie(node: Node, push: CookiePush, value: int) -> CookiePush:
    """Write `value` at the located address in one gdb batch, only while the
    cookie there is still within WINDOW of where it was located."""
    cell = f"*(unsigned long *) {push.address:#x}"
    low, high = push.before, push.before + WINDOW
    b = gdb.batch(node, 1, [f"p /x {cell}",
                            f"set var {cell} = ({cell} >= {low} && {cell} <= {high}) ? {value} : {cell}",
                            f"p /x {push.cookie_expr}"])
    push.transcript += "\n" + b.transcript
    now = b.number(2)
    push.written = value if now == value else None
    push.verification.append(f"write: {b.value(0)} -> {value:#x} at {push.address:#x} if within "
                             f"[{low}, {high}]; gdb read back {b.value(2)}")
    return push


def confirm_write(node: Node, push: CookiePush, pings: int = 1) -> CookiePush:
    """Seen from outside PID 1: the serials of systemd's replies to our next
    `pings` Pings (drive_bus), the first of them the write's confirmation
    (none if the bus has died first)."""
    push.serials_after = drive_bus(node, pings)
    push.reply_serial_after = push.serials_after[0] if push.serials_after else None
    push.verification.append(f"next Ping reply serial "
                             f"{hex(push.reply_serial_after) if push.reply_serial_after is not None else 'none'}")
    return push


def read_cookie(node: Node, push: CookiePush) -> tuple[int, str]:
    """The seeds' diagnostic: gdb `p /x bus->cookie` (one batch: attach, print, detach)."""
    b = gdb.batch(node, 1, [f"p /x {push.cookie_expr}"])
    value = b.number(0)
    if value is None:
        raise InjectionFailed(f"gdb could not read {push.cookie_expr}: {b.outputs[0].strip()}")
    return value, b.transcript
