"""Small pods bound straight to a node (no scheduler), from the lab's busybox image."""


def pod(name: str, node: str, image: str, command: str, *, probe: list[str] | None = None,
        probe_period: int = 2, labels: dict | None = None) -> dict:
    container = {"name": "main", "image": image, "imagePullPolicy": "Never",
                 "command": ["/bin/sh", "-c", command]}
    if probe:
        container["livenessProbe"] = {"exec": {"command": probe}, "periodSeconds": probe_period,
                                      "timeoutSeconds": 1, "failureThreshold": 3}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "nodelab", **(labels or {})}},
            "spec": {"nodeName": node, "restartPolicy": "Always", "terminationGracePeriodSeconds": 0,
                     "containers": [container]}}


def phase_and_restarts(pod_obj) -> tuple[str, int]:
    if pod_obj is None or pod_obj.status is None:
        return "", 0
    restarts = sum(cs.restart_count for cs in (pod_obj.status.container_statuses or []))
    return pod_obj.status.phase or "", restarts


def waiting_reason(pod_obj) -> str:
    """Why the pod's first container is not running ("CrashLoopBackOff", ...), or ""."""
    statuses = (pod_obj.status.container_statuses or []) if pod_obj is not None and pod_obj.status else []
    if statuses and statuses[0].state and statuses[0].state.waiting:
        return statuses[0].state.waiting.reason or ""
    return ""
