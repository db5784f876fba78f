"""A scenario: the incident as data (bug record, targets, variants, settings)
and its phases, which the runner calls in order (lab.scenario.runner)."""

import sys
from pathlib import Path

from lab.errors import LabError
from lab.scenario.context import Context
from lab.scenario.guide import guide_file
from lab.scenario.params import Option, Setting
from lab.scenario.record import BugRecord
from lab.recipes.targets import PRIMARY


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
    # Primary runs on another backend where they differ (backend -> runs): a
    # backend not named runs the primary runs; () makes none there unless
    # asked for with --target (nightly: `tox -e matrix-vm`).
    primary_runs_on: dict[str, tuple[tuple[str, str], ...]] = {}
    # False where the verdict hangs on a workload or kubelet setting, not on
    # the node's packages: the package regression gate has nothing to say then.
    keyed_on_packages: bool = True
    defaults: dict[str, Setting] = {}    # numeric settings a --param may override (Context.setting)
    # What `nodelab break` sets unless a --param says otherwise: a workshop's
    # symptom must last while a participant investigates (pulls: a slower path).
    workshop_params: dict = {}
    options: dict[str, Option] = {}      # parameters that are not numbers (lab.scenario.params)
    kubelet_flags: tuple[str, ...] = ()  # every run's; a variant or --param adds "kubelet_flags": "..."
    stand_ins: tuple[str, ...] = ()      # stand-ins in the causal chain, said in every report
    # Backend capabilities the chain needs (lab.backends.base.Capabilities);
    # on a backend without them the scenario is skipped, saying which.
    requires: tuple[str, ...] = ()
    # The symptom observations that make up the documented incident: all must
    # be seen for `reproduces`; part of them is an incomplete chain.
    key_symptoms: tuple[str, ...] = ()

    def kernel_args(self, params: dict) -> tuple[str, ...]:
        """Words for the node kernel's command line (a scenario that requires own_kernel may want some)."""
        return ()

    def cannot_run_on(self, target: str, params: dict) -> str:
        """Why this form of the scenario (its variant's and the user's parameters)
        cannot run on the target at all, said before anything boots; "" when it can."""
        return ""

    def expected(self, ctx: Context) -> tuple[str, str]:
        """(expected verdict, why), from what was read on the node (and the variant)."""
        return self.record.expected(ctx.environment["packages"])

    def variant_params(self, variant: str) -> dict:
        """The settings of a variant ("" is the scenario's only form when it has none)."""
        if variant and variant not in self.variants:
            raise LabError(f"scenario {self.name} has no variant {variant!r}; "
                           f"known: {', '.join(self.variants) or 'none'}")
        return dict(self.variants.get(variant, {}))

    def forms(self) -> list[str]:
        """Every form of the scenario: its primary runs' (which may be the plain "") and every variant."""
        return list(dict.fromkeys([v for _, v in self.runs()] + list(self.variants)))

    def runs(self, target_names: list[str] | None = None, variant_names: list[str] | None = None,
             backend: str = "docker") -> list[tuple[str, str]]:
        """The (target, variant) pairs to run: the primary runs (on `backend`)
        unless told; told only the targets, the primary runs' variants on them."""
        for v in variant_names or ():
            self.variant_params(v)
        if not target_names and not variant_names:
            if backend in self.primary_runs_on:
                return list(self.primary_runs_on[backend])
            if self.primary_runs:
                return list(self.primary_runs)
            return [(t, "") for t in self.primary_targets or PRIMARY]
        chosen_targets = target_names or list(dict.fromkeys(t for t, _ in self.runs()))
        chosen_variants = variant_names or list(dict.fromkeys(v for _, v in self.runs()))
        return [(t, v) for t in chosen_targets for v in chosen_variants]

    # How long the steady state may take to hold again after verify (the
    # runner re-checks it until then).
    settle_seconds: int = 60
    # Variants that are no test of the incident's shipped detector (detectors/),
    # with why: their runs report it, not judged.
    detector_unjudged: dict[str, str] = {}

    def steady_state(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        """The steady-state hypothesis (Chaos Toolkit's): named probes, each
        (holds, what was seen). The runner checks it after prepare, before the
        injection, and again after verify; a scenario adds its own probes to
        this one, which every scenario has."""
        cond = ctx.kube.condition(ctx.node.name)
        return {"node-ready": (cond.status == "True", f"Ready={cond.status} {cond.message}".strip())}

    @property
    def guide(self) -> Path | None:
        """The scenario's workshop guide (lab.scenario.guide), if it ships one."""
        module = getattr(sys.modules.get(type(self).__module__), "__file__", None)
        path = guide_file(module, self.name) if module else None
        return path if path and path.is_file() else None

    def guide_form(self, backend: str = "docker") -> tuple[str, str]:
        """(target, variant) that the guide describes and `nodelab break` makes
        by default: the scenario's first primary run on the backend."""
        return (self.runs(backend=backend) or self.runs())[0]

    def prepare(self, ctx: Context) -> None: ...
    def inject(self, ctx: Context) -> None: ...
    def detect(self, ctx: Context) -> None: ...

    def repair(self, ctx: Context) -> None:
        """The documented remedy, applied as an operator would by hand (what a
        workshop participant does instead). The runner calls it, then recover.
        A scenario with a guide keeps the two apart, so that `nodelab check` can
        observe a participant's repair with recover alone."""

    def recover(self, ctx: Context) -> None:
        """What the recovery must restore, observed (after repair)."""

    def verify(self, ctx: Context) -> None: ...
    def teardown(self, ctx: Context) -> None: ...

    def release(self, lab) -> None:
        """Stop what the scenario runs beside the nodes, on the lab's side (a
        registry, a relay). The runner calls it after teardown, and `nodelab
        reset` also when the exercise's node is already gone."""
