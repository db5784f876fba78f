"""Package archives the lab reads, through the ordinary clients.

Mirrors are not written into the lab: each is debootstrap's own default for
the suite (or NODELAB_<DISTRO>_MIRROR). Debian packages the host does not need
installed (Go 1.15, the kubernetes sources) are fetched with a lab-owned apt
configuration under the cache dir, leaving the host's apt setup untouched.
"""

import os
import shutil
import subprocess
from pathlib import Path

from lab import paths, shell
from lab.errors import LabError

DEBOOTSTRAP = "/usr/sbin/debootstrap"
DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def default_mirror(suite: str, distro: str, arch: str = "amd64") -> str:
    override = os.environ.get(f"NODELAB_{distro.upper()}_MIRROR")
    if override:
        return override.rstrip("/")
    script = DEBOOTSTRAP_SCRIPTS / suite
    if not script.exists():
        raise LabError(f"debootstrap knows no suite {suite!r} ({script} missing); run `nodelab setup`")
    # Evaluate the script's own choice with its directives stubbed out.
    stubs = "; ".join(f"{f}() {{ {'echo $1' if f == 'default_mirror' else ':'}; }}"
                      for f in ("default_mirror", "mirror_style", "download_style", "finddebs_style",
                                "variants", "keyring", "force_md5", "include", "exclude"))
    proc = subprocess.run(["bash", "-c", f"{stubs}; . {script}"], capture_output=True, text=True,
                          env={"ARCH": arch, "SUITE": suite, "PATH": os.environ.get("PATH", "")})
    lines = proc.stdout.split()
    if lines:
        return lines[0]
    # Debian suites take debootstrap's built-in default.
    for line in Path(DEBOOTSTRAP).read_text().splitlines():
        if line.startswith("DEF_MIRROR="):
            return line.split("=", 1)[1].strip('"')
    raise LabError(f"could not read debootstrap's default mirror for {suite}")


class DebianApt:
    """apt-get with sources, lists and cache of the lab's own."""

    def __init__(self, root: Path, lines: list[str]):
        self.root = root
        self.lines = lines

    def _opts(self) -> list[str]:
        r = self.root
        return ["-o", f"Dir::Etc::SourceList={r / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/nonexistent",
                "-o", f"Dir::State::Lists={r / 'lists'}", "-o", f"Dir::Cache={r / 'cache'}",
                "-o", "APT::Architecture=amd64", "-o", "APT::Sandbox::User=root", "-q"]

    def update(self) -> None:
        for sub in ("lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "sources.list").write_text("\n".join(self.lines) + "\n")
        shell.run(["apt-get", *self._opts(), "update"], timeout=600)

    def download(self, packages: list[str], dest: Path) -> list[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        shell.run(["apt-get", *self._opts(), "download", *packages], timeout=1200, cwd=dest)
        return sorted(dest.glob("*.deb"))

    def source(self, package: str, dest: Path) -> list[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        shell.run(["apt-get", *self._opts(), "source", "--download-only", package], timeout=1200, cwd=dest)
        return sorted(p for p in dest.iterdir() if p.is_file())


def debian_apt(root: Path, *, binaries: tuple[str, ...] = (), sources: tuple[str, ...] = ()) -> DebianApt:
    lines = [f"deb [signed-by={DEBIAN_KEYRING}] {default_mirror(s, 'debian')} {s} main" for s in binaries]
    lines += [f"deb-src [signed-by={DEBIAN_KEYRING}] {default_mirror(s, 'debian')} {s} main" for s in sources]
    return DebianApt(root, lines)


def package_file(package: str, suite: str, say=print) -> Path:
    """A Debian suite's binary package (.deb), downloaded into the cache once and
    never installed on the host: the lab unpacks it for its own use or installs
    it on a node."""
    root = paths.cache_dir() / "debs" / suite / package
    found = sorted(root.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    say(f"fetching {package} from Debian {suite} (into {root}, not installed here)")
    work = root.with_name(f"{package}.partial")
    shutil.rmtree(work, ignore_errors=True)
    apt = debian_apt(work / "apt", binaries=(suite,))
    apt.update()
    debs = [d for d in apt.download([package], work / "debs") if d.name.startswith(f"{package}_")]
    if not debs:
        raise LabError(f"apt downloaded no {package} package from Debian {suite}")
    root.mkdir(parents=True, exist_ok=True)
    kept = root / debs[0].name
    shutil.move(str(debs[0]), kept)
    shutil.rmtree(work, ignore_errors=True)
    return kept
