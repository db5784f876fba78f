"""Reading kubelet's restart back-off off a pod's status (lab.cluster.workload)."""

from datetime import datetime, timezone
from types import SimpleNamespace as NS

from lab.cluster import workload


def _pod(message: str | None, finished: datetime | None):
    waiting = NS(reason="CrashLoopBackOff", message=message)
    terminated = NS(finished_at=finished, container_id="docker://c0ffee") if finished else None
    status = NS(state=NS(waiting=waiting, running=None), last_state=NS(terminated=terminated), restart_count=3)
    return NS(status=NS(container_statuses=[status], phase="Running"))


def test_the_back_off_ends_at_the_last_exit_plus_the_back_off_kubelet_states():
    exited = datetime(2026, 12, 5, 1, 31, 0, tzinfo=timezone.utc)
    pod = _pod("back-off 40s restarting failed container=main pod=cookie-restarter_ns(1234)", exited)
    assert workload.back_off_ends(pod) == exited.timestamp() + 40
    pod = _pod("back-off 2m40s restarting failed container=main pod=p_ns(1)", exited)
    assert workload.back_off_ends(pod) == exited.timestamp() + 160


def test_no_back_off_end_without_kubelets_message_or_a_last_exit():
    exited = datetime(2026, 12, 5, 1, 31, 0, tzinfo=timezone.utc)
    assert workload.back_off_ends(_pod(None, exited)) is None
    assert workload.back_off_ends(_pod("back-off 40s restarting failed container=main", None)) is None
    assert workload.back_off_ends(None) is None
    assert workload.back_off_ends(NS(status=NS(container_statuses=None))) is None


def test_the_runtimes_exact_exit_replaces_the_api_servers_whole_second():
    exited = datetime(2026, 12, 5, 1, 31, 0, tzinfo=timezone.utc)
    pod = _pod("back-off 40s restarting failed container=main pod=cookie-restarter_ns(1234)", exited)
    asked = []

    def exited_at(container_id):
        asked.append(container_id)
        return exited.timestamp() + 0.73
    assert workload.back_off_ends(pod, exited_at) == exited.timestamp() + 40.73
    assert asked == ["docker://c0ffee"]
    assert workload.back_off_ends(pod, lambda cid: None) == exited.timestamp() + 40   # runtime does not know it
