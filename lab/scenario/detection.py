"""The shipped detectors, watched through a scenario run and judged against it.

A detector passes a run when it fires during the symptom and clears after
the recovery (a run that reproduced), or never fires at all (an immune run),
and in both never fires before the injection. Unknown (a program that could
not run or timed out, as on a node out of PIDs) is reported, never counted as
firing or as clearing; an immune run needs at least one OK after the
injection. Runs that are neither reproduced nor immune are judged on the
steady state only (a firing before the injection, or a detector never
invoked, fails); variants the scenario says are no test of its detector
(`Scenario.detector_unjudged`) are not judged.
"""

from lab.nodetools import npd
from lab.scenario.evidence import SYMPTOM, Timeline
from lab.scenario.record import IMMUNE, REPRODUCES


def start(node, incident: str) -> tuple[npd.DetectorWatch | None, str]:
    """Install and start the incident's monitors on the node; (watch, error)."""
    try:
        monitors = npd.monitors_for(incident)
        if not monitors:
            return None, ""
        for monitor in monitors:
            npd.install(node, monitor)
    except Exception as exc:  # noqa: BLE001 - a detector that cannot be loaded or installed is reported, not a crash
        return None, f"{type(exc).__name__}: {exc}"
    return npd.DetectorWatch(node, monitors).start(), ""


def judge(invocations: list[npd.Invocation], timeline: Timeline, verdict: str, unjudged: str = "") -> dict:
    """One rule's record over a run: its transitions, delay and whether it
    passes; `unjudged` (why, when the scenario says its variant is not a test
    of the detector) leaves it not judged."""
    injected = timeline.injected_at

    def since(inv):
        return None if injected is None else round(inv.at - injected, 1)

    before = [i for i in invocations if injected is None or i.at < injected]
    after = [i for i in invocations if injected is not None and i.at >= injected]
    early = [i for i in before if i.status == npd.NONOK]
    fired = next((i for i in after if i.status == npd.NONOK), None)
    settled = [i for i in invocations if i.status != npd.UNKNOWN]
    cleared = bool(settled) and settled[-1].status == npd.OK
    out = {
        "invocations": len(invocations),
        "unknown": sum(1 for i in invocations if i.status == npd.UNKNOWN),
        "mean_runtime_s": round(sum(i.seconds for i in invocations) / len(invocations), 3) if invocations else None,
        # what one invocation costs, apart for each answer (a NonOK may include its own wait)
        "mean_runtime_s_by_status": {s: round(sum(i.seconds for i in invocations if i.status == s) /
                                              sum(1 for i in invocations if i.status == s), 3)
                                     for s in dict.fromkeys(i.status for i in invocations)},
        "transitions": [{"t": round(i.at - timeline.t0, 1), "since_injection": since(i), "status": i.status,
                         "message": i.message} for i in npd.transitions(invocations)],
        "fired_after_injection_s": since(fired) if fired else None,
    }
    if fired:
        out["before_symptoms_s"] = {o.name: round(o.at - out["fired_after_injection_s"], 1)
                                    for o in timeline.seen(SYMPTOM) if o.at is not None}
    if unjudged:
        passes, why = None, unjudged
    elif not invocations:
        passes, why = False, "never invoked"
    elif early:
        passes, why = False, f"fired in the steady state, before the injection: {early[0].message}"
    elif verdict == REPRODUCES:
        passes = fired is not None and cleared
        why = (f"fired {out['fired_after_injection_s']} s after the injection and cleared after the recovery"
               if passes else "did not fire after the injection" if fired is None
               else f"fired {out['fired_after_injection_s']} s after the injection but had not cleared by the end: "
                    f"{settled[-1].message}")
    elif verdict == IMMUNE:
        nonok = [i for i in invocations if i.status == npd.NONOK]
        answered = any(i.status == npd.OK for i in after)
        passes = not nonok and answered
        why = ("never fired on the immune run" if passes else f"fired on an immune run: {nonok[0].message}" if nonok
               else "never answered OK after the injection (only Unknown): it could not run")
    else:
        passes, why = None, f"the run's verdict is {verdict}"
    return {**out, "passes": passes, "why": why}


def report(watch: npd.DetectorWatch | None, error: str, timeline: Timeline, verdict: str,
           unjudged: str = "") -> list[dict]:
    """The report's `detectors` entries (one per rule)."""
    if error:
        return [{"error": error, "passes": False, "why": f"could not be installed: {error}"}]
    if watch is None:
        return []
    invocations = watch.stop()
    entries = []
    for monitor in watch.monitors:
        for rule in monitor.rules:
            entries.append({"config": f"detectors/{monitor.name}/{monitor.file}", "source": monitor.source,
                            "condition": rule.condition, "reason": rule.reason, "type": rule.type,
                            "program": f"{rule.path} {' '.join(rule.args)}".strip(),
                            "interval_s": monitor.interval_s, "timeout_s": monitor.effective_timeout(rule),
                            **judge(invocations[watch.key(monitor, rule)], timeline, verdict, unjudged)})
    return entries
