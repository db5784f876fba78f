"""The Backend interface: how the lab gets nodes, whatever they are.

Learned from kind's Provider (provision, list, delete, the API server
endpoint, collect logs, an info struct of what the provider can do) and
testinfra's backends: one small implementation per kind of node, chosen by
name. A backend builds (or finds) the image for a target, starts nodes,
lists and removes them, resets everything it owns, says where nodes reach
the lab host, loads images into a node's runtime, collects a node's logs,
and declares what it can do (`Capabilities`), so that scenarios ask for a
capability instead of assuming one. Joining a node to the control plane
(kubelet's unit and flags) is the cluster's, the same for every backend.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from lab.backends.node import Node
from lab.recipes.targets import Target


@dataclass(frozen=True)
class Capabilities:
    # The node's processes are processes of the lab host: the host's /proc
    # and cgroupfs show them, and keep answering when the node cannot fork.
    host_sees_node_processes: bool
    # How the node's PID capacity can be lowered, best first
    # ("pid_max (node's PID namespace)", "pids cgroup (node container)").
    pid_capacity: tuple[str, ...]
    # Each node boots its target's own kernel (False: nodes share the lab host's).
    own_kernel: bool

    def missing(self, required: tuple[str, ...]) -> list[str]:
        """The required capabilities this backend lacks, each with what it means."""
        return [f"{name} ({MEANING.get(name, name)})" for name in required if not getattr(self, name)]


MEANING = {
    "host_sees_node_processes": "the lab host's /proc shows the node's processes",
    "own_kernel": "each node boots its target's own kernel; here every node runs the lab host's",
}


class Backend(ABC):
    name: str
    capabilities: Capabilities
    kubelet_in_node: str          # where the lab's kubelet binary is inside a node
    host_commands: dict[str, str] = {}   # command -> Debian package, beyond lab.host's

    @abstractmethod
    def prepare(self) -> str:
        """Make the backend ready to start nodes (e.g. start an engine that does not
        answer); what answers now, for `nodelab setup`."""

    @abstractmethod
    def doctor(self) -> list:
        """Checks (lab.host.Check) of what this backend needs on this host."""

    @classmethod
    @abstractmethod
    def unavailable(cls, target: Target) -> str | None:
        """Why this backend cannot run `target` here, or None."""

    @classmethod
    def cannot_run(cls, required: tuple[str, ...]) -> str | None:
        """Why a scenario needing these capabilities cannot run on this backend, or None."""
        missing = cls.capabilities.missing(required)
        return f"the {cls.name} backend lacks {', '.join(missing)}" if missing else None

    @abstractmethod
    def image(self, target: Target, force: bool = False) -> str:
        """The target's node image (built, or found in the cache)."""

    @abstractmethod
    def image_listing(self) -> list[dict]:
        """Every target with what is built for it: target, image, status, summary."""

    @abstractmethod
    def sandbox_image(self) -> str:
        """The pause/workload image every node's runtime gets (lab.recipes.images.busybox_image)."""

    @abstractmethod
    def host_address(self) -> str:
        """The lab host's address as nodes see it: where they reach the control
        plane and the lab's fixtures (registry, slow endpoints)."""

    @abstractmethod
    def start_node(self, name: str, target: Target, image: str, kube_bin_dir: Path,
                   kernel_args: tuple[str, ...] = ()) -> Node:
        """A node running the target's systemd as PID 1, not yet joined; `kernel_args`
        are words for the kernel command line of a node that boots its own (own_kernel)."""

    @abstractmethod
    def free_name(self, base: str, index: int) -> str:
        """`base-N` for the first N (from index + 1) no node of this backend has."""

    @abstractmethod
    def node_address(self, node: Node) -> str:
        """The node's address on the lab's network (kubelet's --node-ip)."""

    @abstractmethod
    def attach(self, name: str) -> Node: ...

    @abstractmethod
    def nodes(self) -> list[Node]:
        """This lab's nodes; raises LabError if the backend does not answer (never starts anything)."""

    @abstractmethod
    def remove_node(self, node: Node) -> None:
        """The node and everything it had on the host (its directory, its record)."""

    @abstractmethod
    def load_image(self, node: Node, tag: str) -> None:
        """Put an image of the lab host's into the node's container runtime."""

    @abstractmethod
    def collect_logs(self, node: Node, directory: Path) -> list[Path]:
        """Save the node's logs (its whole journal, its console) under `directory`."""

    def kernel_lockups(self, node: Node) -> list[str]:
        """The lines in which the node's own kernel said it stopped making progress
        (soft lockups, RCU stalls), read from its console. A run that saw them
        tells nothing of the bug: the machine under it hung. Nodes sharing the
        lab host's kernel have none to read: empty."""
        return []

    def unanswering(self, node: Node) -> str:
        """Why the node's own machine no longer answers a command ("" when it
        does). A VM can freeze whole under TCG without a word on its console;
        a run that ends so tells nothing of the bug. Nodes sharing the lab
        host's kernel: "" (what runs there is the host's)."""
        return ""

    @abstractmethod
    def reset(self, keep) -> list[str]:
        """Remove every node and network this backend owns (by the state file and
        by label), except what `keep(resource)` selects; what was removed."""
