"""The Backend seam: capabilities decide what runs where, before any node boots."""

import pytest

from lab import backends
from lab.backends.base import Capabilities
from lab.backends.docker.backend import DockerBackend
from lab.recipes import targets
from lab.errors import LabError
from lab.scenario import catalog, runner


class NoHostView(DockerBackend):
    """A backend whose nodes' processes the host cannot see (a VM's, say)."""
    name = "no-host-view"
    capabilities = Capabilities(host_sees_node_processes=False, pid_capacity=("pid_max (node's kernel)",),
                                own_kernel=True)


class FakeLab:
    backend = NoHostView(state=None)

    def up(self, *args, **kwargs):
        raise AssertionError("no node may boot for a scenario the backend cannot run")


def test_an_unknown_backend_is_a_clear_error():
    with pytest.raises(LabError, match="unknown backend 'nope'; known: docker"):
        backends.get("nope", state=None)


def test_the_docker_backend_runs_every_shipped_scenario_but_the_kernel_bound():
    for scenario in catalog.shipped().values():
        why = DockerBackend.cannot_run(scenario.requires)
        if "own_kernel" in scenario.requires:
            assert why == ("the docker backend lacks own_kernel (each node boots its target's own kernel; "
                           "here every node runs the lab host's)")
        else:
            assert why is None


def test_a_scenario_needing_a_capability_says_which_backend_lacks_it():
    zombies = catalog.shipped()["zombies"]
    assert NoHostView.cannot_run(zombies.requires) == ("the no-host-view backend lacks host_sees_node_processes "
                                                     "(the lab host's /proc shows the node's processes)")
    with pytest.raises(LabError, match="scenario zombies cannot run here: the no-host-view backend lacks"):
        runner.run(FakeLab(), zombies, "bookworm")


def test_target_availability_is_the_backends_word():
    assert DockerBackend.unavailable(targets.get("centos7")).startswith("no CentOS 7 package source")
    assert DockerBackend.unavailable(targets.get("bookworm")) is None


def test_a_kernel_bound_scenario_boots_its_node_with_its_kernel_arguments_and_containers_refuse_them():
    memcg = catalog.shipped()["memcg"]
    assert memcg.kernel_args({}) == ("possible_cpus=64",)
    assert memcg.kernel_args({"possible_cpus": 8}) == ("possible_cpus=8",)
    with pytest.raises(LabError, match=r"docker nodes run the lab host's kernel: no kernel arguments \(possible_cpus=8\)"):
        DockerBackend(state=None).start_node("n", targets.get("bookworm"), "img", None, ("possible_cpus=8",))
