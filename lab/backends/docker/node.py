"""Docker backend: a node is a container whose PID 1 is the target's systemd.

Learned from kind: systemd as PID 1 with a private cgroup namespace,
writable v1 hierarchies (node-entrypoint.sh), /dev/kmsg, and a host
directory as the node's own /var/lib/docker (overlay2 cannot nest on
overlay). On a host without CAP_SYS_RESOURCE `--privileged` fails, so the
node gets every other capability and the sandbox adapters instead.
"""

import io
import subprocess
import tarfile
import time

import docker.errors

from lab import paths
from lab.backends.docker.adapters import sandbox_adapters
from lab.errors import LabError
from lab.backends.node import Node, Result
from lab.owned.state import LabState, Resource, owner_label

ASSETS_IN_NODE = "/usr/local/lib/nodelab"
KUBELET_IN_NODE = "/opt/nodelab/kube/kubelet"


class DockerNode(Node):
    backend = "docker"

    def __init__(self, client, container):
        if container.labels.get("nodelab.owner") != owner_label() or container.labels.get("nodelab.role") != "node":
            raise LabError(f"container {container.name} is not one of this lab's nodes; refusing to act on it")
        self.client = client
        self.container = container
        self.name = container.name

    @property
    def target(self) -> str:
        return self.container.labels.get("nodelab.target", "")

    @property
    def adapters(self) -> list[str]:
        return [a for a in self.container.labels.get("nodelab.adapters", "").split() if a]

    def _exec(self, argv, timeout, stdin):
        return _host_command(["docker", "exec", *(["-i"] if stdin is not None else []), self.name, *argv],
                             timeout, stdin)

    def run_outside_pid_namespace(self, cmd: str | list[str], timeout: float = 60, check: bool = False) -> Result:
        """`run`, but works when the node has no PIDs left (a `docker exec`'d
        process needs one): nsenter from the host into the node's mount, UTS,
        IPC and network namespaces only, for journals and files of a full node."""
        def outside(argv, t):
            return _host_command(["nsenter", f"--target={self.pid1_host_pid()}", "--mount", "--uts", "--ipc",
                                  "--net", "--", *argv], t, None)
        return self._run(outside, cmd, timeout, check)

    def interactive_argv(self, argv):
        return ["docker", "exec", "-i", self.name, *argv]

    def login_argv(self):
        return ["docker", "exec", "-it", self.name, "bash"]

    def put_file(self, path, content, mode=0o644):
        data = content.encode() if isinstance(content, str) else content
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(path.rsplit("/", 1)[1])
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        self.run(["mkdir", "-p", path.rsplit("/", 1)[0] or "/"])
        self.container.put_archive(path.rsplit("/", 1)[0] or "/", buf.getvalue())

    def get_file(self, path):
        stream, _ = self.container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile(tar.getmembers()[0])
            return member.read() if member else b""

    def pid1_host_pid(self) -> int:
        """PID of the node's PID 1 (its systemd) as the lab host sees it."""
        self.container.reload()
        return int(self.container.attrs["State"]["Pid"])

    def testinfra_host(self):
        import testinfra
        return testinfra.get_host(f"docker://{self.name}")


def _host_command(cmd: list[str], timeout: float, stdin: bytes | None) -> Result:
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return Result(124, (exc.stdout or b"").decode(errors="replace"),
                      (exc.stderr or b"").decode(errors="replace"), timed_out=True)
    return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))


def start(client, state: LabState, *, name: str, image: str, target: str, network: str,
          kube_bin_dir: str) -> DockerNode:
    adapters = sandbox_adapters()
    node_dir = paths.state_dir() / "nodes" / name
    state.record(Resource("dir", str(node_dir), "node-dir", {"node": name}))
    state.record(Resource("container", name, "node", {"target": target}))
    (node_dir / "docker").mkdir(parents=True, exist_ok=True)
    # The docker CLI, not the SDK: only the CLI turns systempaths=unconfined
    # into the empty MaskedPaths/ReadonlyPaths that systemd and kubelet need.
    isolation = ["--privileged"] if not adapters else [
        "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
        "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
        "--device-cgroup-rule", "a *:* rwm"]
    labels = {"nodelab.owner": owner_label(), "nodelab.role": "node", "nodelab.target": target,
              "nodelab.adapters": " ".join(adapters)}
    argv = ["docker", "run", "-d", "--name", name, "--hostname", name, "--network", network,
            "--entrypoint", "/bin/sh", "--cgroupns=private", "--tmpfs", "/run:rw,exec", "--tmpfs", "/run/lock",
            "-e", f"NODELAB_ADAPTERS={' '.join(adapters)}",
            "-v", "/dev/kmsg:/dev/kmsg", "-v", "/lib/modules:/lib/modules:ro",
            "-v", f"{node_dir / 'docker'}:/var/lib/docker",
            "-v", f"{paths.asset('')}:{ASSETS_IN_NODE}:ro",
            "-v", f"{kube_bin_dir}:{KUBELET_IN_NODE.rsplit('/', 1)[0]}:ro",
            *isolation, *[a for k, v in labels.items() for a in ("--label", f"{k}={v}")],
            image, f"{ASSETS_IN_NODE}/node-entrypoint.sh"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise LabError(f"starting node {name} failed: {proc.stderr.strip()}")
    container = client.containers.get(name)
    node = DockerNode(client, container)
    _wait_for_systemd(node)
    return node


def _wait_for_systemd(node: DockerNode, timeout: float = 90) -> None:
    def alive() -> None:
        node.container.reload()
        if node.container.status != "running":
            raise LabError(f"node {node.name} exited at boot:\n{node.container.logs(tail=20).decode(errors='replace')}")

    node.wait_for_systemd(time.monotonic() + timeout, alive, "node", f"after {timeout:.0f} s")


def attach(client, name: str) -> DockerNode:
    try:
        return DockerNode(client, client.containers.get(name))
    except docker.errors.NotFound:
        raise LabError(f"no node named {name}") from None


def nodes(client) -> list[DockerNode]:
    found = client.containers.list(filters={"label": [f"nodelab.owner={owner_label()}", "nodelab.role=node"]})
    return [DockerNode(client, c) for c in found]
