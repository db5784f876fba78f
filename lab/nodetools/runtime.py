"""The container runtime inside a node, as an operator looks at it: runc
processes that hang, and dockerd's own goroutine dump (SIGUSR1)."""

import json
import re
import time
from dataclasses import dataclass

from lab import timefmt
from lab.backends.node import Node
from lab.cluster import workload
from lab.polling import until

STUCK_SECONDS = 30   # a runc call older than this is stuck (they take well under a second)


def stuck_runc(node: Node, older_than: int = STUCK_SECONDS) -> list[str]:
    """`ps` lines of runc processes running for longer than `older_than` seconds.
    A process caught while runc is still setting it up can show an elapsed
    time of billions of seconds (seen: `4123168608 runc:[0:PARENT] runc init`
    on a healthy node); anything older than the node's uptime is such a
    misreading, not a stuck call."""
    out = node.run(["sh", "-c", "cat /proc/uptime; ps -eo pid,etimes,comm,args"], check=False).stdout
    lines = out.splitlines()
    try:
        uptime = float(lines[0].split()[0])
    except (IndexError, ValueError):
        return []
    stuck = []
    for line in lines[2:]:   # past the uptime and ps's header
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2].startswith("runc") and older_than < int(parts[1]) <= uptime:
            stuck.append(line.strip())
    return stuck


def exited_at(node: Node, container_id: str) -> float | None:
    """When the runtime says a container exited (epoch seconds, node clock, to
    the nanosecond docker keeps), from its "docker://ID"; None if unknown."""
    res = node.run(["docker", "inspect", "-f", "{{.State.FinishedAt}}", container_id.split("://")[-1]], check=False)
    try:
        return timefmt.rfc3339(res.stdout) if res.ok and not res.stdout.startswith("0001-") else None
    except ValueError:
        return None


def dockerd_goroutines(node: Node) -> tuple[str, str]:
    """SIGUSR1 makes dockerd dump its goroutines to a file; count the lock waits.
    Returns (summary, the ContainerInspect stacks)."""
    node.run("kill -USR1 $(pidof dockerd)", check=False)
    time.sleep(2)
    path = node.run("ls -t /var/run/docker/goroutine-stacks-*.log 2>/dev/null | head -1", check=False).stdout.strip()
    dump = node.run(["cat", path], check=False, timeout=30).stdout if path else ""
    blocks = dump.split("\n\n")
    inspect = sum(1 for b in blocks if "ContainerInspect" in b and "Mutex" in b)
    exec_start = sum(1 for b in blocks if "ContainerExecStart" in b)
    return f"{inspect} goroutines in ContainerInspect waiting on a mutex, {exec_start} in ContainerExecStart " \
           f"({path or 'no dump file'})", "\n\n".join(b for b in blocks if "ContainerInspect" in b)[:20000]


# How fork/clone/thread-creation failures read in Go daemons, shells and runc.
FORK_FAILURES = re.compile(r"pthread_create failed|failed to create new OS thread|resource temporarily unavailable|"
                           r"no space left on device|cannot fork|can't fork|fork: retry", re.I)


def daemon_states(node: Node) -> str:
    """State of the node's runtime and kubelet, with how often systemd restarted
    them (NRestarts; systemd 229 does not count them)."""
    out = node.run("for u in kubelet docker containerd; do echo $u $(systemctl show -p ActiveState -p NRestarts $u)"
                   "; done", check=False).stdout
    return "; ".join(out.split("\n")).strip("; ") or "unknown"


def container_log(node, cid: str) -> str:
    """A docker container's json log in the node, read from outside the node's
    PID namespace (works when the node cannot fork; a DockerNode's)."""
    path = f"/var/lib/docker/containers/{cid}/{cid}-json.log"
    out = node.run_outside_pid_namespace(["tail", "-c", "200000", path], timeout=30).stdout
    lines = []
    for raw in out.splitlines():
        try:
            lines.append(json.loads(raw)["log"].rstrip())
        except (ValueError, KeyError):
            continue
    return "\n".join(lines)


def first_fork_failure(log: str) -> str:
    return next((line for line in log.splitlines() if FORK_FAILURES.search(line)), "")


def fork_failures_logged(node, since_seconds: int) -> tuple[list[str], dict[str, str]]:
    """Fork/thread-creation failures docker, containerd and kubelet logged in
    the last `since_seconds`: (every line, the first line of each kind).
    Read from outside the node's PID namespace (a DockerNode's)."""
    journal = node.run_outside_pid_namespace(
        ["journalctl", "--no-pager", "-o", "short-precise", "-u", "docker", "-u", "containerd",
         "-u", "kubelet", "--since", f"-{since_seconds}s"], timeout=60).stdout
    failures, kinds = [], {}
    for line in journal.splitlines():
        if m := FORK_FAILURES.search(line):
            failures.append(line)
            kinds.setdefault(m.group(0).lower(), line)
    return failures, kinds


@dataclass
class Serving:
    ready: bool                  # the node's Ready condition came back
    started: bool                # a new pod ran
    restarted: str = ""          # why the runtime and kubelet were restarted, if they were
    ready_at: float | None = None   # time.monotonic() when it was seen Ready


def serving_again(kube, node, pod: dict, ready_seconds: float, start_seconds: float) -> Serving:
    """Is the node serving again after an incident: Ready within ready_seconds,
    and `pod` (a manifest) Running start_seconds after it is created? If not,
    restart containerd, docker and kubelet, as an operator would, and look again.
    Seen after PID exhaustion: dockerd failed for good (systemd's start limit)
    and kubelet (Requires=docker.service) with it, or docker 18.09 cut off from
    containerd ("all SubConns are in TransientFailure") so that no sandbox starts."""
    name = pod["metadata"]["name"]

    def ready() -> bool:
        return kube.condition(node.name).status == "True"

    is_ready = until(ready, ready_seconds)
    ready_at = time.monotonic() if is_ready else None
    if is_ready:
        kube.create_pod(pod)
    started = is_ready and workload.running_within(kube, name, start_seconds)
    if started:
        return Serving(True, True, ready_at=ready_at)
    cond = kube.condition(node.name)
    why = (f"Ready={cond.status} ({cond.message}) {ready_seconds:.0f} s after the incident ended" if not is_ready
           else f"Ready, but {name} not Running {start_seconds:.0f} s after creation: "
                f"{workload.why_not_running(kube, name)}")
    why += f"; {daemon_states(node)}; restarted containerd, docker and kubelet, as an operator would"
    node.run("for u in containerd docker kubelet; do systemctl restart $u; done", timeout=180, check=False)
    is_ready = until(ready, 120)
    ready_at = time.monotonic() if is_ready else None
    if is_ready and kube.pod(name) is None:
        kube.create_pod(pod)
    return Serving(is_ready, is_ready and workload.running_within(kube, name, 120), why, ready_at)


LINGERING = r"""
docker ps --no-trunc --format '{{.ID}} {{.Label "io.kubernetes.pod.name"}}' | while read -r id pod; do
  case "$pod" in "$1"*) ;; *) continue ;; esac
  pid=$(docker inspect -f '{{.State.Pid}}' "$id" 2>/dev/null)
  echo "== $pod ${id%"${id#????????????}"} pid ${pid:-?} (docker inspect: $(docker inspect -f '{{.State.Status}}' "$id" 2>&1))"
  for shim in $(pgrep -f "containerd-shim.*$id"); do
    ps --no-headers -o pid,stat,etimes,wchan:24,args -p "$shim" | sed 's/^/  shim /'
  done
  [ -n "$pid" ] && [ "$pid" != 0 ] || continue
  grep -qs "$id" /proc/"$pid"/cgroup || { echo "  process $pid: not this container's (gone: the runtime never saw its exit)"; continue; }
  for t in /proc/"$pid"/task/*; do
    echo "  task ${t##*/}: $(grep -E '^State' "$t"/status 2>/dev/null) wchan $(cat "$t"/wchan 2>/dev/null)"
  done
  sed 's/^/  stack /' /proc/"$pid"/stack 2>/dev/null
  for f in $(awk -F: '$2 ~ /freezer/ {print $3}' /proc/"$pid"/cgroup 2>/dev/null); do
    echo "  freezer $f: $(cat /sys/fs/cgroup/freezer"$f"/freezer.state 2>/dev/null)"
  done
  ps --no-headers -o pid,ppid,stat,etimes,wchan:24,args --ppid "$pid" 2>/dev/null | sed 's/^/  child /'
done
"""


def lingering_containers(node: Node, pod_prefix: str) -> str:
    """What the runtime's still-running containers of pods named `pod_prefix`*
    are doing, seen from the node's /proc: each task's state and wait channel,
    the kernel stack, the freezer cgroup's state, its children, and its
    containerd-shim; or that the process is gone although docker says it runs.
    For a report when a deleted pod's container will not exit."""
    res = node.run(["sh", "-c", LINGERING, "lingering", pod_prefix], check=False, timeout=60)
    return (res.stdout + res.stderr).strip() or "none running"


# $1: a pod name prefix. A container that docker has running while its process
# is gone (the pid docker knows is not in the container's cgroup), in two looks
# 5 s apart, has its containerd-shim killed; one line per container released.
RELEASE = r"""
gone() {
  set -- $(docker inspect -f '{{.State.Running}} {{.State.Pid}}' "$1" 2>/dev/null) "$1"
  [ "$1" = true ] && [ "${2:-0}" != 0 ] && ! grep -qs "$3" /proc/"$2"/cgroup && echo "$2"
}
docker ps --no-trunc --format '{{.ID}} {{.Label "io.kubernetes.pod.name"}}' | while read -r id pod; do
  case "$pod" in "$1"*) ;; *) continue ;; esac
  pid=$(gone "$id") || continue
  sleep 5
  [ "$(gone "$id")" = "$pid" ] || continue
  for shim in $(pgrep -f "containerd-shim.*$id"); do
    kill -9 "$shim" && echo "$pod ${id%"${id#????????????}"}: docker had it running with its process $pid gone; killed its containerd-shim $shim"
  done
done
"""


def release_exited(node: Node, pod_prefix: str) -> list[str]:
    """Make the runtime see the exit of containers (of pods named
    `pod_prefix`*) whose process is gone while docker still has them running:
    their containerd-shim is killed, and containerd reports a task whose shim
    died as exited (status 137), as it does on any machine. Seen on xenial-ga
    VMs under TCG with containerd 1.2.6: the shim reaped the process but never
    reported the exit, dockerd's SIGKILLs went nowhere for minutes, and the
    pod stayed Running (moby #32938 and #41676 tell the same of real
    machines). This is not part of any scenario's causal chain: callers say
    in their report that the lab did it. Containers whose process still
    lives are left alone. Returns one line per container released."""
    res = node.run(["sh", "-c", RELEASE, "release", pod_prefix], check=False, timeout=120)
    return [line for line in res.stdout.splitlines() if line.strip()]
