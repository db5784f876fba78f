"""etcd + kube-apiserver + kube-controller-manager on the lab host.

Bound to the lab network's gateway address, which every node container
reaches and the host can use too. Clients authenticate with static tokens;
authorization is AlwaysAllow (a throw-away lab, never a cluster to keep).
"""

import base64
import json
import secrets
import shutil
import ssl
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lab import paths
from lab.cluster import pki
from lab.owned import daemons
from lab.errors import LabError
from lab.recipes.kubebins import KubeBinaries
from lab.owned.state import LabState, Resource

API_PORT = 6443
ROLES = ("etcd", "kube-apiserver", "kube-controller-manager")


@dataclass(frozen=True)
class ControlPlane:
    directory: Path
    endpoint: str

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "admin.kubeconfig"

    def _conf(self) -> dict:
        return json.loads((self.directory / "controlplane.json").read_text())

    def kubeconfig_for(self, user: str) -> str:
        """A kubeconfig (JSON is YAML) with the CA embedded; user: admin | kubelet."""
        ca = base64.b64encode((self.directory / "pki/ca.crt").read_bytes()).decode()
        return json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "nodelab",
            "clusters": [{"name": "nodelab", "cluster": {"server": self.endpoint, "certificate-authority-data": ca}}],
            "users": [{"name": user, "user": {"token": self._conf()["tokens"][user]}}],
            "contexts": [{"name": "nodelab", "context": {"cluster": "nodelab", "user": user}}],
        }, indent=2)

    def healthy(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.directory / "pki/ca.crt"))
        req = urllib.request.Request(f"{self.endpoint}/readyz",
                                     headers={"Authorization": f"Bearer {self._conf()['tokens']['admin']}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
                return resp.status == 200
        except OSError:
            return False


def current(state: LabState) -> ControlPlane | None:
    directory = paths.state_dir() / "controlplane"
    if not (directory / "controlplane.json").exists():
        return None
    if not all(daemons.live(state, role) for role in ROLES):
        return None
    return ControlPlane(directory, json.loads((directory / "controlplane.json").read_text())["endpoint"])


def ensure(state: LabState, address: str, bins: KubeBinaries, say=print) -> ControlPlane:
    found = current(state)
    if found and found.endpoint == f"https://{address}:{API_PORT}" and found.healthy():
        return found
    stop(state)
    say(f"starting etcd, kube-apiserver {bins.version}, kube-controller-manager on {address}")
    directory = paths.state_dir() / "controlplane"
    state.record(Resource("dir", str(directory), "controlplane"))
    directory.mkdir(parents=True, exist_ok=True)
    pki.write_pki(directory / "pki", [address, "127.0.0.1"])
    tokens = {"admin": secrets.token_hex(16), "kubelet": secrets.token_hex(16)}
    (directory / "tokens.csv").write_text(
        f'{tokens["admin"]},nodelab-admin,1,"system:masters"\n'
        f'{tokens["kubelet"]},kubelet,2,"system:nodes"\n')
    endpoint = f"https://{address}:{API_PORT}"
    (directory / "controlplane.json").write_text(json.dumps({"endpoint": endpoint, "tokens": tokens}))
    cp = ControlPlane(directory, endpoint)
    cp.kubeconfig.write_text(cp.kubeconfig_for("admin"))
    cp.kubeconfig.chmod(0o600)

    # A new CA and new tokens make the old store's nodes and pods meaningless,
    # and a run killed before its teardown left them there: start it empty.
    shutil.rmtree(directory / "etcd", ignore_errors=True)
    client_port, peer_port = daemons.free_port(), daemons.free_port()
    etcd_url = f"http://127.0.0.1:{client_port}"
    daemons.start(state, "etcd", [
        "etcd", "--name", "nodelab", "--data-dir", str(directory / "etcd"),
        "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
        "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-cluster", f"nodelab=http://127.0.0.1:{peer_port}"], directory / "etcd.log")
    p = directory / "pki"
    daemons.start(state, "kube-apiserver", [
        str(bins.path("kube-apiserver")), f"--etcd-servers={etcd_url}",
        f"--bind-address={address}", f"--advertise-address={address}", f"--secure-port={API_PORT}",
        f"--tls-cert-file={p / 'apiserver.crt'}", f"--tls-private-key-file={p / 'apiserver.key'}",
        f"--client-ca-file={p / 'ca.crt'}", f"--token-auth-file={directory / 'tokens.csv'}",
        "--authorization-mode=AlwaysAllow", "--allow-privileged=true",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={p / 'sa.pub'}", f"--service-account-signing-key-file={p / 'sa.key'}",
        "--api-audiences=https://kubernetes.default.svc", "--service-cluster-ip-range=10.96.0.0/16",
        "--disable-admission-plugins=ServiceAccount", f"--cert-dir={p}", "--profiling=false",
        "--event-ttl=2h",
        # Nodes are containers with no DNS name: reach kubelets (logs, exec,
        # configz, metrics through the node proxy) by their node IP.
        "--kubelet-preferred-address-types=InternalIP"], directory / "kube-apiserver.log")
    daemons.start(state, "kube-controller-manager", [
        str(bins.path("kube-controller-manager")), f"--kubeconfig={cp.kubeconfig}",
        "--controllers=*,-serviceaccount-token,-bootstrapsigner,-tokencleaner",
        "--leader-elect=false", "--port=0", "--secure-port=0", "--use-service-account-credentials=false",
        "--profiling=false"], directory / "kube-controller-manager.log")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if cp.healthy():
            return cp
        for role in ROLES:
            res = state.resources("process", role)
            if res and not daemons.running(res[-1]):
                raise LabError(f"{role} exited at start:\n{daemons.log_tail(res[-1])}")
        time.sleep(1)
    raise LabError(f"kube-apiserver did not become ready within 90 s; see {directory / 'kube-apiserver.log'}")


def stop(state: LabState) -> None:
    for role in reversed(ROLES):
        daemons.stop_role(state, role)
