"""A job wave waits for its pods' ends, and releases a container the runtime
never saw exit (lab.fixtures.jobwaves.wave) instead of failing the run."""

from types import SimpleNamespace as NS

import pytest

from lab.errors import LabError
from lab.fixtures import jobwaves


class Kube:
    """Pods that end by themselves, but for `stuck` ones, which end Failed once released."""

    def __init__(self, stuck=()):
        self.phases, self.stuck, self.deleted = {}, set(stuck), 0

    def create_pod(self, spec):
        name = spec["metadata"]["name"]
        self.phases[name] = "Running" if name in self.stuck else "Succeeded"

    def pods(self, selector):
        return [NS(metadata=NS(name=n), status=NS(phase=p, container_statuses=[])) for n, p in self.phases.items()]

    def delete_pods(self, selector):
        self.deleted += 1
        self.phases.clear()


@pytest.fixture
def fast(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(jobwaves.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr("lab.polling.time.monotonic", lambda: clock[0])
    monkeypatch.setattr("lab.polling.time.sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    monkeypatch.setattr(jobwaves.memcg, "besteffort_pod_slices", lambda node: 0)
    monkeypatch.setattr(jobwaves.workload, "why_not_running", lambda kube, name: "phase Running")
    return clock


def test_a_container_that_never_exits_is_released_after_the_wave_waited(fast, monkeypatch):
    kube, asked = Kube(stuck=["memcg-w2-01"]), []

    def release(node, prefix):
        asked.append((fast[0], prefix))
        if fast[0] < 120:
            return []    # the process is still there: nothing released
        kube.phases["memcg-w2-01"] = "Failed"
        return ["memcg-w2-01 0123456789ab: docker had it running with its process 812 gone; killed its shim 790"]
    monkeypatch.setattr(jobwaves.runtime, "release_exited", release)
    seconds, failed, released = jobwaves.wave(kube, NS(name="n"), "img", 2, 3, 64)
    assert [t for t, _ in asked] == [90, 120] and asked[0][1] == "memcg-w2-"   # not before 90 s, then every 30 s
    assert failed == 1 and released == ["memcg-w2-01 0123456789ab: docker had it running with its process 812 "
                                        "gone; killed its shim 790"]
    assert kube.deleted == 1


def test_a_wave_whose_pods_end_asks_nothing_of_the_runtime(fast, monkeypatch):
    monkeypatch.setattr(jobwaves.runtime, "release_exited", lambda node, prefix: pytest.fail("asked"))
    assert jobwaves.wave(Kube(), NS(name="n"), "img", 0, 8, 64)[1:] == (0, [])


def test_a_pod_still_running_when_nothing_can_be_released_fails_the_wave(fast, monkeypatch):
    monkeypatch.setattr(jobwaves.runtime, "release_exited", lambda node, prefix: [])
    with pytest.raises(LabError, match="wave 1: memcg-w0-00 did not complete in 120 s"):
        jobwaves.wave(Kube(stuck=["memcg-w0-00"]), NS(name="n"), "img", 0, 2, 64)
