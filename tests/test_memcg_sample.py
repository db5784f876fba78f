import subprocess
from types import SimpleNamespace as NS

from lab.nodetools import memcg


class _Node:
    """Answers the counts script with the next of `counts`, and the reader with two files' figures."""

    def __init__(self, counts):
        self.counts, self.asked = list(counts), []

    def run(self, argv, timeout=None, check=True):
        self.asked.append(argv)
        if argv[0] == memcg.STAT_READER:
            out = "/sys/fs/cgroup/memory/memory.stat 380.5 402.0 410.2 900.1 1200\n" \
                  "/sys/fs/cgroup/memory/kubepods.slice/memory.stat 120.0 130.5 131.0 200.0 1100\n"
        else:
            cgroups, live = self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]
            out = f"num_cgroups {cgroups}\nlive {live}\n"
        return subprocess.CompletedProcess(argv, 0, out, "")


def test_zombies_are_the_cgroups_the_kernel_counts_beyond_the_live_directories():
    assert memcg.counts(_Node([(160, 110)])) == {"num_cgroups": 160, "live": 110, "zombies": 50}


def _clock(monkeypatch, step=0.0):
    """memcg's own view of time: sleeping costs nothing, the clock moves `step` s a look."""
    ticks = iter(range(0, 10**6))
    monkeypatch.setattr(memcg, "time", NS(sleep=lambda s: None, monotonic=lambda: next(ticks) * step))


def test_a_sample_reads_memory_stat_once_the_counts_hold_still(monkeypatch):
    _clock(monkeypatch)
    node = _Node([(170, 120), (160, 110), (160, 110)])    # kubelet still freeing a pod's cgroups, then still
    s = memcg.sample(node, reads=200)
    assert s["settled"] and s["zombies"] == 50
    assert (s["root_us"], s["root_median_us"], s["kubepods_us"], s["kubepods_median_us"]) == (380.5, 402.0, 120.0, 130.5)
    assert node.asked[-1] == [memcg.STAT_READER, "200", *memcg.STAT_FILES]   # read after the counts settled
    assert "50 zombies" in memcg.describe(s) and "still moving" not in memcg.describe(s)


def test_a_sample_whose_counts_never_settle_says_so(monkeypatch):
    _clock(monkeypatch, step=10)
    node = _Node([(170 + i, 120) for i in range(50)])
    s = memcg.sample(node, reads=10, settle=30)
    assert not s["settled"] and "still moving when memory.stat was read" in memcg.describe(s)
