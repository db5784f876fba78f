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
    # the later end (+0.5 s) plus 0.3 s after it (exits read exactly) plus half the round trip, in the lab's time
    due = node_now + 5.0 + 0.5 + 0.3 + 0.01
    assert due - 0.05 <= kube.patched[0][2] <= due + 0.25


def test_a_cue_waits_longer_where_only_the_apis_whole_second_of_an_exit_is_known():
    kube = _Kube()
    node = NS(clock_offset=lambda: (0.0, 0.0))
    now = time.time()
    restarters.Restarters(kube, node, ("r1", "r2")).cue({"r1": {"ends": now - 1.0, "exact": True},
                                                        "r2": {"ends": now, "exact": False}}, "prepare-0")
    assert now + 1.1 - 0.05 <= kube.patched[0][2] <= now + 1.1 + 0.25


def _status(running: bool, exited: float | None = None, back_off: str = "40s", cid: str = "docker://c0ffee"):
    """A restarter's pod as the API shows it: running, or waiting out kubelet's back-off after an exit."""
    from datetime import datetime, timezone
    waiting = None if running else NS(reason="CrashLoopBackOff",
                                      message=f"back-off {back_off} restarting failed container=main pod=p_ns(1)")
    ended = NS(finished_at=datetime.fromtimestamp(int(exited), timezone.utc), container_id=cid) if exited else None
    cs = NS(state=NS(waiting=waiting, running=NS() if running else None), last_state=NS(terminated=ended),
            restart_count=3)
    return NS(status=NS(phase="Running", container_statuses=[cs]))


def test_back_offs_are_awaited_until_every_restarter_has_run_and_waits_and_read_exactly(monkeypatch):
    stale, exit_r1, exit_r2 = 1_795_999_900.2, 1_796_000_000.4, 1_796_000_000.7
    # Both are first seen in a back-off that began before the wait: it does not count until each
    # has been seen running and waiting again.
    views = {"r1": [_status(False, stale, cid="docker://old1"), _status(True),
                    _status(False, exit_r1, cid="docker://new1")],
             "r2": [_status(False, stale, cid="docker://old2"), _status(True), _status(True),
                    _status(False, exit_r2, cid="docker://new2")]}

    class Kube:
        def pod(self, name):
            return views[name].pop(0) if len(views[name]) > 1 else views[name][0]

    docker = {"docker://old1": stale, "docker://old2": stale, "docker://new1": exit_r1, "docker://new2": exit_r2}
    monkeypatch.setattr(restarters.runtime, "exited_at", lambda node, cid: docker[cid])
    monkeypatch.setattr(restarters, "until", lambda cond, seconds, every: any(cond() for _ in range(6)))
    waited, seen = restarters.Restarters(Kube(), NS(), ("r1", "r2")).await_back_offs(60)
    assert waited
    assert seen["r1"]["ends"] == exit_r1 + 40 and seen["r2"]["ends"] == exit_r2 + 40   # exact exits, not whole seconds
    assert seen["r1"]["exact"] and seen["r2"]["exact"] and seen["r1"]["reason"] == "CrashLoopBackOff"


def test_back_offs_not_awaited_when_a_restarter_never_waits(monkeypatch):
    class Kube:
        def pod(self, name):
            return _status(True)   # runs and runs
    monkeypatch.setattr(restarters, "until", lambda cond, seconds, every: any(cond() for _ in range(5)))
    waited, seen = restarters.Restarters(Kube(), NS(), ("r1", "r2")).await_back_offs(60)
    assert not waited and seen["r1"]["ends"] is None and seen["r1"]["reason"] == ""
