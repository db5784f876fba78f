"""Small C programs the lab ships as source, compiled statically on the host.

Static, so one binary runs on every target (Ubuntu 16.04's libc or Debian
12's); built with the host's gcc and cached under the cache dir, keyed by the
source and the compiler, so a changed source or compiler builds anew.
"""

import hashlib
import shutil
from pathlib import Path

from lab import paths, shell
from lab.errors import PrerequisiteMissing


def static_binary(source_asset: str, name: str) -> Path:
    """Path of `name` built from lab/assets/`source_asset` (compiled once per source/compiler)."""
    source = paths.asset(source_asset)
    gcc = shutil.which("gcc")
    if gcc is None:
        raise PrerequisiteMissing(f"building {name} needs gcc on the host (apt install gcc libc6-dev)")
    compiler = shell.run([gcc, "--version"], timeout=30).stdout.splitlines()[0]
    key = hashlib.sha256(source.read_bytes() + compiler.encode()).hexdigest()[:16]
    out = paths.cache_dir() / "cbuild" / f"{name}-{key}"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    shell.run([gcc, "-static", "-O2", "-Wall", "-o", str(partial), str(source)], timeout=120)
    partial.rename(out)
    return out
