"""The docker engine on the lab host: the one that answers, or a dockerd the lab starts and owns."""

import shutil
import time

import docker
import docker.errors

from lab import paths
from lab.errors import LabError, PrerequisiteMissing
from lab.owned import daemons
from lab.owned.state import LabState


def docker_client(timeout: int = 120) -> docker.DockerClient:
    """A client to an engine that answers, or one clear error."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        raise LabError(f"the docker engine does not answer ({str(exc).splitlines()[0][:200]}); "
                       "run `nodelab setup`") from None


def ensure_docker_engine(state: LabState, say=print) -> docker.DockerClient:
    """Use the engine that answers; if none does, start dockerd and own it."""
    try:
        return docker_client()
    except LabError:
        pass
    if daemons.live(state, "dockerd"):
        raise LabError("the dockerd the lab started is running but does not answer; "
                       f"see {paths.state_dir() / 'dockerd.log'} or run `nodelab down`")
    if shutil.which("dockerd") is None:
        raise PrerequisiteMissing("no docker engine answers and dockerd is not installed; run `nodelab setup`")
    say("starting dockerd (no engine answered)")
    log = paths.state_dir() / "dockerd.log"
    daemons.start(state, "dockerd", ["dockerd"], log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            return docker_client(timeout=10)
        except LabError:
            time.sleep(1)
    raise LabError(f"dockerd did not answer within 60 s; see {log}")
