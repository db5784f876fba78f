"""Workshops: guides parse and are checked against a node; break keeps the node
broken, check observes a participant's repair with the scenario's own recover
(never its repair), hint reveals the guide's hints in turn, reset tears down."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.errors import LabError
from lab.scenario import catalog, runner, workshop
from lab.scenario import guide as guides
from lab.scenario.definition import Scenario
from lab.scenario.evidence import INJECTION, RECOVERY, SYMPTOM
from lab.scenario.record import BROKEN, REPRODUCES, BugRecord
from tests.test_npd import LocalNode

GUIDE = """\
# Drill: a flag file

The node has a flag file; the story goes like this.

## 1. Look at the flag
```sh node
cat "$FLAG"
```
expect: `broken`

## 2. The cluster's view
```sh host
echo "node $NODE in $NAMESPACE"
```
expect: `node drill-1 in ns-1`

## Repair
```sh node
echo fixed > "$FLAG"
```

## Hints
- Read the flag.
- Write to it:
  `fixed` is the word.
"""


def test_every_shipped_guide_parses_with_steps_a_repair_and_hints():
    shipped = {name: s.guide for name, s in catalog.shipped().items() if s.guide}
    assert "cookie" in shipped
    for name, path in shipped.items():
        guide = guides.parse(path)
        assert guide.title and guide.story, name
        assert all(step.commands for step in guide.steps), f"{name}: a step without a command"
        assert any(c.expect for step in guide.steps for c in step.commands), f"{name}: nothing is checked"
        assert guide.repair and guide.hints, name


def test_no_shipped_guide_expects_what_its_own_command_prints_regardless():
    # An expected text printed by an unconditional echo would pass whatever the node shows;
    # one printed by `[ test ] && echo` depends on what was found.
    for name, scenario in catalog.shipped().items():
        if not scenario.guide:
            continue
        for step in guides.parse(scenario.guide).steps:
            for command in step.commands:
                for line in command.script.splitlines():
                    if line.lstrip().startswith(("echo ", "printf ")):
                        echoed = [e for e in command.expect if e in line]
                        assert not echoed, f"{name}, {step.title}: {echoed} is printed by `{line.strip()}` itself"


def test_what_break_sets_for_a_workshop_is_a_parameter_of_the_scenario_within_its_bounds():
    from lab.scenario.params import check
    for name, scenario in catalog.shipped().items():
        assert check(scenario, scenario.workshop_params) == scenario.workshop_params, name
    assert catalog.get("pulls").workshop_params["slow_kib_per_s"] < catalog.get("pulls").defaults["slow_kib_per_s"].default


def test_a_guide_parses_into_steps_repair_and_hints(tmp_path):
    (tmp_path / "drill.md").write_text(GUIDE)
    guide = guides.parse(tmp_path / "drill.md")
    assert guide.title == "Drill: a flag file" and guide.story.startswith("The node has a flag file")
    assert [s.title for s in guide.steps] == ["1. Look at the flag", "2. The cluster's view"]
    assert guide.steps[0].commands == [guides.Command("node", 'cat "$FLAG"', ("broken",))]
    assert guide.repair == [guides.Command("node", 'echo fixed > "$FLAG"')]
    assert guide.hints == ["Read the flag.", "Write to it: `fixed` is the word."]


@pytest.mark.parametrize("text,error", [
    ("# T\n\n## s\n```sh node\ntrue\n", "never closed"),
    ("# T\n\n## s\n```sh node\ntrue\n```\nexpect: nothing quoted\n## Repair\n```sh node\ntrue\n```\n",
     "names no `text`"),
    ("# T\n\n## s\n```sh node\ntrue\n```\n", "## Repair"),
    ("# T\n\n## s\n```sh node\ntrue\n```\n\nexpect: `x`\n## Repair\n```sh node\ntrue\n```\n", "right after"),
])
def test_a_malformed_guide_is_refused_with_where(tmp_path, text, error):
    (tmp_path / "g.md").write_text(text)
    with pytest.raises(ValueError, match=error):
        guides.parse(tmp_path / "g.md")


def test_checking_a_guide_runs_each_command_where_it_says_and_names_what_is_missing(tmp_path, monkeypatch):
    (tmp_path / "drill.md").write_text(GUIDE)
    flag = tmp_path / "flag"
    flag.write_text("broken\n")
    monkeypatch.setenv("FLAG", str(flag))
    guide = guides.parse(tmp_path / "drill.md")
    checked = guides.check(guide, LocalNode(), {"NODE": "drill-1", "NAMESPACE": "ns-1"})
    assert [(c.where, c.ok) for c in checked] == [("node", True), ("host", True)]
    assert flag.read_text() == "broken\n"   # the repair is never run by the check
    flag.write_text("fine\n")
    checked = guides.check(guide, LocalNode(), {"NODE": "drill-2", "NAMESPACE": "ns-1"})
    assert [c.missing for c in checked] == [["broken"], ["node drill-1 in ns-1"]]
    assert "node drill-2 in ns-1" in checked[1].output


# -- break, check, hint, reset on a lab of fakes --------------------------------------
class Drill(Scenario):
    """Broken while the flag file says so; the repair writes `fixed`."""
    name = "drill"
    record = BugRecord("drill", "a flag file says broken", "none", "a test's own", (), "always")
    primary_targets = ("bookworm",)
    variants = {"other": {}}

    def __init__(self, guide_path: Path, flag: Path):
        self._guide, self.flag = guide_path, flag
        self.repairs = 0

    @property
    def guide(self):
        return self._guide

    def expected(self, ctx):
        return REPRODUCES, "a drill"

    def prepare(self, ctx):
        ctx.scratch["fixed_word"] = "fixed"   # what prepare leaves for recover, written down with the exercise
        ctx.scratch["live_object"] = object()  # a live object is not

    def inject(self, ctx):
        self.flag.write_text("broken\n")
        ctx.observe("flag-set", INJECTION, True, "flag says broken")

    def detect(self, ctx):
        ctx.observe("flag-broken", SYMPTOM, "broken" in self.flag.read_text(), self.flag.read_text().strip())

    def repair(self, ctx):
        self.repairs += 1
        self.flag.write_text("fixed\n")

    def recover(self, ctx):
        word = ctx.scratch["fixed_word"]
        ctx.observe("flag-fixed", RECOVERY, ctx.until(lambda: word in self.flag.read_text(), 60, every=0.1),
                    self.flag.read_text().strip())


class FakeKube:
    def __init__(self, namespace="default"):
        self.namespace = namespace

    def condition(self, node, kind="Ready"):
        return SimpleNamespace(status="True", message="")

    def create_namespace(self): ...
    def delete_namespace(self): ...
    def pods_on(self, node): return []


class FakeLab:
    def __init__(self, tmp_path):
        self.lockups, self.silent, self.asked = [], "", []
        self.backend = SimpleNamespace(name="fake", collect_logs=lambda node, d: [], sandbox_image=lambda: "busybox",
                                       cannot_run=lambda required: None, kernel_lockups=lambda node: self.lockups,
                                       unanswering=lambda node: self.asked.append(node.name) or self.silent)
        self.sandbox_image = None
        self.nodes, self.removed = {}, []
        self.kubeconfig = tmp_path / "kubeconfig"

    def up(self, target, count, **kwargs):
        node = LocalNode()
        node.name, node.target = "drill-1", target
        self.nodes[node.name] = node
        return [node]

    def node(self, name):
        if name not in self.nodes:
            raise LabError(f"no node {name}")
        return self.nodes[name]

    def ground(self):
        return self.backend

    def kube(self, namespace="default"):
        return FakeKube(namespace)

    def control_plane(self):
        return SimpleNamespace(kubeconfig=self.kubeconfig)

    def remove_node(self, node):
        self.removed.append(node.name)
        self.nodes.pop(node.name, None)


@pytest.fixture
def drill(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "report_environment", lambda lab, node: {"packages": {}})
    (tmp_path / "drill.md").write_text(GUIDE)
    flag = tmp_path / "flag"
    monkeypatch.setenv("FLAG", str(flag))
    return Drill(tmp_path / "drill.md", flag), FakeLab(tmp_path)


def test_a_run_checks_the_guide_on_the_broken_node_then_repairs_and_recovers(drill):
    scenario, lab = drill
    report = runner.run(lab, scenario, "bookworm")
    assert report["verdict"] == REPRODUCES and scenario.repairs == 1 and lab.removed == ["drill-1"]
    # The guide ran while the node was broken (the flag said so), before the repair.
    assert report["guide"]["ok"] is False   # step 2 expects node drill-1 in ns-1, the run's namespace differs
    assert [c["ok"] for c in report["guide"]["commands"]] == [True, False]
    assert "guide" in report["phases"]


def test_a_run_on_a_node_whose_kernel_locked_up_says_so_in_its_verdict(drill, monkeypatch):
    scenario, lab = drill
    lab.lockups = [f"[  13{i}.6] watchdog: BUG: soft lockup - CPU#1 stuck for 2{i}s! [runc:1590]" for i in range(8)]
    # A verdict the run reached stands, with the lockup said beside it.
    report = runner.run(lab, scenario, "bookworm")
    assert report["verdict"] == REPRODUCES and report["verdict_reason"].endswith(
        "; beware: the node's own kernel locked up (8 console lines, the first: "
        "[  130.6] watchdog: BUG: soft lockup - CPU#1 stuck for 20s! [runc:1590])")

    def hung(ctx):
        raise LabError("wave 1: a pod did not complete in 200 s")
    monkeypatch.setattr(scenario, "inject", hung)
    report = runner.run(lab, scenario, "bookworm")
    assert report["verdict"] == "inconclusive" and lab.removed == ["drill-1", "drill-1"]
    assert report["verdict_reason"].startswith("the node's own kernel locked up (8 console lines, the first: "
                                               "[  130.6] watchdog: BUG: soft lockup")
    assert report["verdict_reason"].endswith("the run failed: LabError: wave 1: a pod did not complete in 200 s")
    assert report["kernel_lockups"] == {"count": 8, "first": lab.lockups[:runner.KEPT_LOCKUP_LINES]}
    # Without a lockup, the same failure is only that.
    lab.lockups = []
    report = runner.run(lab, scenario, "bookworm")
    assert report["verdict_reason"].startswith("the run failed") and "kernel_lockups" not in report
    assert "node_unanswering" not in report and lab.asked == ["drill-1"]
    # A machine that froze without a word on its console is said to have stopped answering.
    lab.silent = "drill-1 did not run `true` within 30 s over SSH (ssh: no answer); its console's last kernel line: none"
    report = runner.run(lab, scenario, "bookworm")
    assert report["node_unanswering"] == lab.silent
    assert report["verdict_reason"].startswith(f"the node's machine stopped answering ({lab.silent}); the run failed")
    # A run that reached a verdict is not asked.
    monkeypatch.delattr(scenario, "inject")   # the class's own again
    asked = len(lab.asked)
    assert runner.run(lab, scenario, "bookworm")["verdict"] == REPRODUCES and len(lab.asked) == asked


def test_a_form_the_guide_does_not_describe_has_its_guide_reported_not_checked(drill):
    scenario, lab = drill
    report = runner.run(lab, scenario, "bookworm", variant="other")
    assert report["verdict"] == REPRODUCES and report["guide"]["checked"] is False
    assert "the guide describes the plain form with the default parameters; this run is variant other" in \
        report["guide"]["why"]


def test_break_keeps_the_node_broken_and_check_observes_without_repairing(drill, monkeypatch):
    scenario, lab = drill
    report = workshop.break_node(lab, scenario, "bookworm", {}, "")
    assert report["verdict"] == BROKEN and "flag-broken" in report["verdict_reason"]
    assert report["kept"]["node"] == "drill-1" and lab.removed == [] and scenario.repairs == 0
    assert report["kept"]["scratch"] == {"fixed_word": "fixed"}
    assert "guide" not in report   # the participant runs it
    with pytest.raises(LabError, match="an exercise is under way \\(drill on node drill-1\\)"):
        workshop.break_node(lab, scenario, "bookworm", {}, "")

    monkeypatch.setattr(workshop, "CHECK_PATIENCE_S", 1)   # a check of a node still broken answers in a second here
    repaired, seen = workshop.check(lab, scenario)
    assert not repaired and scenario.repairs == 0 and "broken" in scenario.flag.read_text()
    # The first missing sign ends the check: the steady state after it is not waited for.
    assert [(o.name, o.seen) for o in seen] == [("flag-fixed", False)]

    scenario.flag.write_text("fixed\n")   # the participant's repair
    repaired, seen = workshop.check(lab, scenario)
    assert repaired and scenario.repairs == 0
    assert [(o.name, o.seen) for o in seen] == [("flag-fixed", True), ("node-ready-after", True)]

    assert workshop.hint()[::2] == (1, "Read the flag.")
    assert workshop.hint() == (2, 2, "Write to it: `fixed` is the word.")
    assert workshop.hint()[0] == 2   # the last one again

    assert workshop.reset(lab, lambda name: scenario) == "removed node drill-1 and namespace " + \
        report["kept"]["namespace"]
    assert lab.removed == ["drill-1"] and workshop.current() is None
    with pytest.raises(LabError, match="no exercise is under way"):
        workshop.check(lab, scenario)


def test_break_refuses_a_scenario_without_a_guide(drill):
    scenario, lab = drill
    scenario._guide = None
    with pytest.raises(LabError, match="scenario drill has no workshop guide yet"):
        workshop.break_node(lab, scenario, "bookworm", {}, "")


def test_a_node_that_did_not_break_is_not_kept(drill):
    scenario, lab = drill
    scenario.detect = lambda ctx: None   # nothing seen: an immune node
    released = []
    scenario.release = released.append
    report = workshop.break_node(lab, scenario, "bookworm", {}, "")
    assert "kept" not in report and lab.removed == ["drill-1"] and workshop.current() is None
    assert released == [lab]   # torn down as a run is, what ran beside the node included



def test_reset_forgets_an_exercise_whose_node_is_gone_and_releases_what_runs_beside_it(drill):
    scenario, lab = drill
    released = []
    scenario.release = released.append
    workshop.break_node(lab, scenario, "bookworm", {}, "")
    assert released == []     # a kept exercise keeps what runs beside its node
    lab.nodes.clear()   # e.g. removed by hand
    assert workshop.reset(lab, lambda name: scenario).startswith("forgot the exercise (the exercise's node drill-1 "
                                                                  "is gone")
    assert workshop.current() is None and released == [lab]


def test_reset_with_the_node_gone_forgets_the_exercise_even_when_nothing_can_be_released(drill):
    scenario, lab = drill
    workshop.break_node(lab, scenario, "bookworm", {}, "")
    lab.nodes.clear()

    def unknown(name):
        raise LabError(f"unknown scenario '{name}'")   # e.g. renamed since the exercise began
    said = workshop.reset(lab, unknown)
    assert said.startswith("forgot the exercise") and "`nodelab down` stops it" in said
    assert workshop.current() is None


def test_a_release_that_fails_still_leaves_no_node_or_namespace(drill):
    scenario, lab = drill
    scenario.detect = lambda ctx: None   # an immune node: torn down at once

    def release(lab):
        raise LabError("the relay would not stop")
    scenario.release = release
    with pytest.raises(LabError, match="the relay would not stop"):
        workshop.break_node(lab, scenario, "bookworm", {}, "")
    assert lab.removed == ["drill-1"] and workshop.current() is None
