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
