"""A workshop exercise: a scenario's node left broken for a participant to repair by hand.

The flow is learned from Killercoda (steps, each with a verify script) and
SadServers (a broken machine and a "check my solution" the learner cannot
tamper with), and reuses the scenario's own phases, never a copy of them:

- `nodelab break` runs the scenario's prepare, inject and detect (the
  runner with keep_broken) and keeps the node as the symptom left it;
- `nodelab check` runs the scenario's recover and verify observations and its
  steady-state hypothesis against the node as the participant left it, and
  never its repair; every wait is capped and the first missing sign of the
  recovery ends it (Context.patience), because the question is whether the
  node is repaired now;
- `nodelab hint` shows the guide's next hint (lab.scenario.guide);
- `nodelab reset` tears the exercise down as a run's teardown does.

One exercise at a time per lab, recorded in `exercise.json` in the lab's
state directory (where the node, its namespace and the break's observations are).
"""

import json
from pathlib import Path

from lab import paths
from lab.errors import LabError
from lab.scenario import guide as guides
from lab.scenario import runner
from lab.scenario.context import Context, RepairMissing
from lab.scenario.definition import Scenario
from lab.scenario.evidence import RECOVERY, STEADY, Observation, Timeline

CHECK_PATIENCE_S = 30   # how long check waits for any one sign of the repair (a repaired cookie node is Ready in ~10 s)


def exercise_file() -> Path:
    return paths.state_dir() / "exercise.json"


def current() -> dict | None:
    """The exercise under way, if any."""
    path = exercise_file()
    return json.loads(path.read_text()) if path.exists() else None


def require() -> dict:
    """The exercise under way; an error saying how to start one when there is none."""
    ex = current()
    if ex is None:
        raise LabError("no exercise is under way; `nodelab break SCENARIO` starts one")
    return ex


def _save(ex: dict) -> None:
    path = exercise_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ex, indent=2))


def can_break(scenario: Scenario) -> None:
    """Refuse, before anything boots, a break the lab cannot turn into an exercise."""
    ex = current()
    if ex:
        raise LabError(f"an exercise is under way ({ex['scenario']} on node {ex['node']}); "
                       "`nodelab reset` ends it first")
    if scenario.guide is None:
        raise LabError(f"scenario {scenario.name} has no workshop guide yet (guides/{scenario.name}.md beside its "
                       "module)")


def break_node(lab, scenario: Scenario, target: str, params: dict, variant: str) -> dict:
    """Break a node the scenario's way and keep it; the run's report (its `kept`
    says what stays, absent when the symptom did not appear and the node went)."""
    can_break(scenario)
    report = runner.run(lab, scenario, target, params, variant, keep_broken=True)
    kept = report.get("kept")
    if kept:
        _save({**kept, "scenario": scenario.name, "target": target, "variant": variant, "params": report["params"],
               "report_file": report["report_file"], "guide": str(scenario.guide),
               "environment": report.get("environment", {}), "observations": report["observations"],
               "hints_shown": 0})
    return report


def attach(lab, scenario: Scenario) -> Context:
    """The exercise's node as the scenario's phases see it (checks wait at most CHECK_PATIENCE_S)."""
    ex = require()
    if ex["scenario"] != scenario.name:
        raise LabError(f"the exercise under way is {ex['scenario']}, not {scenario.name}")
    try:
        node = lab.node(ex["node"])
    except Exception as exc:  # noqa: BLE001 - any way of not finding it says the same
        raise LabError(f"the exercise's node {ex['node']} is gone ({exc}); `nodelab reset` forgets the exercise")
    lab.sandbox_image = lab.ground().sandbox_image()
    timeline = Timeline(t0=ex["t0"], injected_at=ex["injected_at"],
                        observations=[Observation(**o) for o in ex["observations"]])
    ctx = Context(lab, node, lab.kube(namespace=ex["namespace"]), timeline, ex["params"],
                  environment=ex["environment"], defaults=dict(scenario.defaults), scratch=dict(ex["scratch"]),
                  patience=CHECK_PATIENCE_S)
    return ctx


def check(lab, scenario: Scenario) -> tuple[bool, list[Observation]]:
    """Whether the participant's repair holds: (repaired, what was observed)."""
    ctx = attach(lab, scenario)
    before = len(ctx.timeline.observations)
    try:
        scenario.recover(ctx)
        scenario.verify(ctx)
        runner.check_steady_state(ctx, scenario, after=True)   # as in a run: after verify
    except RepairMissing:
        pass   # the first missing sign is the answer; the rest would only wait
    except Exception as exc:  # noqa: BLE001 - a node still broken can fail a probe outright: not repaired
        ctx.timeline.observe("check-could-not-finish", RECOVERY, False,
                             f"a probe failed outright ({type(exc).__name__}: {str(exc)[:300]}): the node may still "
                             f"be broken, or the lab could not reach it (`nodelab status`)")
    seen = ctx.timeline.observations[before:]
    judged = [o for o in seen if o.kind in (RECOVERY, STEADY)]
    return bool(judged) and all(o.seen for o in judged), seen


def hint() -> tuple[int, int, str]:
    """The guide's next hint: (its number, how many there are, its text)."""
    ex = require()
    hints = guides.parse(Path(ex["guide"])).hints
    if not hints:
        raise LabError(f"the guide {ex['guide']} has no hints")
    shown = min(ex["hints_shown"] + 1, len(hints))
    ex["hints_shown"] = shown
    _save(ex)
    return shown, len(hints), hints[shown - 1]


def reset(lab, scenario_of) -> str:
    """Tear the exercise down as a run's teardown does (its pods, node and
    namespace, and what its scenario runs beside the node: Scenario.release)
    and forget it. When the node is already gone, what can still be stopped is."""
    ex = require()
    try:
        ctx = attach(lab, scenario_of(ex["scenario"]))
    except LabError as exc:
        said = f"forgot the exercise ({exc})"
        try:   # the node is gone; what the scenario runs beside it and its namespace may not be
            scenario_of(ex["scenario"]).release(lab)
        except Exception as why:  # noqa: BLE001 - forgetting goes on; the reader learns what is left
            said += f"; what {ex['scenario']} runs beside its node was not stopped ({why}): `nodelab down` stops it"
        try:
            lab.kube(namespace=ex["namespace"]).delete_namespace()
        except Exception:  # noqa: BLE001 - a control plane that is gone took it along
            pass
        exercise_file().unlink()
        return said
    runner.teardown(lab, scenario_of(ex["scenario"]), ctx)
    exercise_file().unlink()
    return f"removed node {ex['node']} and namespace {ex['namespace']}"
