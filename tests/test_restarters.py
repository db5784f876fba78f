import time
from types import SimpleNamespace as NS

from lab.fixtures import restarters


def test_back_offs_are_in_step_only_when_all_are_known_and_end_within_a_relist():
    assert restarters.in_step({"a": {"ends": 100.0}, "b": {"ends": 100.6}})
    assert not restarters.in_step({"a": {"ends": 100.0}, "b": {"ends": 101.2}})
    assert not restarters.in_step({"a": {"ends": 100.0}, "b": {"ends": None}})
    assert not restarters.in_step({})


class _Kube:
    namespace = "nodelab-test"

    def __init__(self):
        self.patched = []
        self.core = NS(patch_namespaced_pod=lambda name, ns, body: self.patched.append((name, body, time.time())))

    def pod(self, name):
        return NS(status=NS(phase="Running", container_statuses=[NS(restart_count=3 if name == "r1" else 4)]))


def test_a_cue_waits_for_the_later_back_off_end_on_the_nodes_clock_then_touches_every_pod():
    kube = _Kube()
    node = NS(clock_offset=lambda: (-5.0, 0.02))    # the node's clock runs 5 s behind the lab's
    pods = restarters.Restarters(kube, node, ("r1", "r2"))
    node_now = time.time() - 5.0
    seen = {"r1": {"ends": node_now + 0.2, "exact": True}, "r2": {"ends": node_now + 0.5, "exact": True}}
    counts = pods.cue(seen, "injection")
    assert counts == [3, 4]
    assert [name for name, _, _ in kube.patched] == ["r1", "r2"]
    assert all(body == {"metadata": {"annotations": {restarters.CUE_ANNOTATION: "injection"}}}
               for _, body, _ in kube.patched)
    # the later end (+0.5 s) plus 0.3 s after it plus half the round trip, in the lab's time
    assert kube.patched[0][2] >= node_now + 5.0 + 0.5 + 0.3 + 0.01 - 0.05
