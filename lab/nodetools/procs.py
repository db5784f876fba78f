"""Process accounting read from the lab host's /proc and cgroupfs.

Nothing here starts a process: these readings keep working when a node has
no PIDs left (a `docker exec` into it then fails, since the exec'd process
needs a PID in the node's namespace).
"""

from collections import Counter
from pathlib import Path

PROC = Path("/proc")


def _stat(pid: str) -> tuple[str, int, str] | None:
    """(state, ppid, comm) of a host PID, or None once it is gone."""
    try:
        raw = (PROC / pid / "stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2:].split()   # comm may contain spaces and parentheses
    return rest[0], int(rest[1]), comm


def alive(host_pid: int, started: int | None = None) -> bool:
    """Whether a host PID runs (not gone, not a zombie); with `started` (its
    start_ticks), only while it is that very process: PIDs are reused."""
    st = _stat(str(host_pid))
    return st is not None and st[0] != "Z" and (started is None or start_ticks(host_pid) == started)


def start_ticks(host_pid: int) -> int | None:
    """When a host PID's process started (clock ticks after boot, /proc/PID/stat
    field 22): with the PID, it names one process. None once it is gone."""
    try:
        raw = (PROC / str(host_pid) / "stat").read_text()
    except OSError:
        return None
    return int(raw[raw.rindex(")") + 2:].split()[19])


def children(*host_pids: int) -> list[tuple[int, int, str, str]]:
    """(pid, ppid, state, comm) of every direct child of the given host PIDs."""
    parents = set(host_pids)
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            st = _stat(entry.name)
            if st and st[1] in parents:
                found.append((int(entry.name), st[1], st[0], st[2]))
    return found


def children_states(*host_pids: int) -> Counter:
    """States (R, S, Z, ...) of the direct children of the given host PIDs."""
    return Counter(state for _, _, state, _ in children(*host_pids))


def nspids(host_pid: int) -> list[int]:
    """The PID of a process in each PID namespace from the host's down (NSpid)."""
    for line in (PROC / str(host_pid) / "status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(p) for p in line.split()[1:]]
    return [host_pid]


def host_pid_of(pid_in_ns: int, level: int, under: int) -> int | None:
    """Host PID of the process whose PID at namespace `level` is pid_in_ns and
    which shares that namespace with host PID `under` (a node's PID 1)."""
    try:
        ns = (PROC / str(under) / "ns" / "pid").readlink()
    except OSError:
        return None
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ids = nspids(int(entry.name))
        except OSError:
            continue
        if len(ids) > level and ids[level] == pid_in_ns:
            # the same PID may exist in another node: it must descend from this one
            if _in_namespace_of(int(entry.name), ns):
                return int(entry.name)
    return None


def _in_namespace_of(host_pid: int, ns) -> bool:
    """True when host_pid lives in `ns` or in a namespace nested below it."""
    pid = host_pid
    while pid > 1:
        try:
            if (PROC / str(pid) / "ns" / "pid").readlink() == ns:
                return True
            st = _stat(str(pid))
        except OSError:
            return False
        if not st:
            return False
        pid = st[1]
    return False


def pids_cgroups(host_pid: int) -> list[tuple[str, int, str]]:
    """(path, pids.current, pids.max) of host_pid's pids cgroup and each ancestor, leaf first."""
    for line in (PROC / str(host_pid) / "cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            root = Path("/sys/fs/cgroup/pids")
        elif controllers == "":
            root = next((r for r in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
                         if (r / "cgroup.controllers").exists()), None)
            if root is None:
                continue
        else:
            continue
        chain, here = [], root / path.lstrip("/")
        while here != root and here.is_relative_to(root):
            try:
                chain.append((str(here), int((here / "pids.current").read_text()),
                              (here / "pids.max").read_text().strip()))
            except OSError:
                pass
            here = here.parent
        if chain:
            return chain
    return []


def comm(host_pid: int | None) -> str:
    """The command name of a host PID, or '?' once it is gone."""
    try:
        return (PROC / str(host_pid) / "comm").read_text().strip()
    except (OSError, TypeError):
        return "?"
