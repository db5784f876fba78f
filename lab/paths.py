"""Where the lab keeps its state (what it owns now) and its cache (builds)."""

import os
from pathlib import Path


def state_dir() -> Path:
    """Per-user directory recording everything the lab created; `down` empties it."""
    base = os.environ.get("NODELAB_STATE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "nodelab"


def cache_dir() -> Path:
    """Per-user cache of builds (Kubernetes binaries, node images), keyed by inputs."""
    base = os.environ.get("NODELAB_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "nodelab"


def reports_dir() -> Path:
    return Path(os.environ.get("NODELAB_REPORTS_DIR") or state_dir().parent / "nodelab-reports")


def asset(name: str) -> Path:
    """A file shipped with the lab (scripts copied into nodes or run on the host)."""
    return Path(__file__).parent / "assets" / name
