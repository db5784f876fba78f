from lab.nodetools import sdbus
from lab.backends.node import Result
from tests.test_node_interface import ScriptedNode

# What dbus-send printed on the xenial-ga node (dbus 1.10) for the Ping.
REPLY = "method return time=1795346286.030398 sender=:1.1 -> destination=:1.27 serial=30 reply_serial=2\n"


def test_ping_reads_systemds_reply_serial_not_ours():
    node = ScriptedNode({"dbus-send": Result(0, REPLY, "")})
    ping = sdbus.ping_systemd(node)
    assert ping.answered and ping.serial == 30


def test_ping_timeout_is_not_answered():
    node = ScriptedNode({"dbus-send": Result(1, "", "Error org.freedesktop.DBus.Error.NoReply: Did not receive")})
    ping = sdbus.ping_systemd(node)
    assert not ping.answered and ping.serial is None and "NoReply" in ping.raw


