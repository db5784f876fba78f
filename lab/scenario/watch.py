"""Watching a node's Ready condition through a scenario's detection."""

import time

from lab.scenario.context import Context


class ReadyWatch:
    """The node's Ready condition, polled; each change noted with its injection-relative time."""

    def __init__(self, ctx: Context):
        self.ctx, self.last, self.transitions = ctx, "True", []

    def poll(self):
        cond = self.ctx.kube.condition(self.ctx.node.name)
        if cond.status != self.last:
            self.transitions.append(f"+{self.ctx.timeline.since_injection():.0f}s Ready={cond.status}: {cond.message}")
            self.last = cond.status
        return cond

    def follow(self, seconds: float, every: float = 3) -> None:
        """Keep noting changes for `seconds` (e.g. a node flapping Ready/NotReady)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll()
            time.sleep(every)
