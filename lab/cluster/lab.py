"""The lab as a whole: host engine, binaries, images, control plane, nodes.

`Lab.up()` brings nodes to Ready against the lab's API server; `Lab.down()`
removes exactly what the state file records (and any container or network
carrying this lab's owner label), also after an earlier run crashed.
"""

import json
import shutil
import time
from pathlib import Path

import docker.errors

from lab import host, paths
from lab.backends.docker import adapters as capabilities
from lab.build import images, kubebins, targets
from lab.cluster import controlplane
from lab.fixtures import registry
from lab.owned import daemons
from lab.errors import LabError
from lab.cluster.kube import Kube
from lab.owned.lablock import LabLock
from lab.backends.docker import node as docker_nodes
from lab.backends.docker.node import DockerNode
from lab.owned.state import LabState, Resource, owner_label

KUBELET_UNIT = """[Unit]
Description=kubelet (nodelab)
After=docker.service
Requires=docker.service

[Service]
ExecStart={exec_start}
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""


class Lab:
    def __init__(self, say=print, kube_binaries: str | None = None):
        self.say = say
        self.state = LabState()
        self.lock = LabLock(self.state.root, say)
        self._kube_binaries_dir = kube_binaries
        self._client = None
        self._bins = None
        self.sandbox_image: str | None = None   # also the workload image (busybox)

    # -- ground -------------------------------------------------------------
    def claim(self) -> None:
        """Hold the lab for this process (lab.owned.lablock): whatever changes it
        does this first, and waits while another run holds it."""
        self.lock.acquire()

    def release(self) -> None:
        self.lock.release()

    @property
    def client(self):
        """The docker engine; the first use claims the lab, installs missing
        host packages (what `nodelab setup` does) and starts dockerd if none answers."""
        if self._client is None:
            self.claim()
            host.install_packages(self.say)
            self._client = host.ensure_docker_engine(self.state, self.say)
        return self._client

    @property
    def bins(self) -> kubebins.KubeBinaries:
        if self._bins is None:
            self._bins = kubebins.resolve(self._kube_binaries_dir, self.say)
        return self._bins

    def setup(self) -> list[str]:
        done = [f"installed {p}" for p in host.install_packages(self.say)]
        self.client  # noqa: B018 - starts dockerd when none answers
        done.append(f"docker engine {self.client.version().get('Version')} answers")
        done.append(f"kubernetes binaries {self.bins.version} ({self.bins.origin}) in {self.bins.directory}")
        done.append(f"docker-registry (Debian's, not installed) at {registry.binary(self.say)}")
        return done

    def network(self) -> tuple[str, str]:
        """The lab's docker network and its gateway address."""
        name = f"nodelab-{owner_label()}"
        try:
            net = self.client.networks.get(name)
        except docker.errors.NotFound:
            self.state.record(Resource("network", name, "network"))
            net = self.client.networks.create(name, driver="bridge",
                                              labels={"nodelab.owner": owner_label()})
            net.reload()
        configs = net.attrs.get("IPAM", {}).get("Config") or []
        gateway = next((c.get("Gateway") for c in configs if c.get("Gateway")), None)
        if not gateway:
            raise LabError(f"docker network {name} has no gateway address")
        return name, gateway

    def control_plane(self) -> controlplane.ControlPlane:
        _, gateway = self.network()
        return controlplane.ensure(self.state, gateway, self.bins, self.say)

    def kube(self, namespace: str = "default") -> Kube:
        return Kube(self.control_plane().kubeconfig, namespace)

    # -- nodes --------------------------------------------------------------
    def up(self, target: "str | targets.Target", count: int = 1, kubelet_flags: tuple[str, ...] = (),
           prefix: str | None = None) -> list[DockerNode]:
        target = targets.runnable(target) if isinstance(target, str) else target
        image = images.build_node_image(self.client, self.state, target, self.say)
        sandbox = images.busybox_image(self.client, self.say)
        self.sandbox_image = sandbox
        cp = self.control_plane()
        network, _ = self.network()
        kube = Kube(cp.kubeconfig)
        started = []
        for i in range(count):
            name = self._free_name(prefix or f"nodelab-{target.name}", i)
            t0 = time.monotonic()
            self.say(f"booting node {name} ({target.name})")
            node = docker_nodes.start(self.client, self.state, name=name, image=image, target=target.name,
                                      network=network, kube_bin_dir=str(self.bins.directory))
            try:
                node.load_image(sandbox)
                self._start_kubelet(node, cp, sandbox, kubelet_flags)
                kube.wait_ready(name, timeout=180)
            except BaseException as exc:
                # No half-started node stays behind; what kubelet said goes into the error.
                journal = node.journal("kubelet", lines=15) if not isinstance(exc, KeyboardInterrupt) else ""
                self.remove_node(node)
                if isinstance(exc, LabError):
                    raise LabError(f"{exc}\nlast kubelet lines on {name}:\n{journal}") from None
                raise
            self.say(f"node {name} Ready in {time.monotonic() - t0:.0f} s")
            started.append(node)
        return started

    def _free_name(self, base: str, index: int) -> str:
        existing = {c.name for c in self.client.containers.list(all=True)}
        n = index + 1
        while f"{base}-{n}" in existing:
            n += 1
        return f"{base}-{n}"

    def _start_kubelet(self, node: DockerNode, cp, sandbox_image: str, extra: tuple[str, ...]) -> None:
        node.container.reload()
        ip = node.container.attrs["NetworkSettings"]["Networks"][self.network()[0]]["IPAddress"]
        flags = [
            "--kubeconfig=/etc/kubernetes/kubelet.kubeconfig", f"--hostname-override={node.name}",
            f"--node-ip={ip}", "--container-runtime=docker", "--cgroup-driver=systemd",
            f"--pod-infra-container-image={sandbox_image}", "--fail-swap-on=false",
            "--image-gc-high-threshold=100", "--image-gc-low-threshold=99",
            "--eviction-hard=memory.available<100Mi", "--v=1", *extra,
        ]
        node.put_file("/etc/kubernetes/kubelet.kubeconfig", cp.kubeconfig_for("kubelet"), 0o600)
        node.put_file("/etc/systemd/system/kubelet.service",
                      KUBELET_UNIT.format(exec_start=" ".join([docker_nodes.KUBELET_IN_NODE, *flags])))
        node.run("systemctl daemon-reload && systemctl enable kubelet.service && systemctl restart kubelet.service",
                 timeout=60)

    def restart_kubelet(self, node: DockerNode, kubelet_flags: tuple[str, ...] = ()) -> None:
        """Rewrite the node's kubelet unit with these extra flags and restart it
        (the node keeps its containers; the API object stays)."""
        self._start_kubelet(node, self.control_plane(), self.sandbox_image or images.busybox_image(self.client, self.say),
                            kubelet_flags)

    def node(self, name: str) -> DockerNode:
        return docker_nodes.attach(self.client, name)

    def remove_node(self, node: DockerNode) -> None:
        try:
            node.container.remove(force=True)
        except docker.errors.NotFound:
            pass
        self.state.forget("container", node.name)
        node_dir = paths.state_dir() / "nodes" / node.name
        shutil.rmtree(node_dir, ignore_errors=True)
        self.state.forget("dir", str(node_dir))
        try:
            cp = controlplane.current(self.state)
            if cp:
                Kube(cp.kubeconfig).delete_node(node.name)
        except Exception:  # noqa: BLE001 - the API object is cosmetic once the node is gone
            pass

    # -- status and teardown -----------------------------------------------
    def status(self) -> dict:
        cp = controlplane.current(self.state)
        rows = []
        try:
            client = host.docker_client(timeout=10)
            nodes = docker_nodes.nodes(client)
        except LabError as exc:
            nodes, client = [], None
            rows.append({"error": str(exc)})
        kube = Kube(cp.kubeconfig) if cp and cp.healthy() else None
        for node in nodes:
            cond = kube.condition(node.name) if kube else None
            rows.append({"node": node.name, "target": node.target, "adapters": node.adapters,
                         "ready": cond.status if cond else "?", "message": cond.message if cond else ""})
        return {"control_plane": cp.endpoint if cp else None, "kubeconfig": str(cp.kubeconfig) if cp else None,
                "adapters_on_this_host": capabilities.sandbox_adapters(), "nodes": rows,
                "processes": [r.role for r in self.state.resources("process") if daemons.running(r)],
                "state_file": str(self.state.file)}

    def down(self, keep=lambda resource: False) -> list[str]:
        """Remove what the state records (except what `keep` selects), then
        sweep containers and networks labelled as this lab's."""
        self.claim()
        removed = []
        client = None
        try:
            client = host.docker_client(timeout=30)
        except LabError:
            pass
        for res in self.state.removal_order():
            if keep(res):
                continue
            if res.kind == "container" and client:
                try:
                    client.containers.get(res.ref).remove(force=True)
                    removed.append(f"container {res.ref}")
                except docker.errors.NotFound:
                    pass
            elif res.kind == "process":
                if daemons.running(res):
                    if res.role == "dockerd" and client:
                        self._sweep(client, removed, keep)
                    daemons.stop(res)
                    removed.append(f"process {res.role} ({res.ref})")
                    if res.role == "dockerd":
                        client = None   # the engine is gone; nothing more to ask it
            elif res.kind == "network" and client:
                try:
                    client.networks.get(res.ref).remove()
                    removed.append(f"network {res.ref}")
                except docker.errors.NotFound:
                    pass
            elif res.kind == "dir":
                path = Path(res.ref)
                if path.exists() and paths.state_dir() in path.parents:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(f"dir {path}")
            if res.kind in ("dir", "process") or client:
                self.state.forget(res.kind, res.ref)
        if client:
            try:
                self._sweep(client, removed, keep)
            except LabError:
                pass
        return removed

    def _sweep(self, client, removed: list[str], keep) -> None:
        """Containers and networks labelled as ours that the state missed."""
        label = f"nodelab.owner={owner_label()}"
        for c in client.containers.list(all=True, filters={"label": label}):
            if not keep(Resource("container", c.name)):
                c.remove(force=True)
                removed.append(f"container {c.name} (by label)")
        for n in client.networks.list(filters={"label": label}):
            if not keep(Resource("network", n.name)):
                n.remove()
                removed.append(f"network {n.name} (by label)")


def report_environment(lab: Lab, node: DockerNode) -> dict:
    """Versions read from the node and the lab, for reports."""
    pkgs = node.package_versions(["systemd", "docker.io", "containerd", "runc", "gdb", "dbus"])
    kubelet = node.run(f"{docker_nodes.KUBELET_IN_NODE} --version", check=False).stdout.strip()
    os_release = node.run("sed -n 's/^PRETTY_NAME=//p' /etc/os-release", check=False).stdout.strip().strip('"')
    return {"node": node.name, "target": node.target, "os": os_release, "packages": pkgs, "kubelet": kubelet,
            "kube_binaries": {"version": lab.bins.version, "origin": lab.bins.origin},
            "kernel": node.run("uname -r", check=False).stdout.strip(), "adapters": node.adapters,
            "backend": node.backend}


def dump(obj) -> str:
    return json.dumps(obj, indent=2, default=str)
