import subprocess

import pytest

from lab.fixtures import mountchurn


@pytest.mark.parametrize("pods, subpath_mounts, stuck", [
    (["mountunits-c0-03"], 2, True),     # one pod the runtime still runs, with its own two subPath mounts
    (["mountunits-c0-03"], 0, True),
    (["mountunits-c0-03"], 3, False),    # a mount more than one pod has: not one pod's leftovers
    (["mountunits-c0-03", "mountunits-c0-04"], 2, False),   # two pods stuck: no churn to judge
    ([], 2, False),                      # mounts with no pod left running: the wait goes on
])
def test_only_one_pod_with_its_own_mounts_counts_as_lingering(pods, subpath_mounts, stuck):
    assert mountchurn.lingering(pods, subpath_mounts) is stuck


class _Node:
    """Runs what the fixture asks with the host's sh and grep, on a given mountinfo."""

    def __init__(self, mountinfo):
        self.mountinfo, self.calls = mountinfo, []

    def run(self, argv, timeout=None, check=True):
        argv = [str(self.mountinfo) if a == "/proc/1/mountinfo" else a for a in argv]
        self.calls.append(argv)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check)   # as Node.run


def test_mounts_are_told_apart_by_pod_uid(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text("1 2 0:1 / /var/lib/kubelet/pods/uid-a/volumes/kubernetes.io~secret/token rw - tmpfs tmpfs rw\n"
                    "3 2 0:2 / /var/lib/kubelet/pods/uid-a/volume-subpaths/config/main/0 rw - ext4 /dev/vda rw\n"
                    "4 2 0:3 / /var/lib/kubelet/pods/uid-b/volumes/kubernetes.io~secret/token rw - tmpfs tmpfs rw\n"
                    "5 2 0:4 / /var/lib/kubelet/pods/uid-ab/volumes/kubernetes.io~secret/token rw - tmpfs tmpfs rw\n")
    node = _Node(info)
    assert mountchurn.mounts_of(node, ["uid-a"]) == 2
    assert mountchurn.mounts_of(node, ["uid-a", "uid-b"]) == 3     # not uid-ab's: a UID ends at its slash
    assert mountchurn.mounts_of(node, ["uid-c"]) == 0       # grep -c exits 1 on no match: still a count
    calls = len(node.calls)
    assert mountchurn.mounts_of(node, []) == 0 and len(node.calls) == calls   # nothing to ask the node


def test_a_sample_reads_every_figure_and_skips_what_is_not_one():
    class Node:
        def run(self, argv, timeout=None):
            out = "transient 12\npod_mount_units 0\nsubpath_mounts 4\nkubelet_rss_kib\n"
            return subprocess.CompletedProcess(argv, 0, out, "")
    assert mountchurn.sample(Node()) == {"transient": 12, "pod_mount_units": 0, "subpath_mounts": 4}
