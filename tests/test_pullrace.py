import pytest

from lab.fixtures.pullrace import Look


def _look(**kw):
    base = dict(b_age_s=10.1, b_running=False, b_state="phase Pending, waiting ContainerCreating",
                b_asked_at=None, b_announced_at=0.1, a_slow_bytes=10 * 2**20, slow_open=1)
    return Look(**{**base, **kw})


def test_b_is_held_back_only_while_it_waits_unasked_and_the_slow_transfer_flows():
    assert _look().b_held_back
    assert "never asked for its image" in _look().summary()


@pytest.mark.parametrize("change", [
    {"b_running": True, "b_state": "Running"},   # B's pull overlapped A's: the fix
    {"b_asked_at": 0.4},                          # B's image asked for: its pull began
    {"slow_open": 0},                             # A's transfer over: nothing to wait behind any more
    {"b_announced_at": None},                     # kubelet has not asked for B's image yet (sandbox, sync)
])
def test_b_is_not_held_back_once_its_pull_began_or_nothing_holds_it(change):
    assert not _look(**change).b_held_back


def test_a_finished_race_waits_for_kubelets_late_pull_events_and_does_without_a_dropped_one(monkeypatch):
    """kubelet posts events after a pod can show Running (a clean-clone CI run of
    a0f4c89 read B's Running before its Pulled and called the race incomplete)."""
    import datetime
    from types import SimpleNamespace as NS
    from lab.fixtures import pullrace
    clock = [1000.0]
    monkeypatch.setattr("lab.polling.time.monotonic", lambda: clock[0])
    monkeypatch.setattr("lab.polling.time.sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    monkeypatch.setattr(pullrace.workload, "running_within", lambda kube, pod, seconds, every=1: True)
    stamp = datetime.datetime(2026, 12, 6, 4, 37, 19, tzinfo=datetime.timezone.utc)

    def event(reason, message=""):
        return NS(reason=reason, message=message, first_timestamp=stamp, event_time=None)

    class Kube:
        asked, pulled_after = 0, 3

        def event_objects(self, pod):
            self.asked += 1
            pulled = [event("Pulled", 'Successfully pulled image "x" in 422.58124ms')]
            return [event("Pulling")] + (pulled if pod.endswith("-a") or self.asked > self.pulled_after else [])

        def events_for(self, pod):
            return []
    registry = NS(relay=NS(connections=[]), requests=lambda: [NS(started=2e9, ended=2e9 + 0.05, repository=r)
                                                                 for r in (pullrace.LARGE, pullrace.SMALL)])
    kube = Kube()
    race = pullrace.PullRace(kube, NS(name="n"), registry, "near", "near", "near", 60)
    race.t0, race.relay_before, race.times = 0, 0, {"pulls-near-a created": 1.0, "pulls-near-b created": 1.0}
    race.finish()
    assert race.complete and race.pulls["pulls-near-b"]["kubelet_s"] == 0.42 and clock[0] > 1000
    kube.asked, kube.pulled_after = 0, 10**6      # B's Pulled never comes
    clock[0] = 1000.0
    race.finish()
    assert race.complete and race.pulls["pulls-near-b"]["kubelet_s"] is None
    assert clock[0] - 1000 >= pullrace.EVENTS_S
    assert "kubelet's Pulled event for B was not recorded within 15 s" in race.summary()
