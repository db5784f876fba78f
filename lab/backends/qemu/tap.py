"""A VM's place on the lab's network: a tap device on the lab's docker bridge.

VM nodes join the same bridge as the container nodes (the docker backend's
network), so they reach the control plane and the fixtures on the same
gateway address, and the API server reaches their kubelets. Their addresses
come from the top of the network's subnet, downwards: docker's IPAM hands
out addresses from the bottom, and every VM's address is in the lab state,
so no two VMs share one. Each tap carries the lab's owner label as its
alias, so `down` finds taps that a crash left out of the state file.
"""

import hashlib
import ipaddress
import json
import shutil
import subprocess

from lab.errors import LabError
from lab.owned.state import LabState, Resource, owner_label

ALIAS_PREFIX = "nodelab:"


def bridge_of(network) -> tuple[str, ipaddress.IPv4Network, str]:
    """(bridge device, subnet, gateway) of a docker bridge network."""
    network.reload()
    device = network.attrs.get("Options", {}).get("com.docker.network.bridge.name") or f"br-{network.id[:12]}"
    config = next(c for c in network.attrs["IPAM"]["Config"] if c.get("Subnet"))
    return device, ipaddress.ip_network(config["Subnet"]), config["Gateway"]


def free_address(network, state: LabState) -> str:
    """The highest address of the network that no container, VM or gateway has: ADDR/PREFIX."""
    _, subnet, gateway = bridge_of(network)
    taken = {gateway}
    taken |= {c["IPv4Address"].split("/")[0] for c in (network.attrs.get("Containers") or {}).values()}
    taken |= {r.detail.get("address", "").split("/")[0] for r in state.resources("vm")}
    for host in reversed(list(subnet.hosts())):
        if str(host) not in taken:
            return f"{host}/{subnet.prefixlen}"
    raise LabError(f"no free address left on {subnet}")


def tap_name(node: str) -> str:
    """Interface names have at most 15 characters: nlt + 10 hex digits of (owner, node)."""
    return "nlt" + hashlib.sha256(f"{owner_label()}/{node}".encode()).hexdigest()[:10]


def create(state: LabState, node: str, bridge: str) -> str:
    tap = tap_name(node)
    state.record(Resource("link", tap, "tap", {"node": node, "bridge": bridge}))
    delete(tap)   # a leftover of the same name (a crash between record and forget)
    for argv in (["ip", "tuntap", "add", "dev", tap, "mode", "tap"],
                 ["ip", "link", "set", "dev", tap, "alias", ALIAS_PREFIX + owner_label()],
                 ["ip", "link", "set", "dev", tap, "master", bridge],
                 ["ip", "link", "set", "dev", tap, "up"]):
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise LabError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return tap


def delete(tap: str) -> bool:
    if shutil.which("ip") is None:
        return False
    return subprocess.run(["ip", "link", "delete", "dev", tap], capture_output=True).returncode == 0


def labelled() -> list[str]:
    """This lab's taps, by their alias (whatever the state file says)."""
    if shutil.which("ip") is None:
        return []   # no iproute2: nobody made a tap on this host
    out = subprocess.run(["ip", "-j", "-d", "link", "show", "type", "tun"], capture_output=True, text=True).stdout
    try:
        links = json.loads(out or "[]")
    except ValueError:
        return []
    return [link["ifname"] for link in links if link.get("ifalias") == ALIAS_PREFIX + owner_label()]
