"""Observations and phase timings: what a verdict is derived from."""

import time
from dataclasses import asdict, dataclass, field

# What an observation counts as when the verdict is derived.
INJECTION = "injection"        # the fault was put in place (seen, not assumed)
SYMPTOM = "symptom"            # the documented failure appeared
FIX = "fix-fingerprint"        # the fixed code path was seen working
RECOVERY = "recovery"          # the documented recovery restored the steady state
STEADY = "steady-state"        # the steady state held (before injection, after recovery)
EVIDENCE = "evidence"          # kept for the reader, not part of the verdict


@dataclass
class Observation:
    name: str
    kind: str
    seen: bool
    summary: str
    t: float                    # seconds since the scenario started
    at: float | None            # seconds since the injection; None before it
    raw: str = ""
    deadline: float | None = None


@dataclass
class Timeline:
    t0: float = field(default_factory=time.monotonic)
    injected_at: float | None = None
    observations: list[Observation] = field(default_factory=list)
    phases: dict[str, dict] = field(default_factory=dict)

    def since_injection(self) -> float | None:
        return None if self.injected_at is None else round(time.monotonic() - self.injected_at, 1)

    def observe(self, name: str, kind: str, seen: bool, summary: str, raw: str = "",
                deadline: float | None = None) -> Observation:
        obs = Observation(name, kind, seen, summary, round(time.monotonic() - self.t0, 1),
                          self.since_injection(), raw[-20000:], deadline)
        self.observations.append(obs)
        return obs

    def seen(self, kind: str) -> list[Observation]:
        return [o for o in self.observations if o.kind == kind and o.seen]

    def missed(self, kind: str) -> list[Observation]:
        return [o for o in self.observations if o.kind == kind and not o.seen]

    def as_dict(self) -> dict:
        # Time from the injection to each observation that counts, first sighting only.
        timings: dict[str, float] = {}
        for o in self.observations:
            if o.seen and o.at is not None and o.kind in (SYMPTOM, FIX, RECOVERY, INJECTION):
                timings.setdefault(f"injection_to_{o.name}_s", o.at)
        return {"phases": self.phases, "timings": timings,
                "observations": [asdict(o) for o in self.observations]}
