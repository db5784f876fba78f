"""What the API server says: nodes, their conditions, pods."""

import time
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException

from lab.errors import LabError


@dataclass
class Condition:
    status: str       # "True" | "False" | "Unknown" | "" (no such node/condition)
    reason: str
    message: str
    since: str


class Kube:
    def __init__(self, kubeconfig: Path):
        api_client = k8s_config.new_client_from_config(config_file=str(kubeconfig))
        self.core = k8s.CoreV1Api(api_client)

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

    def create_pod(self, manifest: dict, namespace: str = "default"):
        return self.core.create_namespaced_pod(namespace, manifest)

    def pod(self, name: str, namespace: str = "default"):
        try:
            return self.core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def delete_pod(self, name: str, namespace: str = "default", grace: int = 0) -> None:
        try:
            self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=grace)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def events_for(self, name: str, namespace: str = "default") -> list[str]:
        """The pod's events, oldest first, as "time reason: message" lines."""
        items = self.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
        items.sort(key=lambda e: str(e.last_timestamp or e.event_time or ""))
        return [f"{e.last_timestamp or e.event_time} {e.reason}: {e.message}" for e in items]

    def pods_on(self, node_name: str, namespace: str = "default") -> list:
        return self.core.list_namespaced_pod(namespace, field_selector=f"spec.nodeName={node_name}").items

    def delete_node(self, name: str) -> None:
        try:
            self.core.delete_node(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
