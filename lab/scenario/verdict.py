"""The verdict of a run, derived from what was observed (a scenario never sets it)."""

from lab.scenario.evidence import FIX, INJECTION, RECOVERY, STEADY, SYMPTOM, Timeline
from lab.scenario.record import IMMUNE, INCONCLUSIVE, REPRODUCES


def derive_verdict(t: Timeline, key_symptoms: tuple[str, ...] = ()) -> tuple[str, str]:
    # A steady state that did not hold comes first: a run stops before the
    # injection when it fails after prepare.
    if t.missed(STEADY):
        return INCONCLUSIVE, "the steady state did not hold: " + "; ".join(o.summary for o in t.missed(STEADY))
    if not t.seen(INJECTION) or t.missed(INJECTION):
        return INCONCLUSIVE, "the injection did not take: " + ("; ".join(o.summary for o in t.missed(INJECTION))
                                                               or "it never ran")
    if t.seen(SYMPTOM):
        seen = {o.name for o in t.seen(SYMPTOM)}
        missing = [k for k in key_symptoms if k not in seen]
        if missing:
            return INCONCLUSIVE, f"incomplete chain: saw {', '.join(sorted(seen))}; never saw {', '.join(missing)}"
        if t.seen(RECOVERY) and not t.missed(RECOVERY):
            return REPRODUCES, "symptom seen: " + "; ".join(o.name for o in t.seen(SYMPTOM)) + \
                "; recovery restored the steady state"
        failed = "; ".join(f"{o.name}: {o.summary}" for o in t.missed(RECOVERY)) or "no recovery observed"
        return INCONCLUSIVE, "symptom seen but recovery failed: " + failed
    if t.seen(FIX) and not t.missed(FIX):
        return IMMUNE, "fix fingerprint seen: " + "; ".join(o.name for o in t.seen(FIX)) + \
            "; no symptom within the window"
    return INCONCLUSIVE, "neither the symptom nor the fix's fingerprint was observed"
