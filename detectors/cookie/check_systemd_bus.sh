#!/bin/sh
# check_systemd_bus.sh: does systemd (PID 1) answer on the system bus?
#
# The sd-bus cookie overflow (systemd #11809, fixed in v242, Ubuntu 16.04
# 229-4ubuntu21.29, RHEL 7 219-62.8): once PID 1's bus cookie passes
# 0xffffffff every message it sends to dbus-daemon fails, so calls to
# org.freedesktop.systemd1 over the system bus time out while systemctl, which
# talks to PID 1 over its private socket, still works. runc (systemd cgroup
# driver) then waits forever and kubelet reports `PLEG is not healthy` minutes
# later; this check sees the dead bus at once.
#
# node-problem-detector custom plugin protocol: exit 0 OK, 1 problem, 2
# unknown; the first line of output is the condition's message.
# Usage: check_systemd_bus.sh [REPLY_TIMEOUT_SECONDS]   (default 3)
# Needs dbus-send (dbus) and systemctl; Ubuntu 16.04's and Debian 12's work.
t=${1:-3}
if out=$(dbus-send --system --print-reply --reply-timeout="$((t * 1000))" --dest=org.freedesktop.systemd1 \
        /org/freedesktop/systemd1 org.freedesktop.DBus.Peer.Ping 2>&1); then
  serial=$(printf '%s\n' "$out" | sed -n 's/.* serial=\([0-9]*\).*/\1/p' | head -n 1)
  echo "systemd answers on the system bus (reply serial ${serial:-unknown})"
  exit 0
fi
why=$(printf '%s\n' "$out" | head -n 1 | cut -c1-120)
# systemd is silent on the bus: is the bus itself (dbus-daemon) down?
if ! dbus-send --system --print-reply --reply-timeout="$((t * 1000))" --dest=org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus.GetId >/dev/null 2>&1; then
  echo "the system bus itself (dbus-daemon) does not answer within ${t} s ($why)"
  exit 1
fi
# dbus-daemon answers, systemd does not: can PID 1 still talk on its private socket?
if timeout "$t" systemctl show -p Version >/dev/null 2>&1; then
  echo "systemd answers on its private socket but not on the system bus within ${t} s (dbus-daemon answers): sd-bus cookie overflow? ($why)"
  exit 1
fi
echo "systemd answers neither on the system bus nor on its private socket within ${t} s ($why)"
exit 2
