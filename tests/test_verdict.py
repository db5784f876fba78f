from lab.scenario import catalog
from lab.scenario.evidence import EVIDENCE, FIX, INJECTION, RECOVERY, STEADY, SYMPTOM, Timeline
from lab.scenario.record import IMMUNE, INCONCLUSIVE, REPRODUCES
from lab.scenario.verdict import derive_verdict


def timeline(*obs):
    t = Timeline()
    t.injected_at = t.t0
    for name, kind, seen in obs:
        t.observe(name, kind, seen, "summary of " + name)
    return t


def test_reproduces_needs_injection_symptom_and_recovery():
    t = timeline(("ready", STEADY, True), ("set", INJECTION, True), ("notready", SYMPTOM, True),
                 ("ready-again", RECOVERY, True))
    assert derive_verdict(t)[0] == REPRODUCES


def test_symptom_without_recovery_is_inconclusive():
    t = timeline(("set", INJECTION, True), ("notready", SYMPTOM, True), ("ready-again", RECOVERY, False))
    verdict, why = derive_verdict(t)
    assert verdict == INCONCLUSIVE and "ready-again" in why


def test_immune_needs_fix_fingerprint():
    t = timeline(("set", INJECTION, True), ("wrapped", FIX, True), ("held", STEADY, True))
    assert derive_verdict(t)[0] == IMMUNE
    t = timeline(("set", INJECTION, True), ("held", STEADY, True), ("note", EVIDENCE, True))
    assert derive_verdict(t)[0] == INCONCLUSIVE


def test_injection_that_did_not_take_is_inconclusive():
    t = timeline(("set", INJECTION, False), ("notready", SYMPTOM, True), ("ready-again", RECOVERY, True))
    verdict, why = derive_verdict(t)
    assert verdict == INCONCLUSIVE and "injection" in why


def test_broken_steady_state_is_inconclusive():
    t = timeline(("ready", STEADY, False), ("set", INJECTION, True), ("wrapped", FIX, True))
    assert derive_verdict(t)[0] == INCONCLUSIVE


def test_symptom_wins_over_fix_fingerprint():
    t = timeline(("set", INJECTION, True), ("wrapped", FIX, True), ("notready", SYMPTOM, True),
                 ("ready-again", RECOVERY, True))
    assert derive_verdict(t)[0] == REPRODUCES


def test_a_partial_chain_is_inconclusive():
    t = timeline(("set", INJECTION, True), ("bus-dead", SYMPTOM, True), ("ready-again", RECOVERY, True))
    verdict, why = derive_verdict(t, key_symptoms=("bus-dead", "notready"))
    assert verdict == INCONCLUSIVE and "never saw notready" in why
    t.observe("notready", SYMPTOM, True, "Ready=False")
    assert derive_verdict(t, key_symptoms=("bus-dead", "notready"))[0] == REPRODUCES


def test_a_steady_state_that_failed_before_the_injection_is_the_reason_given():
    t = Timeline()
    t.observe("workload-running", STEADY, False, "cookie-probed Pending")
    assert derive_verdict(t) == (INCONCLUSIVE, "the steady state did not hold: cookie-probed Pending")


def test_memcg_expects_its_verdict_from_the_running_kernels_release():
    memcg = catalog.shipped()["memcg"]
    for release, verdict in (("4.4.0-21-generic", "reproduces"), ("4.15.18", "reproduces"),
                             ("6.1.0-41-amd64", "immune"), ("4.16.0-1-amd64", "immune"), ("", "inconclusive")):
        ctx = type("ctx", (), {"environment": {"kernel": release}})
        assert memcg.expected(ctx)[0] == verdict, release
