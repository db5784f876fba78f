"""Bug records: what a bug is, where it is documented, which versions fix it.

The expected verdict of a run is derived from the record and the component
versions read from the node, never from the target's name.
"""

from dataclasses import dataclass, field

from debian.debian_support import Version

REPRODUCES, IMMUNE, INCONCLUSIVE = "reproduces", "immune", "inconclusive"
INTERRUPTED = "interrupted"   # Ctrl-C or SIGTERM: torn down, no verdict on the bug
BROKEN = "broken"             # a workshop's `nodelab break`: symptom seen, node left broken, no verdict yet


def upstream(version: str) -> str:
    """Upstream part of a Debian version: '229-4ubuntu4' -> '229'."""
    v = version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


@dataclass(frozen=True)
class Fix:
    """A version in which the bug is gone.

    Without `line` it is an upstream release: every version whose upstream
    part is at least `version` is fixed. With `line` it is a distribution
    backport: only versions of that upstream line count, compared whole.
    """
    version: str
    note: str
    line: str | None = None

    def covers(self, installed: str) -> bool:
        if self.line is None:
            return Version(upstream(installed)) >= Version(self.version)
        return upstream(installed) == self.line and Version(installed) >= Version(self.version)


@dataclass(frozen=True)
class BugRecord:
    id: str
    title: str
    component: str                     # package whose version decides, as the node names it
    mechanism: str
    references: tuple[str, ...]
    affected: str                      # prose: which versions are affected
    fixes: tuple[Fix, ...] = field(default=())

    def expected(self, packages: dict[str, str | None]) -> tuple[str, str]:
        """(expected verdict, why) from versions read on the node."""
        installed = packages.get(self.component)
        if not installed:
            return INCONCLUSIVE, f"{self.component} is not installed on the node"
        for fix in self.fixes:
            if fix.covers(installed):
                return IMMUNE, f"{self.component} {installed} includes the fix: {fix.note}"
        return REPRODUCES, f"{self.component} {installed} predates every known fix ({self.affected})"
