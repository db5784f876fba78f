"""Running a scenario: phases in order, teardown always, verdict from evidence.

A scenario reads like the incident report (learned from Jepsen's test
lifecycle and Chaos Toolkit's steady-state hypothesis / method / rollbacks):
`prepare` (workload, then the steady state must hold), `inject`, `detect`
(named observations, each with a deadline), `recover` (only where the
symptom appeared), `verify` (the steady state again, for a while), and
`teardown` in `finally`. The verdict is derived here from what was observed;
a scenario never sets it.
"""

import importlib.util
import json
import shlex
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from lab import paths
from lab.cluster import Lab, report_environment
from lab.errors import LabError
from lab.kube import Kube
from lab.nodes.docker import DockerNode
from lab.progress import console, say
from lab.scenario.evidence import FIX, INJECTION, RECOVERY, STEADY, SYMPTOM, Timeline
from lab.scenario.record import IMMUNE, INCONCLUSIVE, REPRODUCES, BugRecord
from lab.targets import PRIMARY, Target

PHASES = ("prepare", "inject", "detect", "recover", "verify")


@dataclass
class Context:
    lab: Lab
    node: DockerNode
    kube: Kube
    timeline: Timeline
    params: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)   # versions read from the node
    defaults: dict = field(default_factory=dict)     # the scenario's numeric settings
    scratch: dict = field(default_factory=dict)       # what one phase leaves for the next
    timings: dict = field(default_factory=dict)       # measured figures for the report

    def setting(self, key: str) -> int:
        """A numeric setting: the user's --param, else the variant's, else the scenario's default."""
        if key not in self.params and key not in self.defaults:
            raise LabError(f"no setting {key!r}")
        return int(self.params.get(key, self.defaults.get(key)))

    def observe(self, *args, **kwargs):
        obs = self.timeline.observe(*args, **kwargs)
        mark = "[green]seen[/green]" if obs.seen else "[yellow]not seen[/yellow]"
        when = f"injection{obs.at:+.0f}s" if obs.at is not None else f"start+{obs.t:.0f}s"
        say(f"  {obs.kind}: {obs.name} {mark} at {when}: {obs.summary}")
        return obs


class Scenario:
    """Subclasses set the class attributes and implement the phases."""
    name: str = ""
    record: BugRecord
    primary_targets: tuple[str, ...] = ()
    # Variants run the same scenario with other settings (a workload's PID 1,
    # a kubelet flag): name -> params. A scenario whose verdict hangs on such
    # a setting rather than on a package names its CI runs in primary_runs.
    variants: dict[str, dict] = {}
    primary_runs: tuple[tuple[str, str], ...] = ()    # (target, variant)
    # False where the verdict hangs on a workload or kubelet setting, not on
    # the node's packages: the package regression gate has nothing to say then.
    keyed_on_packages: bool = True
    defaults: dict[str, int] = {}        # numeric settings a --param may override (Context.setting)
    kubelet_flags: tuple[str, ...] = ()  # every run's; a variant or --param adds "kubelet_flags": "..."
    stand_ins: tuple[str, ...] = ()      # stand-ins in the causal chain, said in every report
    # The symptom observations that make up the documented incident: all must
    # be seen for `reproduces`; part of them is an incomplete chain.
    key_symptoms: tuple[str, ...] = ()

    def expected(self, ctx: "Context") -> tuple[str, str]:
        """(expected verdict, why), from what was read on the node (and the variant)."""
        return self.record.expected(ctx.environment["packages"])

    def variant_params(self, variant: str) -> dict:
        """The settings of a variant ("" is the scenario's only form when it has none)."""
        if variant and variant not in self.variants:
            raise LabError(f"scenario {self.name} has no variant {variant!r}; "
                           f"known: {', '.join(self.variants) or 'none'}")
        return dict(self.variants.get(variant, {}))

    def runs(self, target_names: list[str] | None = None, variant_names: list[str] | None = None
             ) -> list[tuple[str, str]]:
        """The (target, variant) pairs to run: the primary runs unless told."""
        for v in variant_names or ():
            self.variant_params(v)
        if not target_names and not variant_names:
            if self.primary_runs:
                return list(self.primary_runs)
            return [(t, "") for t in self.primary_targets or PRIMARY]
        chosen_targets = target_names or list(dict.fromkeys(t for t, _ in self.runs()))
        chosen_variants = variant_names or list(self.variants) or [""]
        return [(t, v) for t in chosen_targets for v in chosen_variants]

    def prepare(self, ctx: Context) -> None: ...
    def inject(self, ctx: Context) -> None: ...
    def detect(self, ctx: Context) -> None: ...
    def recover(self, ctx: Context) -> None: ...
    def verify(self, ctx: Context) -> None: ...
    def teardown(self, ctx: Context) -> None: ...


def derive_verdict(t: Timeline, key_symptoms: tuple[str, ...] = ()) -> tuple[str, str]:
    if not t.seen(INJECTION) or t.missed(INJECTION):
        return INCONCLUSIVE, "the injection did not take: " + "; ".join(o.summary for o in t.missed(INJECTION))
    if t.missed(STEADY):
        return INCONCLUSIVE, "the steady state did not hold: " + "; ".join(o.summary for o in t.missed(STEADY))
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


def run(lab: Lab, scenario: Scenario, target: "str | Target", params: dict | None = None,
        variant: str = "") -> dict:
    """Run one scenario on one target (a name, or a candidate Target for the gate),
    in one of its variants; `params` (the user's) override the variant's."""
    recipe = target if isinstance(target, Target) else None
    target = recipe.name if recipe else target
    params = {**scenario.variant_params(variant), **(params or {})}
    timeline = Timeline()
    report: dict = {"scenario": scenario.name, "bug": _record_dict(scenario.record), "target": target,
                    "variant": variant, "params": params,
                    "candidate": recipe.summary if recipe else None,
                    "stand_ins": list(scenario.stand_ins), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    say(f"[bold]{scenario.name}[/bold] on {target}{f' ({variant})' if variant else ''}: {scenario.record.title}")
    t0 = time.monotonic()
    kubelet_flags = (*scenario.kubelet_flags, *shlex.split(params.get("kubelet_flags", "")))
    node = lab.up(recipe or target, 1, kubelet_flags=kubelet_flags,
                  prefix=f"nodelab-{scenario.name}-{target.replace('+', '-')}")[0]
    timeline.phases["boot"] = {"seconds": round(time.monotonic() - t0, 1)}
    # The run's objects live in a namespace of its own (its node's name and the
    # time): what a killed run left on a control plane that lived on never
    # collides with them, nor does a namespace the previous run's teardown is
    # still deleting.
    namespace = f"{node.name}-{time.strftime('%H%M%S')}"
    ctx = Context(lab, node, lab.kube(namespace=namespace), timeline, params, defaults=dict(scenario.defaults))
    report["namespace"] = namespace
    error = None
    try:
        ctx.kube.create_namespace()
        report["environment"] = ctx.environment = report_environment(lab, node)
        expected, why = scenario.expected(ctx)
        report["expected"] = {"verdict": expected, "why": why}
        say(f"expected verdict from the node's versions: {expected} ({why})")
        for phase in PHASES:
            if phase == "recover" and not timeline.seen(SYMPTOM):
                timeline.phases[phase] = {"skipped": "no symptom appeared, nothing to recover"}
                continue
            say(f"[bold]{phase}[/bold]")
            start = time.monotonic()
            getattr(scenario, phase)(ctx)
            if phase == "inject" and timeline.injected_at is None:
                timeline.injected_at = start   # a scenario that waits for its moment marks it itself
            timeline.phases[phase] = {"seconds": round(time.monotonic() - start, 1)}
            if phase == "prepare" and timeline.missed(STEADY):
                break
    except Exception as exc:  # noqa: BLE001 - any failure is reported, then teardown runs
        error = f"{type(exc).__name__}: {exc}"
        report["error"] = error
        report["traceback"] = traceback.format_exc()
        say(f"[red]error: {error}[/red]")
    finally:
        start = time.monotonic()
        try:
            scenario.teardown(ctx)
        finally:
            _delete_pods_of(ctx)
            lab.remove_node(node)
            _delete_namespace_of(ctx)
            timeline.phases["teardown"] = {"seconds": round(time.monotonic() - start, 1)}
    verdict, reason = derive_verdict(timeline, scenario.key_symptoms) if error is None else (INCONCLUSIVE, f"the run failed: {error}")
    report.update({"verdict": verdict, "verdict_reason": reason, **timeline.as_dict(),
                   "total_seconds": round(time.monotonic() - t0, 1)})
    report["timings"].update(ctx.timings)
    report["stand_ins"] = list(dict.fromkeys(report["stand_ins"] + ctx.scratch.get("stand_ins", [])))
    report["report_file"] = str(_write(report))
    _summary(report)
    return report


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


def _record_dict(r: BugRecord) -> dict:
    return {"id": r.id, "title": r.title, "component": r.component, "mechanism": r.mechanism,
            "references": list(r.references), "affected": r.affected,
            "fixes": [{"version": f.version, "line": f.line, "note": f.note} for f in r.fixes]}


def _write(report: dict) -> Path:
    out = paths.reports_dir()
    out.mkdir(parents=True, exist_ok=True)
    variant = f"-{report['variant']}" if report.get("variant") else ""
    path = out / f"{report['scenario']}-{report['target']}{variant}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path


def _summary(report: dict) -> None:
    c = console()
    exp = report.get("expected", {}).get("verdict", "?")
    colour = "green" if report["verdict"] == exp else "red"
    variant = f" ({report['variant']})" if report.get("variant") else ""
    c.print(f"[{colour}]{report['scenario']} on {report['target']}{variant}: {report['verdict']} "
            f"(expected {exp})[/{colour}] — {report['verdict_reason']}")
    for name, p in report.get("phases", {}).items():
        c.print(f"  phase {name}: {p.get('seconds', p.get('skipped'))}")
    for name, seconds in report.get("timings", {}).items():
        c.print(f"  {name}: {seconds}")
    for s in report.get("stand_ins", []):
        c.print(f"  stand-in: {s}")
    c.print(f"  report: {report['report_file']}")


def explain(report: dict) -> str:
    lines = [f"{report['scenario']} on {report['target']} {report.get('variant', '')}: verdict {report['verdict']}, expected "
             f"{report.get('expected', {}).get('verdict')}: {report['verdict_reason']}"]
    for o in report.get("observations", []):
        when = f"injection{o['at']:+}s" if o["at"] is not None else f"start+{o['t']}s"
        lines.append(f"  [{o['kind']}] {o['name']}: {'seen' if o['seen'] else 'NOT seen'} at {when}: {o['summary']}")
    if report.get("error"):
        lines.append(report.get("traceback", ""))
    lines.append(f"report: {report['report_file']}")
    return "\n".join(lines)


def check(lab: Lab, scenario: Scenario, target: str, variant: str = "", params: dict | None = None) -> dict:
    """The pytest body of every scenario: observed verdict == expected verdict."""
    report = run(lab, scenario, target, params, variant)
    expected = report.get("expected", {}).get("verdict")
    assert expected in (REPRODUCES, IMMUNE), explain(report)
    assert report["verdict"] == expected, explain(report)
    return report


def pairs(items: list[str], option: str, form: str) -> dict[str, str]:
    """KEY=VALUE command-line items as a dict (--param, --set)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise LabError(f"{option} takes {form}, not {item!r}")
        out[name] = value
    return out


# -- scenario discovery for the CLI ---------------------------------------------
def load_scenarios(directory: Path) -> dict[str, Scenario]:
    if not directory.is_dir():
        raise LabError(f"no scenarios directory at {directory} (use --scenarios-dir)")
    found = {}
    for path in sorted(directory.glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"nodelab_scenario_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        scenario = getattr(module, "SCENARIO", None)
        if isinstance(scenario, Scenario):
            found[scenario.name] = scenario
    return found


def run_from_cli(lab: Lab, name: str, target_names: list[str] | None, directory: str | None,
                 variant_names: list[str] | None = None, params: dict | None = None) -> int:
    from lab import targets
    scenarios = load_scenarios(Path(directory) if directory else Path.cwd() / "scenarios")
    if name not in scenarios:
        raise LabError(f"unknown scenario {name!r}; known: {', '.join(sorted(scenarios)) or 'none'}")
    scenario = scenarios[name]
    chosen = scenario.runs(target_names, variant_names)
    for t, _ in chosen:
        targets.runnable(t)
    results = [run(lab, scenario, t, params, v) for t, v in chosen]
    ok = all(r["verdict"] == r.get("expected", {}).get("verdict") for r in results)
    return 0 if ok else 1


def gate(lab: Lab, base: str, overrides: dict[str, str], names: list[str] | None, directory: str | None) -> int:
    """The regression gate: every scenario must be `immune` on the candidate."""
    from lab import targets
    candidate = targets.candidate(base, overrides)
    scenarios = load_scenarios(Path(directory) if directory else Path.cwd() / "scenarios")
    chosen = names or sorted(n for n, s in scenarios.items() if s.keyed_on_packages)
    unknown = [n for n in chosen if n not in scenarios]
    if unknown:
        raise LabError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(scenarios))}")
    settings = [n for n in chosen if not scenarios[n].keyed_on_packages]
    if settings:
        raise LabError(f"scenario(s) {', '.join(settings)} hang on a workload or kubelet setting, not on "
                       f"packages; compare their variants with `nodelab run NAME --variant ...` instead")
    results = {n: run(lab, scenarios[n], candidate) for n in chosen}
    failed = {n: r["verdict"] for n, r in results.items() if r["verdict"] != IMMUNE}
    c = console()
    if failed:
        c.print(f"[red]gate FAILED for {candidate.summary}: " +
                ", ".join(f"{n} {v}" for n, v in failed.items()) + "[/red]")
        return 1
    c.print(f"[green]gate passed for {candidate.summary}: {', '.join(chosen)} immune[/green]")
    return 0
