"""What a scenario's phases get: the node, the cluster, the timeline, the settings."""

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lab import polling
from lab.errors import LabError
from lab.cluster.kube import Kube
from lab.backends.node import Node
from lab.progress import say
from lab.scenario.evidence import RECOVERY, Timeline

if TYPE_CHECKING:
    from lab.cluster.lab import Lab


class RepairMissing(Exception):
    """A workshop check found a sign of the recovery missing (Context.patience)."""


@dataclass
class Context:
    lab: "Lab"
    node: Node
    kube: Kube
    timeline: Timeline
    params: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)   # versions read from the node
    defaults: dict = field(default_factory=dict)      # the scenario's numeric settings (name -> Setting)
    scratch: dict = field(default_factory=dict)       # what one phase leaves for the next
    timings: dict = field(default_factory=dict)       # measured figures for the report
    series: dict = field(default_factory=dict)        # name -> {"unit", "points": [(s since start, value)]}
    # Set by `nodelab check` (lab.scenario.workshop), which asks whether a
    # participant's repair holds now, not within a run's deadlines: every wait
    # is capped at it, and the first recovery sign found missing ends the
    # check (RepairMissing). None in a run.
    patience: float | None = None

    def setting(self, key: str) -> int:
        """A numeric setting: the user's --param, else the variant's, else the scenario's default."""
        if key not in self.params and key not in self.defaults:
            raise LabError(f"no setting {key!r}")
        return int(self.params[key]) if key in self.params else self.defaults[key].default

    def observe(self, *args, **kwargs):
        obs = self.timeline.observe(*args, **kwargs)
        mark = "[green]seen[/green]" if obs.seen else "[yellow]not seen[/yellow]"
        when = f"injection{obs.at:+.0f}s" if obs.at is not None else f"start+{obs.t:.0f}s"
        say(f"  {obs.kind}: {obs.name} {mark} at {when}: {obs.summary}")
        if self.patience is not None and obs.kind == RECOVERY and not obs.seen:
            raise RepairMissing(obs.name)
        return obs

    def record_series(self, name: str, unit: str, points, style: str = "line") -> None:
        """A series for the report's timeline: points (seconds since the injection, value)."""
        offset = (self.timeline.injected_at or self.timeline.t0) - self.timeline.t0
        self.series[name] = {"unit": unit, "style": style,
                             "points": [(round(t + offset, 1), v) for t, v in points if t is not None]}

    def until(self, condition, seconds: float, every: float = 1) -> bool:
        """Poll `condition` until it holds or `seconds` pass (lab.polling)."""
        if self.patience is not None:
            seconds = min(seconds, self.patience)
        return polling.until(condition, seconds, every)

    @contextlib.contextmanager
    def timed(self, name: str):
        """Time the block into the report's timings as `name` (seconds)."""
        start = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - start, 1)
