"""pytest wiring for scenario modules: one test per module, made from its SCENARIO.

A scenario module holds no test function: for its `SCENARIO` the plugin
makes `test_<name>`, which runs the scenario and checks the observed verdict
against the expected one (and that the incident's detectors passed), with the same options for every scenario
(`--target`, `--variant`, `--param`), so no module can drop one.
Its runs: by default the scenario's primary runs (one affected, one fixed),
`--target NAME` (repeatable) to choose, `--target all` for the whole
matrix; likewise `--variant`. A target this host cannot run is skipped with
the exact reason; a missing prerequisite is never a pass.
"""

import pytest

from lab import backends
from lab.recipes import targets
from lab.errors import LabError
from lab.reports.console import explain, recap
from lab.scenario import params
from lab.scenario.definition import Scenario
from lab.progress import say
from lab.scenario.record import IMMUNE, INCONCLUSIVE, REPRODUCES
from lab.scenario.runner import run


def _scenario_test(lab, target, variant, params, request, record_property):
    """Run the module's scenario on one (target, variant) with the --params it
    declares; pass if the verdict is the expected one. Its verdict,
    expectation, report, page and timings become JUnit properties."""
    from lab.scenario.params import declared
    scenario = request.module.SCENARIO
    mine = {k: v for k, v in params.items() if k in declared(scenario)}
    reports = request.config.stash.setdefault(_REPORTS, [])
    check(lab, scenario, target, variant, mine, record=record_property, keep=reports.append)


def check(lab, scenario: Scenario, target: str, variant: str = "", params: dict | None = None,
          record=lambda name, value: None, keep=lambda report: None) -> dict:
    """The pytest body of every scenario: observed verdict == expected verdict.
    `record(name, value)` gets the run's key figures (pytest's record_property: JUnit properties);
    `keep(report)` the whole report (for --repeat's rates)."""
    report = run(lab, scenario, target, params, variant)
    keep(report)
    hung = "kernel_lockups" in report or "node_unanswering" in report
    if report["verdict"] == INCONCLUSIVE and hung:
        # The run reached no verdict while the VM under it hung (its own kernel said
        # so on its console, or it stopped answering SSH at all; both seen under
        # TCG): a step that failed, or a steady state that never held because the
        # node stopped answering, tells nothing of the bug, either way. One more
        # run on a fresh node, said here and in the JUnit properties; a second
        # fails. Never after a run that ended with a verdict (reproduces or
        # immune): that one stands.
        record("rerun_after_node_hung", report["report_file"])
        say(f"[yellow]{report['verdict_reason']}\nrunning {scenario.name} on {target} once more on a fresh node"
            f"[/yellow]")
        report = run(lab, scenario, target, params, variant)
        keep(report)
    expected = report.get("expected", {}).get("verdict")
    for name, value in (("verdict", report["verdict"]), ("expected", expected), ("target", target),
                        ("variant", variant), ("report", report["report_file"]), ("page", report.get("page")),
                        *((f"phase_{k}_s", p.get("seconds")) for k, p in report.get("phases", {}).items()),
                        *((k, v) for k, v in report.get("timings", {}).items() if isinstance(v, (int, float)))):
        record(name, value)
    for d in report.get("detectors", []):
        state = "passes" if d.get("passes") else "not judged" if d.get("passes") is None else "fails"
        record(f"detector_{d.get('reason', 'error')}", f"{state}: {d.get('why')}")
    assert expected in (REPRODUCES, IMMUNE), explain(report)
    assert report["verdict"] == expected, explain(report)
    # The incident's shipped detectors must have fired in the affected run
    # and cleared, and stayed quiet in the immune one (lab.scenario.detection).
    failing = [d for d in report.get("detectors", []) if d.get("passes") is False]
    assert not failing, explain(report)
    # A workshop guide must show on the broken node what it says it shows (lab.scenario.guide).
    guide = report.get("guide")
    if guide and not guide["checked"]:
        record("guide", f"not checked: {guide['why']}")
    elif guide:
        record("guide", f"{sum(c['ok'] for c in guide['commands'])}/{len(guide['commands'])} commands show "
                        f"what {guide['file']} says")
        wrong = [f"{c['where']}$ {c['script']}: missing {c['missing']} in:\n{c['output'][-1500:]}"
                 for c in guide["commands"] if not c["ok"]]
        assert not wrong, "the workshop guide does not match the broken node:\n" + "\n".join(wrong)
    return report


def pytest_pycollect_makeitem(collector, name, obj):
    if name == "SCENARIO" and isinstance(obj, Scenario):
        # Collected as if the module had defined test_<name> itself (pytest
        # finds a test's function on its module by name).
        test_name = f"test_{obj.name}"
        setattr(collector.obj, test_name, _scenario_test)
        return collector.ihook.pytest_pycollect_makeitem(collector=collector, name=test_name, obj=_scenario_test)
    return None


def pytest_addoption(parser):
    parser.addoption("--target", action="append", default=[],
                     help="target(s) to run scenarios on; 'all' for every target (default: primary runs)")
    parser.addoption("--variant", action="append", default=[],
                     help="scenario variant(s); 'all' for every variant (default: primary runs)")
    parser.addoption("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="scenario parameter, e.g. supercronic=/path/to/supercronic")
    parser.addoption("--backend", default="docker", help="what nodes are (default: docker)")
    parser.addoption("--repeat", type=int, default=1, metavar="N",
                     help="run each scenario run N times, each on a fresh node, and summarize the rates")


def pytest_generate_tests(metafunc):
    scenario = getattr(metafunc.module, "SCENARIO", None)
    if scenario is None or metafunc.function is not _scenario_test:
        return   # only the scenario tests this plugin makes are parametrized over runs
    chosen = metafunc.config.getoption("--target")
    if "all" in chosen:
        chosen = list(targets.TARGETS)
    for name in chosen:
        targets.get(name)   # unknown target: a clear error at collection
    variants = metafunc.config.getoption("--variant")
    if "all" in variants:
        variants = scenario.forms()
    # A scenario ignores a --variant it does not have (one without variants has only its one form).
    backend_name = metafunc.config.getoption("--backend")
    runs = scenario.runs(chosen or None, [v for v in variants if v in scenario.forms()] or None, backend_name)
    given = _given_params(metafunc.config)
    own = {k: v for k, v in given.items() if k in params.declared(scenario)}
    try:   # a bad value for one of this scenario's parameters: a usage error before anything boots
        params.check(scenario, own)
    except LabError as exc:
        metafunc.config.stash.setdefault(_PROBLEMS, []).append(str(exc))
    metafunc.config.stash.setdefault(_DECLARED, set()).update(params.declared(scenario))

    try:
        backend = backends.backend_class(backend_name)
    except LabError as exc:
        raise pytest.UsageError(str(exc)) from None
    cannot = backend.cannot_run(scenario.requires)

    repeat = metafunc.config.getoption("--repeat")
    if repeat < 1:
        raise pytest.UsageError("--repeat must be at least 1")

    def param(t: str, v: str, i: int):
        why = cannot or (f"target {t}: {backend.unavailable(targets.TARGETS[t])}"
                         if backend.unavailable(targets.TARGETS[t]) else None) or \
            scenario.cannot_run_on(t, {**scenario.variant_params(v), **own})
        ident = (f"{t}-{v}" if v else t) + (f"-r{i + 1}" if repeat > 1 else "")
        return pytest.param(t, v, id=ident, marks=[pytest.mark.skip(reason=why)] if why else [])

    if not runs:   # said, not pytest's "got empty parameter set"
        why = f"scenario {scenario.name} makes no primary run on the {backend_name} backend; ask with --target"
        metafunc.parametrize(("target", "variant"), [pytest.param("", "", id="none", marks=pytest.mark.skip(reason=why))])
        return
    metafunc.parametrize(("target", "variant"), [param(t, v, i) for t, v in runs for i in range(repeat)])


_DECLARED = pytest.StashKey[set]()
_REPORTS = pytest.StashKey[list]()
_PROBLEMS = pytest.StashKey[list]()


def _given_params(config) -> dict:
    try:
        return params.pairs(config.getoption("--param"), "--param", "KEY=VALUE")
    except LabError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_collection_modifyitems(session, config, items):
    """A --param that no collected scenario takes, or a value that does not fit
    one that does, is a usage error before any scenario runs, not silently ignored."""
    declared = config.stash.get(_DECLARED, None)
    if declared is None:
        return   # no scenario collected: nothing to check against
    problems = list(config.stash.get(_PROBLEMS, []))
    unknown = sorted(set(_given_params(config)) - declared)
    if unknown:
        problems.append(f"--param {', '.join(unknown)}: no collected scenario takes it; theirs: "
                        f"{', '.join(sorted(declared))}")
    if problems:
        raise pytest.UsageError("; ".join(dict.fromkeys(problems)))


def pytest_terminal_summary(terminalreporter, config):
    """Every scenario run of the session, a line each (and why, for one that
    missed its expected verdict: lab.reports.console.recap), last in the output,
    where a cut log still shows it; with --repeat N: how often each run gave its
    expected verdict, and the spread of its timings."""
    reports = config.stash.get(_REPORTS, [])
    if reports:
        terminalreporter.section("scenario runs")
        for report in reports:
            for line in recap(report):
                terminalreporter.write_line(line)
    if config.getoption("--repeat") < 2 or not reports:
        return
    from lab.reports import rates
    summaries = rates.summarize(reports)
    terminalreporter.section("reproduction rates")
    for summary in summaries:
        for line in rates.lines(summary):
            terminalreporter.write_line(line)
    terminalreporter.write_line(f"rates: {rates.write(summaries)}")


@pytest.fixture(name="params")
def params_fixture(request) -> dict:
    """--param KEY=VALUE options as a dict, for scenario tests."""
    return _given_params(request.config)


@pytest.fixture(scope="session")
def lab(request):
    """The lab, set up once per session. At the end, what the session created is
    removed, except the docker engine (`nodelab down` stops that); whatever
    existed before the session (a lab the user brought up) is left alone. The
    session holds the lab throughout: a second run on it waits (lab.owned.lablock)."""
    import os
    if os.geteuid() != 0:
        pytest.skip("scenarios need root (nodes, mounts, gdb on PID 1)")
    from lab.cluster.lab import Lab
    from lab.progress import say
    instance = Lab(say=say, backend=request.config.getoption("--backend"))
    instance.claim()   # another run on this lab: wait for it (lab.owned.lablock)
    try:
        before = {(r.kind, r.ref) for r in instance.state.resources()}
        try:
            instance.setup()
        except LabError as exc:
            pytest.fail(f"lab setup failed: {exc}", pytrace=False)
        yield instance
        instance.down(keep=lambda r: (r.kind, r.ref) in before or r.role == "dockerd")
    finally:
        instance.release()
