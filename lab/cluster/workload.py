"""Small pods bound straight to a node (no scheduler), from the lab's busybox image."""

import re
import time

from lab import timefmt
from lab.polling import until


def pod(name: str, node: str, image: str, command: str, *, probe: list[str] | None = None,
        probe_period: int = 2, labels: dict | None = None, pull_policy: str = "Never", restart: str = "Always",
        mounts: list[dict] = (), volumes: list[dict] = ()) -> dict:
    """One `main` container running `command` under sh, bound to `node`; `mounts`
    (its volumeMounts) and `volumes` as the API spells them."""
    container = {"name": "main", "image": image, "imagePullPolicy": pull_policy,
                 "command": ["/bin/sh", "-c", command]}
    if probe:
        container["livenessProbe"] = {"exec": {"command": probe}, "periodSeconds": probe_period,
                                      "timeoutSeconds": 1, "failureThreshold": 3}
    if mounts:
        container["volumeMounts"] = list(mounts)
    spec = {"nodeName": node, "restartPolicy": restart, "terminationGracePeriodSeconds": 0, "containers": [container]}
    if volumes:
        spec["volumes"] = list(volumes)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "nodelab", **(labels or {})}},
            "spec": spec}


def phase_and_restarts(pod_obj) -> tuple[str, int]:
    if pod_obj is None or pod_obj.status is None:
        return "", 0
    restarts = sum(cs.restart_count for cs in (pod_obj.status.container_statuses or []))
    return pod_obj.status.phase or "", restarts


def phase_and_end(pod_obj) -> tuple[str, str]:
    """(phase, how it ended or why not): 'evicted by kubelet: <message>', 'OOMKilled (exit 137)',
    'Completed (exit 0)', 'running', or 'absent' for no pod."""
    if pod_obj is None or pod_obj.status is None:
        return "", "absent"
    if pod_obj.status.reason == "Evicted":
        return pod_obj.status.phase or "", f"evicted by kubelet: {pod_obj.status.message or ''}".strip()
    for cs in pod_obj.status.container_statuses or []:
        term = cs.state.terminated if cs.state else None
        if term:
            return pod_obj.status.phase or "", f"{term.reason} (exit {term.exit_code})"
    return pod_obj.status.phase or "", "running"


def waiting_reason(pod_obj) -> str:
    """Why the pod's first container is not running ("CrashLoopBackOff", ...), or ""."""
    statuses = (pod_obj.status.container_statuses or []) if pod_obj is not None and pod_obj.status else []
    if statuses and statuses[0].state and statuses[0].state.waiting:
        return statuses[0].state.waiting.reason or ""
    return ""


BACK_OFF_MESSAGE = re.compile(r"back-off (\S+) restarting failed container")


def back_off_ends(pod_obj, exited_at=None) -> float | None:
    """When kubelet's restart back-off of the pod's first container ends, on
    the node's clock (epoch seconds): its last exit plus the back-off kubelet
    states ("back-off 20s restarting failed container=..."), or None while it
    is not in back-off. The API server has the exit in whole seconds;
    `exited_at(container_id)`, when given, reads it exactly from the node's
    runtime (kubelet counts the back-off from that)."""
    statuses = (pod_obj.status.container_statuses or []) if pod_obj is not None and pod_obj.status else []
    st = statuses[0] if statuses else None
    waiting = st.state.waiting if st and st.state else None
    ended = st.last_state.terminated if st and st.last_state else None
    m = BACK_OFF_MESSAGE.search(waiting.message or "") if waiting else None
    if not (m and ended and ended.finished_at):
        return None
    exact = exited_at(ended.container_id) if exited_at and getattr(ended, "container_id", None) else None
    return (exact or ended.finished_at.timestamp()) + timefmt.go_duration(m.group(1))


def running_within(kube, pod: str, seconds: float, every: float = 1) -> bool:
    """Whether the API server shows the pod Running within `seconds`."""
    return until(lambda: phase_and_restarts(kube.pod(pod))[0] == "Running", seconds, every=every)


def why_not_running(kube, pod: str) -> str:
    """A pod's phase, its container's waiting reason and its last events, for a report."""
    obj = kube.pod(pod)
    last = " | ".join(" ".join(e.split())[:240] for e in kube.events_for(pod)[-3:])
    return f"phase {phase_and_restarts(obj)[0] or 'absent'}, waiting {waiting_reason(obj) or '-'}; " \
           f"last events: {last or 'none'}"


def started_on_node(node, prefix: str) -> dict[str, float]:
    """When the runtime started the `main` container of each pod whose name
    starts with `prefix` (epoch seconds; the node's clock is the host's)."""
    fmt = '{{index .Config.Labels "io.kubernetes.pod.name"}} {{.State.StartedAt}}'
    ids = node.run(["docker", "ps", "-q", "--filter", "label=io.kubernetes.container.name=main"]).stdout.split()
    out = node.run(["docker", "inspect", "-f", fmt, *ids], timeout=120).stdout if ids else ""
    started = {}
    for line in out.splitlines():
        pod_name, _, stamp = line.partition(" ")
        if pod_name.startswith(prefix) and stamp:
            started[pod_name] = timefmt.rfc3339(stamp)
    return started


def pod_containers_on_node(node, prefix: str, exited: bool = True) -> int:
    """Containers (sandboxes included) the runtime still has for pods whose name
    starts with `prefix`; exited ones too unless told (kubelet's container GC
    removes those only every minute)."""
    return len(pods_of_containers_on_node(node, prefix, exited))


def pods_of_containers_on_node(node, prefix: str, exited: bool = True) -> list[str]:
    """The pod name of each such container (a pod's name once per container)."""
    names = node.run(["docker", "ps", *(["-a"] if exited else []), "--format",
                      '{{.Label "io.kubernetes.pod.name"}}']).stdout.split()
    return [n for n in names if n.startswith(prefix)]


def start_pod(kube, node: str, name: str, image: str, command: str, timeout: float = 90) -> float | None:
    """Create a pod on the node; seconds until the API server shows it Running, or None."""
    t0 = time.monotonic()
    kube.create_pod(pod(name, node, image, command))
    return time.monotonic() - t0 if running_within(kube, name, timeout) else None
