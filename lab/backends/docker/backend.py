"""The docker backend: nodes are containers whose PID 1 is the target's systemd
(lab.backends.docker.node), on a docker network of the lab's own, in the
host's docker engine (started and owned by the lab when none answers)."""

import gzip
import shutil
import subprocess
from pathlib import Path

import docker.errors

from lab import paths
from lab.backends.base import Backend, Capabilities
from lab.backends.docker import adapters, engine
from lab.backends.docker import node as docker_nodes
from lab.backends.docker.node import DockerNode
from lab.recipes import images
from lab.recipes.targets import Target
from lab.errors import LabError
from lab.host import Check
from lab.owned.state import LabState, Resource, owner_label


JOURNAL_LINES = 300_000   # bounds what a run keeps of a node's journal (a run's node writes far fewer)


class DockerBackend(Backend):
    name = "docker"
    capabilities = Capabilities(
        host_sees_node_processes=True,
        pid_capacity=("pid_max (node's PID namespace)", "pids cgroup (node container)"),
        own_kernel=False)
    kubelet_in_node = docker_nodes.KUBELET_IN_NODE

    def __init__(self, state: LabState, say=print):
        self.state = state
        self.say = say
        self._client = None

    @property
    def client(self):
        """The engine; the first use starts dockerd when none answers (the caller holds the lab)."""
        if self._client is None:
            self._client = engine.ensure_docker_engine(self.state, self.say)
        return self._client

    def prepare(self) -> str:
        return f"docker engine {self.client.version().get('Version')} answers"

    def doctor(self) -> list[Check]:
        checks = []
        needed = adapters.sandbox_adapters()
        checks.append(Check("CAP_SYS_RESOURCE", not needed,
                            "present: nodes run --privileged, no adapters" if not needed else
                            "missing from the bounding set: nodes run with every other capability and "
                            f"these sandbox adapters: {', '.join(needed)}"))
        try:
            info = engine.docker_client(timeout=10).info()
            checks.append(Check("docker engine", True,
                                f"{info.get('ServerVersion')} storage={info.get('Driver')} "
                                f"cgroup v{info.get('CgroupVersion')} driver={info.get('CgroupDriver')}"))
        except LabError as exc:
            checks.append(Check("docker engine", False, str(exc)))
        return checks

    @classmethod
    def unavailable(cls, target: Target) -> str | None:
        return target.unavailable or None   # what the image build cannot make from the package sources here

    def image(self, target: Target, force: bool = False) -> str:
        # build_node_image refuses a target that unavailable() names, with its reason.
        return images.build_node_image(self.client, self.state, target, self.say, force=force)

    def image_listing(self) -> list[dict]:
        return images.listing(self.client)

    def sandbox_image(self) -> str:
        return images.busybox_image(self.client, self.say)

    def network(self) -> tuple[str, str]:
        """The lab's docker network and its gateway address."""
        name = f"nodelab-{owner_label()}"
        try:
            net = self.client.networks.get(name)
        except docker.errors.NotFound:
            self.state.record(Resource("network", name, "network"))
            net = self.client.networks.create(name, driver="bridge", labels={"nodelab.owner": owner_label()})
            net.reload()
        configs = net.attrs.get("IPAM", {}).get("Config") or []
        gateway = next((c.get("Gateway") for c in configs if c.get("Gateway")), None)
        if not gateway:
            raise LabError(f"docker network {name} has no gateway address")
        return name, gateway

    def host_address(self) -> str:
        return self.network()[1]

    def start_node(self, name: str, target: Target, image: str, kube_bin_dir: Path,
                   kernel_args: tuple[str, ...] = ()) -> DockerNode:
        if kernel_args:
            raise LabError(f"docker nodes run the lab host's kernel: no kernel arguments ({' '.join(kernel_args)})")
        return docker_nodes.start(self.client, self.state, name=name, image=image, target=target.name,
                                  network=self.network()[0], kube_bin_dir=str(kube_bin_dir))

    def free_name(self, base: str, index: int) -> str:
        existing = {c.name for c in self.client.containers.list(all=True)}
        n = index + 1
        while f"{base}-{n}" in existing:
            n += 1
        return f"{base}-{n}"

    def node_address(self, node: DockerNode) -> str:
        node.container.reload()
        return node.container.attrs["NetworkSettings"]["Networks"][self.network()[0]]["IPAddress"]

    def attach(self, name: str) -> DockerNode:
        return docker_nodes.attach(self.client, name)

    def nodes(self) -> list[DockerNode]:
        return docker_nodes.nodes(engine.docker_client(timeout=10))

    def remove_node(self, node: DockerNode) -> None:
        try:
            node.container.remove(force=True)
        except docker.errors.NotFound:
            pass
        self.state.forget("container", node.name)
        node_dir = paths.state_dir() / "nodes" / node.name
        shutil.rmtree(node_dir, ignore_errors=True)
        self.state.forget("dir", str(node_dir))

    def load_image(self, node: DockerNode, tag: str) -> None:
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "exec", "-i", node.name, "docker", "load"], stdin=save.stdout,
                              capture_output=True, text=True, timeout=600)
        save.wait()
        if load.returncode != 0 or save.returncode != 0:
            raise LabError(f"loading {tag} into {node.name} failed: {load.stderr.strip()}")

    def collect_logs(self, node: DockerNode, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        saved = []

        def keep(name: str, text: str, compress: bool = False) -> None:
            path = directory / f"{node.name}-{name}{'.gz' if compress else ''}"
            path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
            saved.append(path)

        # The whole journal (kubelet's, the runtime's, systemd's), at most its last JOURNAL_LINES lines.
        keep("journal.txt", node.run_outside_pid_namespace(
            ["journalctl", "--no-pager", "-o", "short-precise", "-n", str(JOURNAL_LINES)], timeout=120).stdout, True)
        try:
            keep("console.txt", node.container.logs(tail=2000).decode(errors="replace"))
        except docker.errors.NotFound:
            pass
        # dockerd's goroutine dumps the scenario asked for (SIGUSR1), if any.
        dumps = node.run_outside_pid_namespace("ls /var/run/docker/goroutine-stacks-*.log 2>/dev/null",
                                               timeout=30).stdout.split()
        for dump in dumps[:5]:
            keep(dump.rsplit("/", 1)[1], node.run_outside_pid_namespace(["cat", dump], timeout=60).stdout, True)
        return saved

    def reset(self, keep) -> list[str]:
        try:
            client = engine.docker_client(timeout=30)
        except LabError:
            return []   # no engine answers: nothing of ours can be running in it
        removed = []
        for res in self.state.removal_order():
            if keep(res) or res.kind not in ("container", "network"):
                continue
            try:
                if res.kind == "container":
                    client.containers.get(res.ref).remove(force=True)
                else:
                    client.networks.get(res.ref).remove()
                removed.append(f"{res.kind} {res.ref}")
            except docker.errors.NotFound:
                pass
            self.state.forget(res.kind, res.ref)
        # Containers and networks labelled as ours that the state missed.
        label = f"nodelab.owner={owner_label()}"
        for c in client.containers.list(all=True, filters={"label": label}):
            if not keep(Resource("container", c.name)):
                c.remove(force=True)
                removed.append(f"container {c.name} (by label)")
        for n in client.networks.list(filters={"label": label}):
            if not keep(Resource("network", n.name)):
                n.remove()
                removed.append(f"network {n.name} (by label)")
        return removed
