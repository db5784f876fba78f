"""Locating and writing systemd's bus cookie: the algorithm (a fake bus and
memory), the memory reader on a real process, and gdb's batch parsing."""

import re
import shutil
import subprocess
import sys

import pytest

from lab.recipes import cbuild
from lab.nodetools import gdb, sdbus
from lab.backends.node import Node, Result


class FakeSystemd(Node):
    """A node whose PID 1 has a cookie at COOKIE and other counters in its
    heap; dbus-send, nodelab-procmem and gdb answer as the real ones print."""
    name, backend = "fake", "test"
    COOKIE = 0x55d0_0000_1068

    def __init__(self, heap: dict[int, int], cookie: int = 300, drift: int = 0, symbols: bool = True):
        self.heap = {**heap, self.COOKIE: cookie}
        self.drift = drift            # messages PID 1 sends between our calls
        self.symbols = symbols
        self.gdb_runs: list[list[str]] = []

    def tick(self):
        self.heap[self.COOKIE] += self.drift
        for a in self.heap:
            if a != self.COOKIE and a % 0x10 == 8:   # a counter that grows, but not with the serials
                self.heap[a] += 5

    def _exec(self, argv, timeout, stdin):
        argv = argv[4:]   # past the node's `timeout -k 5 N`
        self.tick()
        if argv[0] == "dbus-send":
            self.heap[self.COOKIE] += 1
            return Result(0, f"method return time=1 sender=:1.1 -> destination=:1.9 serial={self.heap[self.COOKIE]} "
                             "reply_serial=2\n", "")
        if argv[0] == sdbus.PROCMEM_IN_NODE and argv[1] == "scan":
            lo, hi = int(argv[3]), int(argv[4])
            return Result(0, "".join(f"{a:x} {v:x}\n" for a, v in self.heap.items() if lo <= v <= hi), "")
        if argv[0] == sdbus.PROCMEM_IN_NODE and argv[1] == "read":
            return Result(0, "".join(f"{int(a, 16):x} {self.heap[int(a, 16)]:x}\n" for a in argv[3:]), "")
        if argv[:2] == ["sh", "-c"] and "dbus-send" in argv[2]:   # sdbus.drive_bus: Pings in a loop
            lines = []
            for _ in range(int(re.search(r"-lt (\d+)", argv[2]).group(1))):
                self.heap[self.COOKIE] += 1
                if self.heap[self.COOKIE] > sdbus.UINT32_MAX:   # pre-v242: every send past 2^32 fails
                    lines.append("unanswered: Error org.freedesktop.DBus.Error.NoReply: Did not receive a reply.")
                    break
                lines.append(f"method return time=1 sender=:1.1 -> destination=:1.9 "
                             f"serial={self.heap[self.COOKIE]} reply_serial=2")
            return Result(0, "".join(f"{line}\n" for line in lines), "")
        if argv[0] == "sh":
            commands = argv[7:][3::4]   # -ex "echo MARK" -ex COMMAND, per command
            self.gdb_runs.append(commands)
            return Result(0, "".join(f'~"{gdb.MARK}{i}\\n"\n' + self._gdb(c) for i, c in enumerate(commands)), "")
        return Result(127, "", f"{argv[0]}: not found")

    def _gdb(self, command: str) -> str:
        if "struct sd_bus" in command and not self.symbols:
            return '&"No struct type named sd_bus.\\n"\n'
        if command.startswith("set var"):
            low, high, value = (int(x) for x in re.search(r">= (\d+) && .* <= (\d+)\) \? (\d+) :", command).groups())
            if low <= self.heap[self.COOKIE] <= high:
                self.heap[self.COOKIE] = value
            return ""
        if "is_system" in command:
            return '~"$2 = true\\n"\n'
        if command == "p /x (unsigned long) &((struct sd_bus *) 0)->cookie":
            return '~"$1 = 0x68\\n"\n'
        if command.startswith("p /x (unsigned long)") and "- (unsigned long)" in command:
            return f'~"$3 = {self.COOKIE - 0x68:#x}\\n"\n'
        return f'~"$4 = {self.heap[self.COOKIE]:#x}\\n"\n'

    def interactive_argv(self, argv):
        return argv

    def put_file(self, path, content, mode=0o644):
        pass

    def get_file(self, path):
        return b""

    def testinfra_host(self):
        return None


@pytest.fixture(autouse=True)
def no_build(monkeypatch, tmp_path):
    fake = tmp_path / "nodelab-procmem"
    fake.write_bytes(b"")
    monkeypatch.setattr(cbuild, "static_binary", lambda *a: fake)


def test_the_cookie_is_the_one_value_that_tracks_the_reply_serials():
    # Constants and another growing counter in range at first; only the cookie keeps up.
    node = FakeSystemd({0x55d0_0000_2000: 305, 0x55d0_0000_2008: 302, 0x55d0_0000_3000: 1000}, drift=2)
    push = sdbus.locate_cookie(node)
    assert push.address == FakeSystemd.COOKIE
    assert push.bus == FakeSystemd.COOKIE - 0x68 and "bus->cookie of the system bus" in push.located_by
    assert len(push.verification) >= 1 + sdbus.MIN_ROUNDS
    assert push.cookie_expr == f"((struct sd_bus *) {FakeSystemd.COOKIE - 0x68:#x})->cookie"


def test_two_addresses_that_both_track_the_serials_are_refused():
    node = FakeSystemd({})
    twin = FakeSystemd.COOKIE + 0x100

    original = node.tick

    def tick():
        original()
        node.heap[twin] = node.heap[FakeSystemd.COOKIE]
    node.tick = tick
    with pytest.raises(sdbus.InjectionFailed, match="2 addresses"):
        sdbus.locate_cookie(node)


def test_write_goes_through_gdb_only_while_the_cookie_is_near_where_it_was_located():
    node = FakeSystemd({}, drift=1, symbols=False)
    push = sdbus.locate_cookie(node)
    assert push.bus is None and push.cookie_expr.startswith("*(unsigned long *)")
    sdbus.confirm_write(node, sdbus.write_cookie(node, push, 0xFFFFFFF0))
    assert push.written == 0xFFFFFFF0 and push.reply_serial_after == 0xFFFFFFF0 + 2
    assert node.gdb_runs[-1][1].startswith("set var")
    value, _ = sdbus.read_cookie(node, push)
    assert value > 0xFFFFFFF0
    # A cookie that moved far away since it was located is left alone.
    node.heap[FakeSystemd.COOKIE] = 400
    push2 = sdbus.locate_cookie(node)
    node.heap[FakeSystemd.COOKIE] += 2 * sdbus.WINDOW
    sdbus.write_cookie(node, push2, 0xFFFFFFF0)
    assert push2.written is None and node.heap[FakeSystemd.COOKIE] < 0xFFFFFFF0


def test_gdb_batch_keeps_each_commands_output_apart():
    out = "\n".join(['=thread-group-added,id="i1"', f'~"{gdb.MARK}0\\n"', '~"$1 = 0x5\\n"',
                     f'~"{gdb.MARK}1\\n"', '&"No struct type named sd_bus.\\n"',
                     f'~"{gdb.MARK}2\\n"', '~"$2 = true\\n"', '~"[Inferior 1 (process 1) detached]\\n"'])

    class Node1(FakeSystemd):
        def _exec(self, argv, timeout, stdin):
            self.argv = argv
            return Result(0, out, "")
    node = Node1({})
    b = gdb.batch(node, 1, ["p /x 5", "p ((struct sd_bus *) 0)->is_system", "p 1 == 1"])
    assert b.number(0) == 5 and b.value(1) is None and "No struct type" in b.outputs[1] and b.value(2) == "true"
    assert "(gdb) p /x 5" in b.transcript and "detached" in b.transcript
    # gdb runs in the node under its own timeout, and the unit sends SIGCONT afterwards.
    assert "kill -CONT" in node.argv[6] and "--batch" in node.argv[6] and "-p" in node.argv[6]


needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed (`nodelab setup` installs it)")

HOLDER = """
import ctypes, sys
cell = (ctypes.c_uint64 * 1)(0x1234_5678_9abc_def0)
print(ctypes.addressof(cell), flush=True)
for line in sys.stdin:
    cell[0] += 1
    print("ok", flush=True)
"""


@needs_gcc
def test_procmem_finds_and_reads_a_live_processes_counter_without_stopping_it(monkeypatch):
    monkeypatch.undo()   # the real build
    binary = cbuild.static_binary("nodelab-procmem.c", "nodelab-procmem")
    child = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        address = int(child.stdout.readline())
        value = 0x1234_5678_9abc_def0
        scan = subprocess.run([str(binary), "scan", str(child.pid), hex(value), hex(value + 1)],
                              capture_output=True, text=True, timeout=30)
        assert scan.returncode == 0, scan.stderr
        assert f"{address:x} {value:x}" in scan.stdout.splitlines()
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "ok"
        read = subprocess.run([str(binary), "read", str(child.pid), hex(address)], capture_output=True, text=True,
                              timeout=30)
        assert read.stdout.split() == [f"{address:x}", f"{value + 1:x}"]
        state = open(f"/proc/{child.pid}/status").read()
        assert "TracerPid:\t0" in state
    finally:
        child.kill()
        child.wait()
    bad = subprocess.run([str(binary), "scan", "1", "x", "2"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2


def test_driving_the_bus_past_2_32_stops_at_the_first_unanswered_ping():
    node = FakeSystemd({}, symbols=False)
    push = sdbus.locate_cookie(node)
    sdbus.confirm_write(node, sdbus.write_cookie(node, push, 0xFFFFFFF0), pings=20)
    assert push.reply_serial_after == 0xFFFFFFF1
    assert push.serials_after[-2:] == [0xFFFFFFFF, None] and len(push.serials_after) == 16


def test_the_cookie_is_read_again_before_a_late_write_and_a_leap_is_refused():
    node = FakeSystemd({}, drift=1, symbols=False)
    push = sdbus.locate_cookie(node)
    node.heap[FakeSystemd.COOKIE] += 3 * sdbus.WINDOW        # a busy bus while the lab waited
    sdbus.track(node, push)
    sdbus.write_cookie(node, push, 0xFFFFFFF0)
    assert push.written == 0xFFFFFFF0
    push2 = sdbus.locate_cookie(node)
    node.heap[FakeSystemd.COOKIE] = 5                        # went backwards: not the cookie any more
    with pytest.raises(sdbus.InjectionFailed, match="no longer tracks"):
        sdbus.track(node, push2)
