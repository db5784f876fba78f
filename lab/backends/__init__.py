"""Backends: the kinds of node the lab can run, behind one interface (lab.backends.base)."""

from lab.errors import LabError

BACKENDS = ("docker", "qemu", "vagrant")


def backend_class(name: str):
    """The class of the backend called `name` (its capabilities, which targets it can run)."""
    if name == "docker":
        from lab.backends.docker.backend import DockerBackend
        return DockerBackend
    if name == "qemu":
        from lab.backends.qemu.backend import QemuBackend
        return QemuBackend
    if name == "vagrant":
        from lab.backends.vagrant.backend import VagrantBackend
        return VagrantBackend
    raise LabError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")


def get(name: str, state, say=print):
    """The backend called `name`, for the lab recorded in `state`."""
    return backend_class(name)(state, say)


def every(state, say=print) -> list:
    """Every backend, VMs' first: what `down` resets (a lab may hold nodes of
    several; VMs sit on the docker backend's network, removed after them)."""
    return [get(name, state, say) for name in reversed(BACKENDS)]
