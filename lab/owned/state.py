"""The lab's record of what it created, so `down` removes exactly that.

Every resource is recorded *before* it is created (intent), so a crash or a
Ctrl-C between the two leaves a record that `down` can still act on; removal
of something already gone is not an error. Docker objects also carry the
`nodelab.owner` label, which `down` sweeps as a second line of defence.
"""

import contextlib
import fcntl
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab import paths

KINDS_IN_REMOVAL_ORDER = ("container", "vm", "process", "link", "network", "dir")


def owner_label() -> str:
    """Identifies this user's lab on a shared docker engine."""
    return hashlib.sha256(str(paths.state_dir().resolve()).encode()).hexdigest()[:12]


@dataclass
class Resource:
    kind: str          # one of KINDS_IN_REMOVAL_ORDER
    ref: str           # container/network/VM/tap name, "pid:<n>", or a path
    role: str = ""     # what it is for: "node", "etcd", "dockerd", ...
    detail: dict = field(default_factory=dict)


class LabState:
    def __init__(self, root: Path | None = None):
        self.root = root or paths.state_dir()
        self.file = self.root / "state.json"

    @contextlib.contextmanager
    def _locked(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "state.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = json.loads(self.file.read_text()) if self.file.exists() else {"resources": []}
            yield data
            tmp = self.file.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2))
            os.replace(tmp, self.file)

    def record(self, resource: Resource) -> None:
        with self._locked() as data:
            data["resources"] = [r for r in data["resources"]
                                 if (r["kind"], r["ref"]) != (resource.kind, resource.ref)]
            data["resources"].append(asdict(resource))

    def forget(self, kind: str, ref: str) -> None:
        with self._locked() as data:
            data["resources"] = [r for r in data["resources"] if (r["kind"], r["ref"]) != (kind, ref)]

    def resources(self, kind: str | None = None, role: str | None = None) -> list[Resource]:
        with self._locked() as data:
            found = [Resource(**r) for r in data["resources"]]
        return [r for r in found if (kind is None or r.kind == kind) and (role is None or r.role == role)]

    def removal_order(self) -> list[Resource]:
        """Newest first within a kind; containers before the processes and
        networks they use, directories last."""
        found = list(reversed(self.resources()))
        return sorted(found, key=lambda r: KINDS_IN_REMOVAL_ORDER.index(r.kind))


def process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: tells a recorded process from a later one
    that reused its PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]
