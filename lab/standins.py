"""Stand-ins for programs no reachable package source ships, built on the host.

A stand-in behaves as the original does in the way a scenario depends on
(its source says how, and the scenario's report names it); the scenario
accepts the real program when the user supplies one. Built statically with
the host's gcc, cached under the cache dir keyed by the source and compiler.
"""

import hashlib
import shutil
from pathlib import Path

from lab import paths, shell
from lab.errors import PrerequisiteMissing

STANDINS = {
    "supercronic": "nodelab-cron-standin.c",
}


def build(name: str) -> Path:
    """Path of the built stand-in for `name` (compiled once per source/compiler)."""
    source = paths.asset(STANDINS[name])
    gcc = shutil.which("gcc")
    if gcc is None:
        raise PrerequisiteMissing(f"building the {name} stand-in needs gcc on the host (apt install gcc libc6-dev)")
    compiler = shell.run([gcc, "--version"], timeout=30).stdout.splitlines()[0]
    key = hashlib.sha256(source.read_bytes() + compiler.encode()).hexdigest()[:16]
    out = paths.cache_dir() / "standins" / f"{name}-{key}"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    shell.run([gcc, "-static", "-O2", "-Wall", "-o", str(partial), str(source)], timeout=120)
    partial.rename(out)
    return out
