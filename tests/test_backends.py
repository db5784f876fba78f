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
                                kernel="target")


class FakeLab:
    backend = NoHostView(state=None)

    def up(self, *args, **kwargs):
        raise AssertionError("no node may boot for a scenario the backend cannot run")


def test_an_unknown_backend_is_a_clear_error():
    with pytest.raises(LabError, match="unknown backend 'nope'; known: docker"):
        backends.get("nope", state=None)


def test_the_docker_backend_runs_every_shipped_scenario():
    for scenario in catalog.shipped().values():
        assert DockerBackend.cannot_run(scenario.requires) is None


def test_a_scenario_needing_a_capability_says_which_backend_lacks_it():
    zombies = catalog.shipped()["zombies"]
    assert NoHostView.cannot_run(zombies.requires) == "the no-host-view backend lacks host_sees_node_processes"
    with pytest.raises(LabError, match="scenario zombies cannot run here: the no-host-view backend lacks"):
        runner.run(FakeLab(), zombies, "bookworm")


def test_target_availability_is_the_backends_word():
    assert DockerBackend.unavailable(targets.get("centos7")).startswith("no CentOS 7 package source")
    assert DockerBackend.unavailable(targets.get("bookworm")) is None
