"""Watching a node's Ready condition: through a scenario's detection, and for the whole run."""

import threading
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


class ReadySampler:
    """Samples the node's Ready condition every few seconds in the background for
    the whole run, for the report's timeline: (seconds since the run's start, status)."""

    def __init__(self, kube, node_name: str, t0: float, every: float = 5):
        self.kube, self.node_name, self.t0, self.every = kube, node_name, t0, every
        self.points: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="ready-sampler")

    def start(self) -> "ReadySampler":
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                status = self.kube.condition(self.node_name).status
            except Exception:  # noqa: BLE001 - an API hiccup is a gap in the line, not a failed run
                status = None
            if status is not None:
                self.points.append((round(time.monotonic() - self.t0, 1), status))
            self._stop.wait(self.every)

    def stop(self) -> list[tuple[float, str]]:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.points
