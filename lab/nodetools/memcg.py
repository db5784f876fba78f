"""A node's cgroup-v1 memory controller as an operator looks at it: memory
cgroups the kernel counts against the directories still there (the
difference is the zombies: deleted, still pinned by charged page cache), and
the time to read memory.stat at the root and at kubepods.slice (a static
reader of the lab's, lab/assets/nodelab-readtime.c, reads each file many
times in one process; the fastest read is the figure)."""

import time

from lab.recipes import cbuild

MEMCG = "/sys/fs/cgroup/memory"
STAT_FILES = (f"{MEMCG}/memory.stat", f"{MEMCG}/kubepods.slice/memory.stat")
STAT_READER = "/usr/local/sbin/nodelab-readtime"
COUNTS = f"""
echo num_cgroups $(awk '$1 == "memory" {{print $3}}' /proc/cgroups)
echo live $(find {MEMCG} -type d | wc -l)
"""


def install_reader(node) -> None:
    node.put_file(STAT_READER, cbuild.static_binary("nodelab-readtime.c", "nodelab-readtime").read_bytes(), 0o755)


def counts(node) -> dict:
    """num_cgroups of /proc/cgroups, the live directories, and their difference (`zombies`)."""
    out = node.run(["sh", "-c", COUNTS], timeout=60).stdout
    s = {k: int(v) for k, v in (line.split() for line in out.splitlines() if len(line.split()) == 2)}
    s["zombies"] = s["num_cgroups"] - s["live"]
    return s


def sample(node, reads: int, settle: float = 30) -> dict:
    """The counts and the time to read root's and kubepods.slice's memory.stat
    (`reads` reads each). The reads wait (at most `settle` s) until the counts
    hold still for 3 s: docker and kubelet free exited containers' files, and
    with them zombies, for a while after pods end; a sample taken in that flux
    once counted 114 cgroups and then read memory.stat faster than with 50."""
    s, t0, still = counts(node), time.monotonic(), False
    while not still and time.monotonic() - t0 < settle:
        time.sleep(3)
        now = counts(node)
        still, s = now == s, now
    s["settled"] = still
    timed = node.run([STAT_READER, str(reads), *STAT_FILES], timeout=300).stdout.split("\n")
    # per file: MIN_US MEDIAN_US MEAN_US MAX_US BYTES
    (s["root_us"], s["root_median_us"]), (s["kubepods_us"], s["kubepods_median_us"]) = (
        (float(line.split()[1]), float(line.split()[2])) for line in timed if line.strip())
    return s


def describe(s: dict) -> str:
    return (f"{s['num_cgroups']} memory cgroups, {s['live']} live directories ({s['zombies']} zombies), "
            f"memory.stat {s['root_us']} us at root, {s['kubepods_us']} us at kubepods.slice (fastest of "
            f"the reads; medians {s['root_median_us']}, {s['kubepods_median_us']} us)"
            + ("" if s.get("settled", True) else "; the counts were still moving when memory.stat was read"))


def besteffort_pod_slices(node) -> int:
    """Best-effort pod slices kubelet still has in the memory hierarchy."""
    out = node.run(f"ls -d {MEMCG}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod* "
                   f"2>/dev/null | wc -l", check=False).stdout.strip()
    return int(out or 0)
