"""A node's PID capacity: read it, and lower it for that node only.

Fast-forwarding a PID-exhaustion incident must not touch the lab host. Linux
6.14 made `kernel.pid_max` per PID namespace: written inside a node it bounds
that node's PIDs and leaves the host's value alone (the write is checked
against the host's value before and after). On older kernels the node's pids
cgroup is limited instead (`docker update --pids-limit` on the node
container). The kernel refuses PIDs differently in the two cases (PID
allocator versus pids cgroup), so the mechanism goes into every report.
"""

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from lab import shell
from lab.nodetools import procs
from lab.errors import LabError
from lab.backends.docker.node import DockerNode

RESERVED_PIDS = 300         # kernel/pid.c: PIDs below this are not reused after the first wrap
PER_NAMESPACE_PID_MAX = (6, 14)
HOST_PID_MAX = Path("/proc/sys/kernel/pid_max")


@dataclass
class Capacity:
    mechanism: str          # "pid_max (node's PID namespace)" | "pids cgroup (node container)"
    limit: int              # the pid_max or pids.max set
    in_use: int             # tasks (threads included) in the node when it was set
    free: int               # PIDs left for new tasks
    host_pid_max: int       # the host's value, unchanged

    def as_dict(self) -> dict:
        return asdict(self)


def kernel_has_per_namespace_pid_max(release: str | None = None) -> bool:
    m = re.match(r"(\d+)\.(\d+)", release or os.uname().release)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= PER_NAMESPACE_PID_MAX


def node_tids(node: DockerNode) -> list[int]:
    """Every task ID in use in the node's PID namespace (nested ones included)."""
    out = node.run("ls -d /proc/[0-9]*/task/[0-9]* 2>/dev/null", check=False).stdout
    return sorted(int(p.rsplit("/", 1)[1]) for p in out.split())


def pid_max_for(used: list[int], free: int) -> int:
    """Smallest pid_max that leaves `free` PIDs for new tasks, given the PIDs in use.

    After the first wrap the allocator hands out [RESERVED_PIDS, pid_max);
    PIDs in use in that range are not free, those above pid_max keep running.
    """
    limit = RESERVED_PIDS + free
    for u in sorted(u for u in used if u >= RESERVED_PIDS):
        if u >= limit:
            break
        limit += 1     # a PID in use below the limit: one more slot needed
    return limit


def limit_node(node: DockerNode, free: int) -> Capacity:
    host_before = int(HOST_PID_MAX.read_text())
    used = node_tids(node)
    if kernel_has_per_namespace_pid_max():
        limit = pid_max_for(used, free)
        node.run(["sh", "-c", f"echo {limit} > /proc/sys/kernel/pid_max"])
        host_after = int(HOST_PID_MAX.read_text())
        if host_after != host_before:   # never leave the host changed
            HOST_PID_MAX.write_text(str(host_before))
            raise LabError(f"writing pid_max in {node.name} changed the host's pid_max "
                           f"({host_before} -> {host_after}); restored it. This kernel has no per-namespace pid_max")
        seen = int(node.run(["cat", "/proc/sys/kernel/pid_max"]).stdout)
        if seen != limit:
            raise LabError(f"{node.name}: pid_max reads {seen} after writing {limit}")
        return Capacity("pid_max (node's PID namespace)", limit, len(used), free, host_before)
    in_use = node_in_use(node) or len(used)
    shell.run(["docker", "update", "--pids-limit", str(in_use + free), node.name], timeout=60)
    return Capacity("pids cgroup (node container)", in_use + free, in_use, free, host_before)


def node_in_use(node: DockerNode) -> int | None:
    """Tasks in the node right now, from its container's pids cgroup on the host (no process started)."""
    for path, current, _ in procs.pids_cgroups(node.pid1_host_pid()):
        if _is_node_cgroup(path, node):
            return current
    return None


def task_cap(host_pid: int, below: DockerNode) -> tuple[int, str] | None:
    """The tightest pids.max between a process in the node and the node itself:
    (limit, cgroup path), or None when nothing in the node caps it."""
    caps = []
    for path, _, limit in procs.pids_cgroups(host_pid):
        if _is_node_cgroup(path, below):
            break
        if limit.isdigit():
            caps.append((int(limit), path))
    return min(caps) if caps else None


def _is_node_cgroup(path: str, node: DockerNode) -> bool:
    return Path(path).name == node.container.id     # the node container's own cgroup (cgroupfs driver)


def lift_systemd_task_cap(node: DockerNode) -> str:
    """Give container scopes no task limit, as docker's cgroupfs driver does:
    DefaultTasksMax=infinity for new units, TasksMax=infinity on the pod slices
    kubelet already made. Returns what changed, for the report."""
    before = node.run(["systemctl", "show", "-p", "DefaultTasksMax"]).stdout.strip()
    node.put_file("/etc/systemd/system.conf.d/50-nodelab-tasksmax.conf", "[Manager]\nDefaultTasksMax=infinity\n")
    node.run(["systemctl", "daemon-reexec"], timeout=60)
    slices = node.run("systemctl list-units --no-legend --plain 'kubepods*.slice' | cut -d' ' -f1").stdout.split()
    for unit in slices:
        node.run(["systemctl", "set-property", "--runtime", unit, "TasksMax=infinity"])
    after = node.run(["systemctl", "show", "-p", "DefaultTasksMax"]).stdout.strip()
    return f"systemd {before} -> {after} (drop-in + daemon-reexec); TasksMax=infinity on {', '.join(slices)}: " \
           f"container scopes have no task limit, as under docker's cgroupfs driver"
