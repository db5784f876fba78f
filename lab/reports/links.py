"""Bug-record references ("systemd PR #11818", "Launchpad #1876600") as links."""

import re

REPOSITORIES = {
    "systemd": "systemd/systemd", "kubernetes": "kubernetes/kubernetes", "runc": "opencontainers/runc",
    "supercronic": "aptible/supercronic", "cadvisor": "google/cadvisor", "containerd": "containerd/containerd",
    "node-problem-detector": "kubernetes/node-problem-detector", "moby": "moby/moby",
}
GITHUB = re.compile(r"\b(" + "|".join(map(re.escape, REPOSITORIES)) + r")\s+(?:issue\s+|PR\s+)?#(\d+)", re.I)
EXTRA = re.compile(r"(?:(PR|issues?)\s+)?#(\d+)")
LAUNCHPAD = re.compile(r"\b(?:Launchpad|LP)\s*#(\d+)")
BUGZILLA = re.compile(r"\bBZ#(\d+)")
COMMIT = re.compile(r"\bcommit ([0-9a-f]{8,40})\b")


def links(reference: str) -> list[tuple[str, str]]:
    """(text, url) for each upstream item a reference names; [] when it names none."""
    found = []
    m = GITHUB.search(reference)
    if m:
        repo = REPOSITORIES[m.group(1).lower()]
        # "systemd issue #11809", "runc PR #1084 (...) / PR #2117": the same repository throughout.
        for kind, number in EXTRA.findall(reference[m.start():]):
            path = "pull" if kind.upper() == "PR" else "issues"
            found.append((f"{m.group(1)} #{number}", f"https://github.com/{repo}/{path}/{number}"))
        for sha in COMMIT.findall(reference):
            found.append((f"{m.group(1)} {sha[:8]}", f"https://github.com/{repo}/commit/{sha}"))
    found += [(f"LP #{n}", f"https://bugs.launchpad.net/bugs/{n}") for n in LAUNCHPAD.findall(reference)]
    found += [(f"BZ#{n}", f"https://bugzilla.redhat.com/show_bug.cgi?id={n}") for n in BUGZILLA.findall(reference)]
    return found
