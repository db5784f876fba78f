import subprocess
from types import SimpleNamespace as NS

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


class _Churn:
    """A cycle's world after delete: `left` pods still running for docker (with
    their 2 subPath mounts each) until the lab releases them, if `releasable`."""

    def __init__(self, monkeypatch, left, releasable):

        self.left, self.released, clock = list(left), [], [0.0]
        monkeypatch.setattr("lab.polling.time.monotonic", lambda: clock[0])
        monkeypatch.setattr("lab.polling.time.sleep", lambda s: clock.__setitem__(0, clock[0] + s))
        monkeypatch.setattr(mountchurn.time, "monotonic", lambda: clock[0])
        monkeypatch.setattr(mountchurn, "sample", lambda node: {"subpath_mounts": 2 * len(self.left)})
        monkeypatch.setattr(mountchurn, "mounts_of", lambda node, uids: 0)
        monkeypatch.setattr(mountchurn.workload, "pods_of_containers_on_node",
                            lambda node, prefix, exited=True: list(self.left))
        monkeypatch.setattr(mountchurn.runtime, "lingering_containers", lambda node, prefix: "== " + " ".join(self.left))

        def release(node, prefix):
            assert prefix == "mountunits-c0-"    # this cycle's pods, never an earlier cycle's lingering one
            self.released.append(clock[0])
            if not releasable:
                return []
            gone, self.left[:] = list(self.left), []
            return [f"{p} 0123456789ab: docker had it running with its process 9 gone; killed its containerd-shim 8"
                    for p in gone]
        monkeypatch.setattr(mountchurn.runtime, "release_exited", release)
        self.pods = {}
        self.kube = NS(create_pod=lambda spec: self.pods.__setitem__(spec["metadata"]["name"], spec),
                       pods=lambda selector: [NS(metadata=NS(name=n, uid=f"uid-{n}"),
                                                 status=NS(phase="Running", container_statuses=[])) for n in self.pods],
                       delete_pods=lambda selector: None)


def test_a_pod_docker_never_saw_exit_is_released_once_it_lingered_and_then_goes(monkeypatch):
    churn, stuck = _Churn(monkeypatch, ["mountunits-c0-01"], releasable=True), {"pods": [], "subpath_mounts": 0}
    _, lingered = mountchurn.cycle(churn.kube, NS(name="n"), "img", "c0", 3, stuck)
    assert churn.released and churn.released[0] >= mountchurn.LINGER_S
    assert lingered.went and lingered.pod == "mountunits-c0-01" and lingered.subpath_mounts == 0
    assert lingered.released[0].startswith("mountunits-c0-01 0123456789ab: docker had it running")
    assert lingered.seen == "== mountunits-c0-01"     # what the node showed before the release
    assert stuck == {"pods": [], "subpath_mounts": 0}   # nothing left out of later waits


def test_a_pod_that_cannot_be_released_lingers_and_is_left_out_of_later_waits(monkeypatch):
    churn, stuck = _Churn(monkeypatch, ["mountunits-c0-01"], releasable=False), {"pods": [], "subpath_mounts": 0}
    _, lingered = mountchurn.cycle(churn.kube, NS(name="n"), "img", "c0", 3, stuck)
    assert len(churn.released) == 1 and not lingered.went and lingered.released == ()
    assert stuck == {"pods": ["mountunits-c0-01"], "subpath_mounts": 2}


def test_a_released_pod_that_still_does_not_go_lingers_within_the_cycles_wait(monkeypatch):
    churn, stuck = _Churn(monkeypatch, ["mountunits-c0-01"], releasable=True), {"pods": [], "subpath_mounts": 0}
    monkeypatch.setattr(mountchurn.runtime, "release_exited", lambda node, prefix: churn.released.append(1) or
                        ["mountunits-c0-01 0123456789ab: ... killed its containerd-shim 8"])
    _, lingered = mountchurn.cycle(churn.kube, NS(name="n"), "img", "c0", 3, stuck)
    assert churn.released == [1] and not lingered.went and lingered.released
    assert stuck == {"pods": ["mountunits-c0-01"], "subpath_mounts": 2}


def test_two_pods_left_are_no_churn_to_judge_and_nothing_is_released(monkeypatch):
    import pytest
    from lab.errors import LabError
    churn = _Churn(monkeypatch, ["mountunits-c0-01", "mountunits-c0-02"], releasable=True)
    with pytest.raises(LabError, match="still there 120 s after delete"):
        mountchurn.cycle(churn.kube, NS(name="n"), "img", "c0", 3, {"pods": [], "subpath_mounts": 0})
    assert churn.released == []
