"""The lab as a whole: a backend's nodes, the Kubernetes binaries, the control plane.

`Lab.up()` brings nodes to Ready against the lab's API server, the same way
for every backend (kubelet's unit and flags); `Lab.down()` removes exactly
what the state file records (the backend sweeps what carries this lab's
label too), also after an earlier run crashed.
"""

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab import backends, host, paths
from lab.backends.base import Backend
from lab.backends.node import Node
from lab.recipes import kubebins, targets
from lab.cluster import controlplane
from lab.cluster.kube import Kube
from lab.errors import LabError
from lab.owned import daemons
from lab.owned.lablock import LabLock
from lab.owned.state import LabState

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
    def __init__(self, say=print, kube_binaries: str | None = None, backend: str = "docker"):
        self.say = say
        self.state = LabState()
        self.lock = LabLock(self.state.root, say)
        self.backend: Backend = backends.get(backend, self.state, say)
        self._kube_binaries_dir = kube_binaries
        self._bins = None
        self._ground_ready = False
        self.sandbox_image: str | None = None   # also the workload image (busybox)
        self._boot_kubelet_flags: dict[str, tuple[str, ...]] = {}   # node name -> the flags it was started with

    # -- ground -------------------------------------------------------------
    def claim(self) -> None:
        """Hold the lab for this process (lab.owned.lablock): whatever changes it
        does this first, and waits while another run holds it."""
        self.lock.acquire()

    def release(self) -> None:
        self.lock.release()

    def ground(self) -> Backend:
        """The backend, ready to use: the first call claims the lab and installs
        missing host packages (what `nodelab setup` does)."""
        if not self._ground_ready:
            self.claim()
            host.install_packages(self.say, self.backend.host_commands)
            self._ground_ready = True
        return self.backend

    @property
    def bins(self) -> kubebins.KubeBinaries:
        if self._bins is None:
            self._bins = kubebins.resolve(self._kube_binaries_dir, self.say)
        return self._bins

    def setup(self) -> list[str]:
        done = [f"installed {p}" for p in host.install_packages(self.say, self.backend.host_commands)]
        done.append(self.ground().prepare())
        done.append(f"kubernetes binaries {self.bins.version} ({self.bins.origin}) in {self.bins.directory}")
        return done

    def host_address(self) -> str:
        """The lab host's address as nodes see it (control plane, fixtures)."""
        return self.ground().host_address()

    def control_plane(self) -> controlplane.ControlPlane:
        return controlplane.ensure(self.state, self.host_address(), self.bins, self.say)

    def kube(self, namespace: str = "default") -> Kube:
        return Kube(self.control_plane().kubeconfig, namespace)

    # -- nodes --------------------------------------------------------------
    def up(self, target: "str | targets.Target", count: int = 1, kubelet_flags: tuple[str, ...] = (),
           prefix: str | None = None, kernel_args: tuple[str, ...] = ()) -> list[Node]:
        target = targets.runnable(target) if isinstance(target, str) else target
        backend = self.ground()
        image = backend.image(target)
        self.sandbox_image = sandbox = backend.sandbox_image()
        cp = self.control_plane()
        kube = Kube(cp.kubeconfig)
        started = []
        for i in range(count):
            name = backend.free_name(prefix or f"nodelab-{target.name}", i)
            t0 = time.monotonic()
            self.say(f"booting node {name} ({target.name}, {backend.name} backend)")
            node = backend.start_node(name, target, image, self.bins.directory, kernel_args)
            try:
                # The sandbox image loads while kubelet starts (a node gets Ready without
                # it; a VM under TCG takes ~10 s for each): both are done before Ready counts.
                pool = ThreadPoolExecutor(1)
                try:
                    loading = pool.submit(backend.load_image, node, sandbox)
                    self._boot_kubelet_flags[name] = tuple(kubelet_flags)
                    self._start_kubelet(node, cp, sandbox, kubelet_flags)
                    loading.result()
                finally:   # a failure or Ctrl-C does not wait for the load: removing the node ends it
                    pool.shutdown(wait=False, cancel_futures=True)
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

    def _start_kubelet(self, node: Node, cp, sandbox_image: str, extra: tuple[str, ...]) -> None:
        flags = [
            "--kubeconfig=/etc/kubernetes/kubelet.kubeconfig", f"--hostname-override={node.name}",
            f"--node-ip={self.backend.node_address(node)}", "--container-runtime=docker", "--cgroup-driver=systemd",
            f"--pod-infra-container-image={sandbox_image}", "--fail-swap-on=false",
            "--image-gc-high-threshold=100", "--image-gc-low-threshold=99",
            "--eviction-hard=memory.available<100Mi", "--v=1", *extra,
        ]
        node.put_file("/etc/kubernetes/kubelet.kubeconfig", cp.kubeconfig_for("kubelet"), 0o600)
        node.put_file("/etc/systemd/system/kubelet.service",
                      KUBELET_UNIT.format(exec_start=" ".join([self.backend.kubelet_in_node, *flags])))
        node.run("systemctl daemon-reload && systemctl enable kubelet.service && systemctl restart kubelet.service",
                 timeout=60)

    def restart_kubelet(self, node: Node, kubelet_flags: tuple[str, ...] = ()) -> None:
        """Rewrite the node's kubelet unit with the flags it was started with
        plus these (a flag given again takes the later value; map flags such
        as --eviction-hard take it key by key) and restart it
        (the node keeps its containers; the API object stays). A restart that
        dropped the boot flags lost memstall's short pressure-transition
        period: MemoryPressure then stayed True for kubelet's default 5 min."""
        self._start_kubelet(node, self.control_plane(), self.sandbox_image or self.ground().sandbox_image(),
                            (*self._boot_kubelet_flags.get(node.name, ()), *kubelet_flags))

    def node(self, name: str) -> Node:
        return self.ground().attach(name)

    def remove_node(self, node: Node) -> None:
        self.backend.remove_node(node)
        try:
            cp = controlplane.current(self.state)
            if cp:
                Kube(cp.kubeconfig).delete_node(node.name)
        except Exception:  # noqa: BLE001 - the API object is cosmetic once the node is gone
            pass

    # -- status and teardown -----------------------------------------------
    def status(self) -> dict:
        cp = controlplane.current(self.state)
        rows, nodes = [], []
        for backend in backends.every(self.state, self.say):   # a lab may hold containers and VMs
            try:
                nodes += backend.nodes()
            except LabError as exc:
                rows.append({"backend": backend.name, "error": str(exc)})
        kube = Kube(cp.kubeconfig) if cp and cp.healthy() else None
        for node in nodes:
            cond = kube.condition(node.name) if kube else None
            rows.append({"node": node.name, "backend": node.backend, "target": node.target, "adapters": node.adapters,
                         **({"vm": node.details} if node.details else {}),
                         "ready": cond.status if cond else "?", "message": cond.message if cond else ""})
        return {"backend": self.backend.name, "control_plane": cp.endpoint if cp else None,
                "kubeconfig": str(cp.kubeconfig) if cp else None, "nodes": rows,
                "checks": {c.name: c.detail for c in self.backend.doctor() if c.name != "docker engine"},
                "processes": [r.role for r in self.state.resources("process") if daemons.running(r)],
                "state_file": str(self.state.file)}

    def still_up(self) -> list[str]:
        """What the lab keeps running between runs (the control plane, an engine it started)."""
        return [f"{r.role} ({r.ref})" for r in self.state.resources("process") if daemons.running(r)]

    def down(self, keep=lambda resource: False) -> list[str]:
        """Remove what the state records (except what `keep` selects): first
        the backend's nodes and networks, while its engine still answers, then
        the processes (control plane, fixtures, an engine the lab started),
        then the directories."""
        self.claim()
        removed = [r for backend in backends.every(self.state, self.say) for r in backend.reset(keep)]
        for res in self.state.removal_order():
            if keep(res):
                continue
            if res.kind == "process":
                if daemons.running(res):
                    daemons.stop(res)
                    removed.append(f"process {res.role} ({res.ref})")
            elif res.kind == "dir":
                path = Path(res.ref)
                if path.exists() and paths.state_dir() in path.parents:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(f"dir {path}")
            else:
                continue   # the backend's: an engine that did not answer holds nothing of ours
            self.state.forget(res.kind, res.ref)
        return removed


def report_environment(lab: Lab, node: Node) -> dict:
    """Versions read from the node and the lab, for reports."""
    pkgs = node.package_versions(["systemd", "docker.io", "containerd", "runc", "gdb", "dbus"])
    kubelet = node.run(f"{lab.backend.kubelet_in_node} --version", check=False).stdout.strip()
    os_release = node.run("sed -n 's/^PRETTY_NAME=//p' /etc/os-release", check=False).stdout.strip().strip('"')
    return {"node": node.name, "target": node.target, "os": os_release, "packages": pkgs, "kubelet": kubelet,
            "kube_binaries": {"version": lab.bins.version, "origin": lab.bins.origin},
            "kernel": node.run("uname -r", check=False).stdout.strip(), "adapters": node.adapters,
            "backend": node.backend, "node_details": node.details}


def dump(obj) -> str:
    return json.dumps(obj, indent=2, default=str)
