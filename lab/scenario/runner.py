"""Running a scenario: phases in order, teardown always, verdict from evidence.

A scenario reads like the incident report (learned from Jepsen's test
lifecycle and Chaos Toolkit's steady-state hypothesis / method / rollbacks):
`prepare` (workload, then the steady state must hold), `inject`, `detect`
(named observations, each with a deadline), `recover` (only where the
symptom appeared), `verify` (the steady state again, for a while), and
`teardown` in `finally`. The scenario's steady-state hypothesis is checked
by the runner after prepare and again after verify; the runner deletes what
the scenario left in Kubernetes (its pods, its namespace), and runs the
incident's shipped detectors on the node throughout, judging them against
the run (lab.scenario.detection). The verdict is derived from what was observed
(lab.scenario.verdict); a scenario never sets it. A run stopped by Ctrl-C
or SIGTERM tears down all the same and its report says `interrupted`.
"""

import json
import shlex
import time
import traceback

from lab.cluster.lab import report_environment
from lab.errors import LabError
from lab.progress import say
from lab.reports import console as report_console
from lab.reports import page as report_page
from lab.reports import store as reports
from lab.scenario import detection
from lab.scenario.context import Context
from lab.scenario.definition import Scenario
from lab.scenario.evidence import RECOVERY, STEADY, SYMPTOM, Timeline
from lab.scenario.interrupt import Interrupted, catching_signals
from lab.scenario.params import check as check_params
from lab.scenario import guide as guides
from lab.scenario.record import BROKEN, INCONCLUSIVE, INTERRUPTED
from lab.scenario.verdict import derive_verdict
from lab.scenario.watch import ReadySampler
from lab.recipes.targets import Target

PHASES = ("prepare", "inject", "detect", "recover", "verify")
KEPT_LOCKUP_LINES = 6   # of a node kernel's lockup lines, the first ones go into the report


def run(lab, scenario: Scenario, target: "str | Target", params: dict | None = None, variant: str = "",
        keep_broken: bool = False) -> dict:
    """Run one scenario on one target (a name, or a candidate Target for the gate),
    in one of its variants; `params` (the user's) override the variant's.
    `keep_broken` (a workshop's `nodelab break`) stops after detect and, when the
    symptom appeared, leaves the node broken: no recovery, no teardown; the
    report's `kept` says what stays (lab.scenario.workshop takes it from there)."""
    why = lab.backend.cannot_run(scenario.requires)
    if why:
        raise LabError(f"scenario {scenario.name} cannot run here: {why}")
    recipe = target if isinstance(target, Target) else None
    target = recipe.name if recipe else target
    params = {**scenario.variant_params(variant), **check_params(scenario, params or {})}
    why = scenario.cannot_run_on(target, params)
    if why:
        raise LabError(f"scenario {scenario.name}{f' ({variant})' if variant else ''} cannot run on {target}: {why}")
    timeline = Timeline()
    report: dict = {"run": reports.run_id(scenario.name, target, variant), "scenario": scenario.name,
                    "bug": reports.record_dict(scenario.record), "target": target,
                    "variant": variant, "params": params, "candidate": recipe.summary if recipe else None,
                    "stand_ins": list(scenario.stand_ins), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    say(f"[bold]{scenario.name}[/bold] on {target}{f' ({variant})' if variant else ''}: {scenario.record.title}")
    t0 = time.monotonic()
    ctx, sampler, error, phase = None, None, None, "boot"
    watch, detector_error, kept = None, "", False
    with catching_signals() as signals:
        try:
            kubelet_flags = (*scenario.kubelet_flags, *shlex.split(params.get("kubelet_flags", "")))
            node = lab.up(recipe or target, 1, kubelet_flags=kubelet_flags, prefix=f"nodelab-{scenario.name}-{target}",
                          kernel_args=scenario.kernel_args(params))[0]
            timeline.phases["boot"] = {"start": 0.0, "seconds": round(time.monotonic() - t0, 1)}
            # The run's objects live in a namespace of its own (its node's name and
            # the time): what a killed run left on a control plane that lived on
            # never collides with them, nor does a namespace the previous run's
            # teardown is still deleting.
            namespace = f"{node.name}-{time.strftime('%H%M%S')}"
            ctx = Context(lab, node, lab.kube(namespace=namespace), timeline, params, defaults=dict(scenario.defaults))
            sampler = ReadySampler(ctx.kube, node.name, timeline.t0).start()
            # The incident's shipped detectors run on the node for the whole
            # run, as node-problem-detector would run them (lab.nodetools.npd).
            watch, detector_error = detection.start(node, scenario.name)
            report["namespace"] = namespace
            ctx.kube.create_namespace()
            report["environment"] = ctx.environment = report_environment(lab, node)
            expected, why = scenario.expected(ctx)
            report["expected"] = {"verdict": expected, "why": why}
            say(f"expected verdict from the node's versions: {expected} ({why})")
            for phase in PHASES:
                if phase == "recover" and keep_broken:
                    kept = bool(timeline.seen(SYMPTOM))
                    break
                if phase == "recover" and not timeline.seen(SYMPTOM):
                    timeline.phases[phase] = {"skipped": "no symptom appeared, nothing to recover"}
                    continue
                if phase == "recover" and scenario.guide:
                    report["guide"] = _check_guide(lab, scenario, ctx, variant, params)
                say(f"[bold]{phase}[/bold]")
                start = time.monotonic()
                if phase == "recover":
                    scenario.repair(ctx)   # the documented remedy, as an operator applies it
                getattr(scenario, phase)(ctx)
                if phase == "inject" and timeline.injected_at is None:
                    timeline.injected_at = start   # a scenario that waits for its moment marks it itself
                if phase in ("prepare", "verify"):
                    check_steady_state(ctx, scenario, after=phase == "verify")
                timeline.phases[phase] = {"start": round(start - timeline.t0, 1),
                                          "seconds": round(time.monotonic() - start, 1)}
                if phase == "prepare" and timeline.missed(STEADY):
                    break
        except Interrupted:
            pass   # signals.received says which; the teardown below runs as always
        except Exception as exc:  # noqa: BLE001 - any failure is reported, then teardown runs
            if phase == "boot" and signals.received is None:
                raise   # no node (lab.up removes a half-started one): the caller shows the error
            if signals.received is None:   # else: a child the same Ctrl-C killed failed first
                error = f"{type(exc).__name__}: {exc}"
                report.update(error=error, traceback=traceback.format_exc())
                say(f"[red]error: {error}[/red]")
        finally:
            signals.tearing_down = True
            if signals.received:
                say(f"[yellow]{signals.received} during {phase}: tearing down (a second one is ignored; "
                    f"`nodelab down` removes what a killed run leaves)[/yellow]")
            if watch is not None:
                watch.stop()
            if ctx is not None:
                ctx.series["node Ready"] = {"unit": "", "points": sampler.stop() if sampler else []}
                kept = kept and error is None and signals.received is None
                if kept:
                    report["kept"] = {"node": ctx.node.name, "backend": lab.backend.name,
                                      "namespace": ctx.kube.namespace, "t0": timeline.t0,
                                      "injected_at": timeline.injected_at, "scratch": _plain(ctx.scratch)}
                else:
                    lockups = _kernel_lockups(lab, ctx.node)
                    if lockups:
                        report["kernel_lockups"] = {"count": len(lockups), "first": lockups[:KEPT_LOCKUP_LINES]}
                    elif error is not None or timeline.missed(STEADY):
                        silent = _unanswering(lab, ctx.node)
                        if silent:
                            report["node_unanswering"] = silent
                    report["logs"] = _collect_logs(lab, ctx.node, report["run"])
                    teardown(lab, scenario, ctx)
    if signals.received:
        verdict, reason = INTERRUPTED, f"interrupted by {signals.received} during {phase}; the node was torn down"
    elif error is not None:
        verdict, reason = INCONCLUSIVE, f"the run failed: {error}"
    elif kept:
        verdict, reason = BROKEN, "left broken for a workshop: " + "; ".join(
            f"{o.name}: {o.summary}" for o in timeline.seen(SYMPTOM))
    else:
        verdict, reason = derive_verdict(timeline, scenario.key_symptoms)
    if "kernel_lockups" in report:
        lockups = report["kernel_lockups"]
        said = f"the node's own kernel locked up ({lockups['count']} console lines, the first: {lockups['first'][0]})"
        reason = (f"{said}, so the run says nothing of the bug; {reason}" if verdict == INCONCLUSIVE else
                  f"{reason}; beware: {said}")
    elif "node_unanswering" in report:
        said = f"the node's machine stopped answering ({report['node_unanswering']})"
        reason = f"{said}; {reason}" if verdict == INCONCLUSIVE else f"{reason}; beware: {said}"
    report.update({"verdict": verdict, "verdict_reason": reason, **timeline.as_dict(),
                   "total_seconds": round(time.monotonic() - t0, 1)})
    detectors = detection.report(watch, detector_error, timeline, verdict, scenario.detector_unjudged.get(variant, ""))
    if detectors:
        report["detectors"] = detectors
    if ctx is not None:
        report["timings"].update(ctx.timings)
        report["series"] = ctx.series
        report["stand_ins"] = list(dict.fromkeys(report["stand_ins"] + ctx.scratch.get("stand_ins", [])))
    report["page"] = str(reports.page_file(report["run"]))
    report["report_file"] = str(reports.write(report))
    report_page.publish(report)
    if signals.received:
        raise Interrupted(signals.received, report["report_file"])
    report_console.summary(report)
    return report


def _plain(scratch: dict) -> dict:
    """What of a run's scratch can be written down (numbers, strings, lists, dicts):
    a workshop's check gets it back; live objects (threads, watches) stay behind."""
    plain = {}
    for key, value in scratch.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        plain[key] = value
    return plain


def check_steady_state(ctx: Context, scenario: Scenario, after: bool) -> None:
    """Before the injection the hypothesis must hold as it is; after verify it
    may take up to settle_seconds. After a symptom, holding again is part of
    the recovery; on an immune run it is the steady state."""
    probes: dict[str, tuple[bool, str]] = {}

    def holds() -> bool:
        probes.clear()
        probes.update(scenario.steady_state(ctx))
        return all(ok for ok, _ in probes.values())

    ctx.until(holds, scenario.settle_seconds if after else 0, every=2)
    kind = RECOVERY if after and ctx.timeline.seen(SYMPTOM) else STEADY
    for name, (ok, seen) in probes.items():
        ctx.observe(f"{name}-after" if after else name, kind, ok, seen)


def _check_guide(lab, scenario: Scenario, ctx: Context, variant: str, params: dict) -> dict:
    """The scenario's workshop guide against the node while it is broken: every
    step's commands run where the guide says, each output checked for what the
    guide says it shows (lab.scenario.guide). A few seconds; the report keeps it.
    Only the form the guide describes is checked (its variant, the default
    parameters): another form's node shows other figures."""
    form = scenario.guide_form(lab.backend.name)[1]
    if variant != form or params != scenario.variant_params(variant):
        return {"file": str(scenario.guide), "checked": False,
                "why": f"the guide describes {f'variant {form}' if form else 'the plain form'} with the default "
                       f"parameters; this run is {f'variant {variant}' if variant else 'the plain form'} with "
                       f"{params or 'the defaults'}"}
    start = time.monotonic()
    guide = guides.parse(scenario.guide)
    say(f"[bold]guide[/bold]: {guide.title}")
    checked = guides.check(guide, ctx.node, guide_env(lab, ctx))
    for c in checked:
        mark = "[green]shows[/green]" if c.ok else f"[red]does not show {c.missing}[/red]"
        say(f"  {c.where}$ {c.script.splitlines()[0][:90]}: {mark}")
    ctx.timeline.phases["guide"] = {"start": round(start - ctx.timeline.t0, 1),
                                    "seconds": round(time.monotonic() - start, 1)}
    return guides.as_report(guide, checked)


def guide_env(lab, ctx: Context) -> dict[str, str]:
    """What a guide's host commands get: the lab's kubeconfig, the node and the run's namespace."""
    return {"KUBECONFIG": str(lab.control_plane().kubeconfig), "NODE": ctx.node.name,
            "NAMESPACE": ctx.kube.namespace}


def _kernel_lockups(lab, node) -> list[str]:
    """What the node's own kernel said of lockups (lab.backends.base.Backend.kernel_lockups);
    a console that cannot be read is no lockup, and the run goes on to its teardown."""
    try:
        return lab.backend.kernel_lockups(node)
    except Exception as exc:  # noqa: BLE001 - evidence, never a reason to skip the teardown
        say(f"[yellow]could not read {node.name}'s console for lockups: {exc}[/yellow]")
        return []


def _unanswering(lab, node) -> str:
    """Why the node's machine no longer answers (lab.backends.base.Backend.unanswering);
    a check that fails is no answer either way, and the run goes on to its teardown."""
    try:
        return lab.backend.unanswering(node)
    except Exception as exc:  # noqa: BLE001 - evidence, never a reason to skip the teardown
        say(f"[yellow]could not ask {node.name} whether it answers: {exc}[/yellow]")
        return ""


def _collect_logs(lab, node, run: str) -> list[str]:
    """The node's logs, kept beside the report before the node is removed."""
    try:
        return [str(p) for p in lab.backend.collect_logs(node, reports.logs_dir(run))]
    except Exception as exc:  # noqa: BLE001 - teardown goes on; the report says why
        say(f"[yellow]could not keep the logs of {node.name}: {exc}[/yellow]")
        return [f"not kept: {exc}"]


def teardown(lab, scenario: Scenario, ctx: Context) -> None:
    start = time.monotonic()
    try:
        try:
            scenario.teardown(ctx)
        finally:
            scenario.release(lab)
    finally:
        _delete_pods_of(ctx)
        lab.remove_node(ctx.node)
        _delete_namespace_of(ctx)
        ctx.timeline.phases["teardown"] = {"start": round(start - ctx.timeline.t0, 1),
                                           "seconds": round(time.monotonic() - start, 1)}


def _delete_pods_of(ctx: Context) -> None:
    """Whatever pods a scenario left bound to its node go with the node: the
    next run's node may get the same name, and its kubelet would adopt them."""
    try:
        for pod in ctx.kube.pods_on(ctx.node.name):
            ctx.kube.delete_pod(pod.metadata.name)
    except Exception as exc:  # noqa: BLE001 - teardown goes on; the reader learns why
        say(f"[yellow]could not delete the pods on {ctx.node.name}: {exc}[/yellow]")


def _delete_namespace_of(ctx: Context) -> None:
    try:
        ctx.kube.delete_namespace()
    except Exception as exc:  # noqa: BLE001 - as above
        say(f"[yellow]could not delete namespace {ctx.kube.namespace}: {exc}[/yellow]")
