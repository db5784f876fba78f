"""What the API server says: nodes, their conditions, pods."""

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families

from lab.errors import LabError


@dataclass
class Condition:
    status: str       # "True" | "False" | "Unknown" | "" (no such node/condition)
    reason: str
    message: str
    since: str


class Kube:
    """The API as one client sees it; pods, events and watches are in `namespace`."""

    def __init__(self, kubeconfig: Path, namespace: str = "default"):
        api_client = k8s_config.new_client_from_config(config_file=str(kubeconfig))
        self.core = k8s.CoreV1Api(api_client)
        self.namespace = namespace

    def create_namespace(self) -> None:
        self.core.create_namespace({"metadata": {"name": self.namespace}})

    def delete_namespace(self) -> None:
        """Ask for the namespace to go (the namespace controller empties it); no wait."""
        try:
            self.core.delete_namespace(self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def node(self, name: str):
        try:
            return self.core.read_node(name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def condition(self, node_name: str, kind: str = "Ready") -> Condition:
        node = self.node(node_name)
        for c in (node.status.conditions or []) if node and node.status else []:
            if c.type == kind:
                return Condition(c.status, c.reason or "", c.message or "", str(c.last_transition_time))
        return Condition("", "", "", "")

    def wait_ready(self, node_name: str, timeout: float = 180) -> Condition:
        deadline = time.monotonic() + timeout
        cond = Condition("", "", "", "")
        while time.monotonic() < deadline:
            cond = self.condition(node_name)
            if cond.status == "True":
                return cond
            time.sleep(1)
        raise LabError(f"node {node_name} not Ready after {timeout:.0f} s (Ready={cond.status or 'absent'}: "
                       f"{cond.message})")

    def create_pod(self, manifest: dict):
        return self.core.create_namespaced_pod(self.namespace, manifest)

    def pod(self, name: str):
        try:
            return self.core.read_namespaced_pod(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def delete_pod(self, name: str, grace: int = 0) -> None:
        try:
            self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=grace)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def events_for(self, name: str) -> list[str]:
        """The pod's events, oldest first, as "time reason: message" lines."""
        return [f"{e.last_timestamp or e.event_time} {e.reason}: {e.message}" for e in self.event_objects(name)]

    def event_objects(self, name: str) -> list:
        """The events of the pod of that name that exists now (not those of an
        earlier pod of the same name: events outlive pods), oldest first."""
        selector = f"involvedObject.name={name}"
        pod = self.pod(name)
        if pod is not None:
            selector += f",involvedObject.uid={pod.metadata.uid}"
        items = self.core.list_namespaced_event(self.namespace, field_selector=selector).items
        items.sort(key=lambda e: str(e.last_timestamp or e.event_time or ""))
        return items

    def pods(self, label_selector: str) -> list:
        return self.core.list_namespaced_pod(self.namespace, label_selector=label_selector).items

    def pods_on(self, node_name: str) -> list:
        return self.core.list_namespaced_pod(self.namespace, field_selector=f"spec.nodeName={node_name}").items

    def delete_pods(self, label_selector: str) -> None:
        self.core.delete_collection_namespaced_pod(self.namespace, label_selector=label_selector,
                                                 grace_period_seconds=0)

    # -- raw paths: the API server's and (through its node proxy) a kubelet's --
    def request(self, method: str, path: str, body: str | None = None) -> str:
        """A path the typed client has no method for, with the client's own
        connection and credentials (works across client generations: the
        token sits under 'BearerToken' from v37, 'authorization' before)."""
        api = self.core.api_client
        cfg = api.configuration
        headers = {"Authorization": cfg.api_key.get("BearerToken") or cfg.api_key.get("authorization") or ""}
        if body is not None:
            headers["Content-Type"] = "text/plain"
        try:
            response = api.rest_client.request(method, cfg.host + path, headers=headers, body=body)
        except ApiException as exc:
            raise LabError(f"{method} {path}: HTTP {exc.status}: {str(exc.body)[:200]}") from None
        if hasattr(response, "read"):   # v37 reads lazily
            response.read()
        data = response.data.decode() if isinstance(response.data, bytes) else response.data   # str before v37
        if not 200 <= response.status < 300:
            raise LabError(f"{method} {path}: HTTP {response.status}: {data[:200]!r}")
        return data

    def metrics(self, path: str = "/metrics") -> dict[str, float]:
        """Prometheus samples at `path` as {'name{label="v",...}': value}."""
        out = {}
        for family in text_string_to_metric_families(self.request("GET", path)):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}"] = s.value
        return out

    def kubelet_config(self, node_name: str) -> dict:
        """The kubelet's effective configuration (its /configz), defaults included."""
        return json.loads(self.request("GET", f"/api/v1/nodes/{node_name}/proxy/configz"))["kubeletconfig"]

    def kubelet_metrics(self, node_name: str) -> dict[str, float]:
        return self.metrics(f"/api/v1/nodes/{node_name}/proxy/metrics")

    def set_kubelet_verbosity(self, node_name: str, level: int) -> str:
        """klog's -v of a running kubelet (its /debug/flags/v handler)."""
        return self.request("PUT", f"/api/v1/nodes/{node_name}/proxy/debug/flags/v", str(level)).strip()

    def watch_running(self, label_selector: str) -> "RunningWatch":
        return RunningWatch(self, label_selector).start()

    def delete_node(self, name: str) -> None:
        try:
            self.core.delete_node(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


@dataclass
class RunningWatch:
    """When the API server first showed each selected pod Running (host clock,
    epoch seconds), from a watch: the moment a client of the API could see it.
    A watch that breaks is listed and followed again (each break is noted)."""
    kube: Kube
    label_selector: str
    running: dict[str, float] = field(default_factory=dict)
    breaks: list[str] = field(default_factory=list)

    def start(self) -> "RunningWatch":
        self._stopped = False
        self._watch = k8s_watch.Watch()
        self._thread = threading.Thread(target=self._follow, daemon=True, name=f"watch {self.label_selector}")
        self._thread.start()
        return self

    def _note(self, pods) -> None:
        now = time.time()
        for p in pods:
            if p.status and p.status.phase == "Running":
                self.running.setdefault(p.metadata.name, now)

    def _follow(self) -> None:
        while not self._stopped:
            try:
                listed = self.kube.core.list_namespaced_pod(self.kube.namespace, label_selector=self.label_selector)
                self._note(listed.items)
                for event in self._watch.stream(self.kube.core.list_namespaced_pod, self.kube.namespace,
                                                label_selector=self.label_selector,
                                                resource_version=listed.metadata.resource_version,
                                                timeout_seconds=600):
                    self._note([event["object"]])
            except Exception as exc:  # noqa: BLE001 - noted, then listed and watched again
                if not self._stopped:
                    self.breaks.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
                    time.sleep(0.5)

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()
