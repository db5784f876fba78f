"""Reading pods' states off their status (lab.cluster.workload): restart back-off, how a pod ended."""

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


def test_a_containers_exit_is_read_from_docker_to_the_nanosecond():
    from lab.backends.node import Result
    from lab.nodetools import runtime

    class Docker:
        def __init__(self, out, rc=0):
            self.out, self.rc, self.argv = out, rc, None

        def run(self, argv, check=True):
            self.argv = argv
            return Result(self.rc, self.out, "")
    node = Docker("2026-12-05T04:37:10.123456789Z\n")
    assert abs(runtime.exited_at(node, "docker://c0ffee") -
               (datetime(2026, 12, 5, 4, 37, 10, tzinfo=timezone.utc).timestamp() + 0.123456789)) < 1e-6
    assert node.argv[-1] == "c0ffee"
    assert runtime.exited_at(Docker("0001-01-01T00:00:00Z\n"), "docker://c0ffee") is None   # never exited
    assert runtime.exited_at(Docker("", rc=1), "docker://gone") is None
    assert runtime.exited_at(Docker("garbage"), "docker://c0ffee") is None


def _ended(reason=None, message=None, terminated=None, phase="Failed"):
    state = NS(terminated=NS(reason=terminated[0], exit_code=terminated[1]) if terminated else None)
    return NS(status=NS(reason=reason, message=message, phase=phase, container_statuses=[NS(state=state)]))


def test_how_a_pod_ended_evicted_before_its_container_state():
    evicted = _ended("Evicted", "The node was low on resource: memory.", ("Error", 137))
    assert workload.phase_and_end(evicted) == ("Failed", "evicted by kubelet: The node was low on resource: memory.")
    assert workload.phase_and_end(_ended(terminated=("OOMKilled", 137))) == ("Failed", "OOMKilled (exit 137)")
    assert workload.phase_and_end(_ended(terminated=("Completed", 0), phase="Succeeded")) == \
        ("Succeeded", "Completed (exit 0)")
    assert workload.phase_and_end(_ended(phase="Running")) == ("Running", "running")
    assert workload.phase_and_end(None) == ("", "absent")


def test_a_pod_gets_volumes_and_a_restart_policy_only_when_asked():
    plain = workload.pod("p", "node-1", "busybox", "sleep 1")
    assert plain["spec"]["restartPolicy"] == "Always" and "volumes" not in plain["spec"]
    assert "volumeMounts" not in plain["spec"]["containers"][0]
    job = workload.pod("j", "node-1", "busybox", "true", restart="Never", labels={"nodelab.scenario": "x"},
                       mounts=[{"name": "w", "mountPath": "/w"}], volumes=[{"name": "w", "emptyDir": {}}])
    assert job["spec"]["restartPolicy"] == "Never" and job["spec"]["volumes"] == [{"name": "w", "emptyDir": {}}]
    assert job["spec"]["containers"][0]["volumeMounts"] == [{"name": "w", "mountPath": "/w"}]
    assert job["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "nodelab", "nodelab.scenario": "x"}
