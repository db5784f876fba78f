"""What this host's kernel lets the lab do, read from /proc (never assumed)."""

from pathlib import Path

CAP_SYS_RESOURCE = 24


def bounding_set(status_path: str = "/proc/self/status") -> int:
    for line in Path(status_path).read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise RuntimeError(f"no CapBnd line in {status_path}")


def has_capability(bit: int, status_path: str = "/proc/self/status") -> bool:
    return bool(bounding_set(status_path) >> bit & 1)


def sandbox_adapters(status_path: str = "/proc/self/status") -> list[str]:
    """Adapters nodes need on this host; empty on a host with CAP_SYS_RESOURCE.

    Without CAP_SYS_RESOURCE nobody may lower oom_score_adj below 0, which
    containerd 1.2 (shims at -999), dockerd/containerd units and kubelet's
    sandboxes (-998) all ask for.
    """
    if has_capability(CAP_SYS_RESOURCE, status_path):
        return []
    return ["oom-score", "containerd-userns"]
