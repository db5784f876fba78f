"""Which runc processes count as stuck (lab.nodetools.runtime.stuck_runc)."""

from types import SimpleNamespace as NS

from lab.nodetools import runtime

PS = """12345.67 23456.78
    PID ELAPSED COMMAND         COMMAND
      1   12000 systemd         /sbin/init
   5645 4123168608 runc:[0:PARENT] /usr/sbin/runc init
   5700       2 runc            runc --root /run/docker/runtime-runc/moby exec --process /tmp/p.json abc
   5801     310 runc            runc --root /run/docker/runtime-runc/moby create --bundle /b abc
    567     324 containerd-shim /usr/bin/containerd-shim-runc-v2 -namespace moby -id c5aab
"""


class Node:
    def run(self, argv, check=True, timeout=None):
        return NS(stdout=PS, stderr="", ok=True, rc=0)


def test_a_runc_call_older_than_the_limit_is_stuck_and_a_misread_elapsed_time_is_not():
    stuck = runtime.stuck_runc(Node())
    assert [line.split()[0] for line in stuck] == ["5801"]
