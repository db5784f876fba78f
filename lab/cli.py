"""nodelab: the command line."""

import argparse
import shlex
import sys

import docker.errors
import requests

from lab import backends, host
from lab.recipes import targets
from lab.cluster.lab import Lab, dump
from lab.errors import LabError
from lab.progress import console, say
from lab.scenario.interrupt import Interrupted
from lab.scenario.params import pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nodelab", description="Reproduce Kubernetes node bugs on throw-away nodes.")
    parser.add_argument("--kube-binaries", metavar="DIR",
                        help="use kubelet/kube-apiserver/kube-controller-manager from DIR instead of building them")
    parser.add_argument("--backend", default="docker", help=f"what nodes are ({', '.join(backends.BACKENDS)}; "
                                                            "default docker)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="install host packages, start a docker engine, build Kubernetes binaries")
    sub.add_parser("doctor", help="what this host can and cannot run, and why")
    p_images = sub.add_parser("images", help="list targets and their images; `images build TARGET` builds one")
    p_images.add_argument("action", nargs="?", choices=["build"])
    p_images.add_argument("target", nargs="?")
    p_box = sub.add_parser("box", help="workshop: `box build TARGET` makes the target's VM image a vagrant box "
                                       "(libvirt) and adds it as nodelab/TARGET")
    p_box.add_argument("action", choices=["build"])
    p_box.add_argument("target")
    p_up = sub.add_parser("up", help="start nodes joined to the lab's API server")
    p_up.add_argument("--target", default="xenial-ga")
    p_up.add_argument("--nodes", type=int, default=1)
    sub.add_parser("status", help="control plane, nodes, adapters")
    sub.add_parser("down", help="remove everything the lab created")
    p_run = sub.add_parser("run", help="run a scenario end to end and write its report")
    p_run.add_argument("scenario")
    p_run.add_argument("--target", action="append", help="target(s); default: the scenario's primary targets")
    p_run.add_argument("--variant", action="append", help="scenario variant(s); default: the primary runs")
    p_run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="scenario parameter, e.g. supercronic=/path/to/supercronic (repeatable)")
    p_run.add_argument("--repeat", type=int, default=1, metavar="N",
                       help="run each (target, variant) N times, each on a fresh node, and summarize the rates")
    p_run.add_argument("--scenarios-dir", default=None,
                       help="a directory of your own scenario modules, besides the ones shipped with nodelab")
    p_scenarios = sub.add_parser("scenarios", help="the scenarios, their primary runs and variants; with NAME, "
                                                   "its parameters")
    p_scenarios.add_argument("name", nargs="?")
    p_scenarios.add_argument("--scenarios-dir", default=None,
                             help="a directory of your own scenario modules, besides the ones shipped with nodelab")
    p_report = sub.add_parser("report", help="(re)render a run's HTML page and the index of runs; print where")
    p_report.add_argument("path", nargs="?", help="a run's JSON report (default: the newest)")
    p_report.add_argument("--latest", action="store_true", help="the newest run's page (the default)")
    p_report.add_argument("--all", action="store_true", help="render every run's page")
    p_report.add_argument("--open", action="store_true", help="open the page in a browser")
    p_gate = sub.add_parser("gate", help="regression gate: every scenario must be immune on candidate packages")
    p_gate.add_argument("--base", required=True, help="target whose recipe the candidate starts from")
    p_gate.add_argument("--set", dest="overrides", action="append", required=True, metavar="PKG=VERSION",
                        help="candidate package version from the archive (repeatable)")
    p_gate.add_argument("--scenario", action="append", help="scenario(s) to gate on (default: all)")
    p_gate.add_argument("--scenarios-dir", default=None,
                        help="a directory of your own scenario modules, besides the ones shipped with nodelab")
    p_break = sub.add_parser("break", help="workshop: break a node the scenario's way and leave it broken")
    p_break.add_argument("scenario")
    p_break.add_argument("--target", help="default: the scenario's first primary run")
    p_break.add_argument("--variant", help="default: the variant of that run")
    p_break.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="scenario parameter")
    sub.add_parser("check", help="workshop: is the broken node repaired? (observes only; repairs nothing)")
    sub.add_parser("hint", help="workshop: the guide's next hint")
    sub.add_parser("reset", help="workshop: tear the exercise down")
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except LabError as exc:
        console().print(f"[red]nodelab {args.command}: {exc}[/red]")
        return 2
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        console().print(f"[red]nodelab {args.command}: the docker engine failed mid-way "
                        f"({str(exc).splitlines()[0][:200]}); `nodelab doctor` says what answers[/red]")
        return 2
    except Interrupted as exc:
        if exc.report_file:
            console().print(f"[yellow]nodelab {args.command}: interrupted by {exc.signame}; the node was torn "
                            f"down; report (verdict interrupted): {exc.report_file}[/yellow]")
        else:
            console().print(f"[yellow]nodelab {args.command}: interrupted by {exc.signame}; "
                            "`nodelab down` removes whatever was left[/yellow]")
        return 130
    except KeyboardInterrupt:
        console().print("[yellow]interrupted; `nodelab down` removes whatever was left[/yellow]")
        return 130


def _lab(args) -> Lab:
    return Lab(say=say, kube_binaries=args.kube_binaries, backend=args.backend)


def cmd_setup(args) -> int:
    from lab.fixtures import registry
    for line in _lab(args).setup():
        print(line)
    print(f"docker-registry (Debian's, not installed) at {registry.binary(say)}")
    return 0


def cmd_doctor(args) -> int:
    backend = _lab(args).backend
    checks = host.doctor(backend.host_commands) + backend.doctor()
    for c in checks:
        print(f"{'ok ' if c.ok else 'NO '} {c.name}: {c.detail}")
    for t in targets.TARGETS.values():
        why = backend.unavailable(t)
        print(f"{'NO ' if why else 'ok '} target {t.name} ({backend.name} backend): {why or t.summary}")
    return 0 if all(c.ok for c in checks if c.name in ("host packages", "root", "docker engine")) else 1


def cmd_images(args) -> int:
    lab = _lab(args)
    if args.action == "build":
        if not args.target:
            raise LabError("images build needs a TARGET: " + ", ".join(targets.TARGETS))
        print(lab.ground().image(targets.get(args.target), force=True))
        return 0
    for row in lab.ground().image_listing():
        print(f"{row['target']:10} {row['status']}\n{'':10} {row['summary']}")
    return 0


def cmd_box(args) -> int:
    """Build (or find) the box and add it to vagrant; the workshop's Vagrantfile boots it
    (lab.backends.vagrant). Whatever --backend says, a box is the vagrant backend's."""
    target = targets.get(args.target)
    lab = Lab(say=say, kube_binaries=args.kube_binaries, backend="vagrant")
    for line in lab.setup():   # the engine that builds node images, libvirtd that boots boxes
        say(line)
    from lab.backends.vagrant import box
    print(f"{lab.backend.build_box(target, lab.bins.directory)} (in {box.installed(target.name)}); now "
          f"`vagrant up {target.name}` where the workshop's Vagrantfile is")
    return 0


def cmd_up(args) -> int:
    if args.nodes < 1:
        raise LabError("--nodes must be at least 1")
    lab = _lab(args)
    for node in lab.up(args.target, args.nodes):
        vm = (f", VM: kernel {node.details['kernel_release']} under {node.details['accel']}, "
              f"{node.details['memory_mib']} MiB, {node.details['cpus']} vCPUs, no sandbox adapters (a real machine's "
              "PID 1)") if node.details else f", adapters: {', '.join(node.adapters) or 'none'}"
        print(f"node {node.name} Ready (target {node.target}{vm})")
    print(f"kubeconfig: {lab.control_plane().kubeconfig}")
    return 0


def cmd_status(args) -> int:
    from lab.scenario import workshop
    status = _lab(args).status()
    ex = workshop.current()
    if ex:
        status["exercise"] = {k: ex[k] for k in ("scenario", "target", "variant", "node", "backend", "namespace",
                                                 "guide", "hints_shown")}
    print(dump(status))
    return 0


def cmd_down(args) -> int:
    from lab.scenario import workshop
    removed = _lab(args).down()
    if workshop.current():
        workshop.exercise_file().unlink()
        removed.append("the exercise under way (its node went with the rest)")
    print("\n".join(removed) if removed else "nothing to remove")
    return 0


def cmd_run(args) -> int:
    from lab.scenario import catalog, runner
    from lab.scenario.params import check
    scenario = catalog.get(args.scenario, args.scenarios_dir)
    params = check(scenario, pairs(args.param, "--param", "KEY=VALUE"))   # before anything boots
    if args.repeat < 1:
        raise LabError("--repeat must be at least 1")
    chosen = scenario.runs(args.target, args.variant, args.backend)
    if not chosen:
        raise LabError(f"scenario {scenario.name} makes no primary run on the {args.backend} backend; "
                       "name one with --target")
    for t, v in chosen:
        targets.runnable(t)
        why = scenario.cannot_run_on(t, {**scenario.variant_params(v), **params})
        if why:
            raise LabError(f"scenario {scenario.name}{f' ({v})' if v else ''} cannot run on {t}: {why}")
    lab = _lab(args)
    try:   # runner.run refuses a scenario the backend cannot run before anything boots
        results = [runner.run(lab, scenario, t, params, v) for t, v in chosen for _ in range(args.repeat)]
    finally:
        up = lab.still_up()
        if up:
            console().print(f"still up for the next run: {', '.join(up)}; `nodelab down` stops them")
    if args.repeat > 1:
        from lab.reports import rates
        summaries = rates.summarize(results)
        for summary in summaries:
            for line in rates.lines(summary):
                print(line)
        print(f"rates: {rates.write(summaries)}")
    return 0 if all(r["verdict"] == r.get("expected", {}).get("verdict") for r in results) else 1


def cmd_scenarios(args) -> int:
    from lab.scenario import catalog
    from lab.scenario.params import describe
    found = catalog.scenarios(args.scenarios_dir)
    if args.name and args.name not in found:
        raise LabError(f"unknown scenario {args.name!r}; known: {', '.join(sorted(found))}")
    for name in [args.name] if args.name else sorted(found):
        s = found[name]
        runs = ", ".join(f"{t}{'/' + v if v else ''}" for t, v in s.runs())
        print(f"{name}: {s.record.title}\n  primary runs: {runs}")
        if s.variants:
            print(f"  variants: {', '.join(s.variants)}")
        if args.name:
            print("  parameters (--param NAME=VALUE):")
            for line in describe(s):
                print(f"    {line}")
    return 0


def cmd_report(args) -> int:
    from pathlib import Path

    from lab import paths
    from lab.reports import page, store
    every = store.every_report()
    if args.path:
        chosen = [Path(args.path)]
        if not chosen[0].is_file():
            raise LabError(f"no report at {args.path}")
    elif not every:
        raise LabError(f"no reports in {paths.reports_dir()} yet; `nodelab run SCENARIO` writes one")
    else:
        chosen = every if args.all else every[:1]
    try:
        pages = [page.render(store.load(p), p.parent) for p in chosen]
    except ValueError as exc:
        raise LabError(str(exc)) from None
    index = page.render_index(chosen[0].parent)
    for p in pages:
        print(p)
    print(f"index: {index}")
    if args.open:
        import webbrowser
        webbrowser.open(pages[0].as_uri())
    return 0


def cmd_gate(args) -> int:
    from lab.scenario.gate import gate
    overrides = pairs(args.overrides, "--set", "PKG=VERSION")
    return gate(_lab(args), args.base, overrides, args.scenario, args.scenarios_dir)


def cmd_break(args) -> int:
    from lab.scenario import catalog, workshop
    from lab.scenario.params import check
    scenario = catalog.get(args.scenario)
    asked = check(scenario, pairs(args.param, "--param", "KEY=VALUE"))   # before anything boots
    params = {**check(scenario, scenario.workshop_params), **asked}
    guide_target, guide_variant = scenario.guide_form(args.backend)
    target = args.target or guide_target
    variant = args.variant if args.variant is not None else guide_variant
    scenario.variant_params(variant)
    targets.runnable(target)
    workshop.can_break(scenario)
    if variant != guide_variant or asked:
        console().print(f"[yellow]the guide describes {f'variant {guide_variant}' if guide_variant else 'the plain form'}"
                        " with the default parameters: this node may show other figures[/yellow]")
    lab = _lab(args)
    report = workshop.break_node(lab, scenario, target, params, variant)
    if not report.get("kept"):
        console().print(f"[yellow]the node did not break ({report['verdict']}: {report['verdict_reason']}); it was "
                        f"removed. Report: {report['report_file']}[/yellow]")
        return 1
    from lab.scenario import guide as guides
    node = lab.node(report["kept"]["node"])
    guide = guides.parse(scenario.guide)
    print(f"node {node.name} is broken: {report['verdict_reason']}\n"
          f"a shell on it:  {shlex.join(node.login_argv())}\n"
          f"kubectl:        export KUBECONFIG={lab.control_plane().kubeconfig} NODE={node.name} "
          f"NAMESPACE={report['kept']['namespace']}\n"
          f"the guide:      {scenario.guide}  ({guide.title}; {len(guide.steps)} steps)\n"
          f"then:           `nodelab hint` for a hint, `nodelab check` once you have repaired it, "
          f"`nodelab reset` to end")
    return 0


def cmd_check(args) -> int:
    from lab.scenario import catalog, workshop
    from lab.scenario.evidence import RECOVERY, STEADY
    ex = workshop.require()
    repaired, seen = workshop.check(Lab(say=say, backend=ex["backend"]), catalog.get(ex["scenario"]))
    for o in seen:
        if o.kind in (RECOVERY, STEADY):
            print(f"{'fixed    ' if o.seen else 'NOT FIXED'} {o.name}: {o.summary}")
    print(f"{ex['node']}: " + ("repaired" if repaired else "not repaired yet (`nodelab hint` helps)"))
    return 0 if repaired else 1


def cmd_hint(args) -> int:
    from lab.scenario import workshop
    number, count, text = workshop.hint()
    print(f"hint {number} of {count}: {text}")
    return 0


def cmd_reset(args) -> int:
    from lab.scenario import catalog, workshop
    ex = workshop.current()
    if ex is None:
        print("no exercise is under way")
        return 0
    print(workshop.reset(Lab(say=say, backend=ex["backend"]), catalog.get))
    return 0


COMMANDS = {"setup": cmd_setup, "doctor": cmd_doctor, "images": cmd_images, "box": cmd_box, "up": cmd_up,
            "status": cmd_status, "down": cmd_down, "run": cmd_run, "scenarios": cmd_scenarios,
            "report": cmd_report, "gate": cmd_gate,
            "break": cmd_break, "check": cmd_check, "hint": cmd_hint, "reset": cmd_reset}

if __name__ == "__main__":
    sys.exit(main())
