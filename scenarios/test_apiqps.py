"""Pods stay Pending in the API while their containers already run: kubelet's API QPS.

The incident ("6 entertaining system bugs", history 6): with many pods on a
node, `kubectl get pods` showed them Pending for minutes although `docker ps`
on the node showed their containers running. kubelet talks to the API server
through a client-side token bucket (`--kube-api-qps` 5 / `--kube-api-burst`
10, the defaults before 1.27); every pod status update (a GET and a PATCH of
pods/status) waits its turn behind the node's own status, its lease and the
other pods. The operators raised the limits to 30/40 (and the event limits
likewise) and "everything started to fly".

The lab does exactly that on one node: a burst of small pods (the lab's
busybox image, already on the node) bound to the node by name, all at once.
For every pod it records when the runtime started its container (docker's
StartedAt) and when the API server first showed it Running (a watch on the
host), and derives the lag between the two.

Steady state: node Ready, none of the scenario's pods, the kubelet's effective
limits read from its /configz (they decide the expected verdict: below the
article's 30/40 -> reproduces). Injection: the burst. Detection: the lag's
median, p95 and max, the peak number of pods Pending in the API while their
containers ran, kubelet's own request rate (its rest_client_requests_total),
pods/status PATCHes counted by the API server, and the client-side throttling
lines kubelet writes (client-go 1.20 logs a wait under 1 s at -v=3 only,
and each of kubelet's is, so the lab raises
the running kubelet's verbosity through its /debug/flags/v for the burst).
Recovery: the same burst after restarting kubelet with the article's flags;
the lag collapses. Both distributions go side by side into the report.
"""

import time

from lab.cluster import workload
from lab.fixtures import podburst
from lab.errors import LabError
from lab.scenario.evidence import EVIDENCE, FIX, INJECTION, RECOVERY, SYMPTOM
from lab.scenario.record import IMMUNE, REPRODUCES, BugRecord, Fix
from lab.scenario.context import Context
from lab.scenario.definition import Scenario
from lab.scenario.params import Setting

RECORD = BugRecord(
    id="kubelet-api-qps",
    title="pods show Pending in the API while their containers run: kubelet's client rate limit",
    component="kubelet",
    mechanism="kubelet's API client is rate limited (kubeAPIQPS/kubeAPIBurst, 5/10 before 1.27); each pod status "
              "update waits its turn behind the node's status, its lease and the other pods, so when tens of pods "
              "start on one node the API server learns late that their containers run",
    references=(
        "kubernetes PR #116121 (1.27: kubeAPIQPS/kubeAPIBurst default to 50/100)",
        "kubelet flags --kube-api-qps, --kube-api-burst, --event-qps, --event-burst",
        "6 entertaining system bugs, history 6 (raised to 30/40)",
    ),
    affected="a kubelet whose kubeAPIQPS/kubeAPIBurst are below 30/40 (the defaults 5/10 before 1.27) with tens "
             "of pods starting on one node",
    fixes=(Fix("1.27", "kubelet 1.27 defaults kubeAPIQPS/kubeAPIBurst to 50/100 (PR #116121)"),),
)

RAISED = ("--kube-api-qps=30", "--kube-api-burst=40", "--event-qps=30", "--event-burst=40")
ENOUGH = {"kubeAPIQPS": 30, "kubeAPIBurst": 40}      # the article's values
DEFAULTS = {
    "pods": Setting(60, "pods in one burst"),
    "burst_seconds": Setting(300, "how long a burst may take to show Running everywhere"),
    "lag_symptom_s": Setting(10, "median lag and trail both at or above this: the API trails the node (reproduces)"),
    "lag_fixed_s": Setting(5, "median lag and trail both at or below this: the API follows the node (immune)"),
}


class ApiQps(Scenario):
    name = "apiqps"
    record = RECORD
    defaults = DEFAULTS
    variants = {"default": {}, "raised": {"kubelet_flags": " ".join(RAISED)}}
    primary_runs = (("bookworm", "default"), ("bookworm", "raised"))
    # kubelet's client-side rate limiter does not care what the node is: on VMs only when asked (--target).
    primary_runs_on = {"qemu": ()}
    keyed_on_packages = False
    key_symptoms = ("pods-pending-while-running",)

    def expected(self, ctx: Context) -> tuple[str, str]:
        limits = _limits(ctx)
        ctx.scratch["limits"] = limits
        shown = ", ".join(f"{k} {v}" for k, v in limits.items())
        low = [k for k, floor in ENOUGH.items() if (limits.get(k) or 0) < floor]
        if low:
            return REPRODUCES, f"the kubelet's effective limits are {shown}: {', '.join(low)} below the " \
                               f"article's 30/40 (its /configz)"
        return IMMUNE, f"the kubelet's effective limits are {shown} (its /configz): at least the article's 30/40"

    # -- prepare ----------------------------------------------------------------
    def steady_state(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        running = workload.pod_containers_on_node(ctx.node, "qps-", exited=False)
        return {**super().steady_state(ctx),
                "no-burst-running": (not running, f"{running} containers of the scenario's pods running")}

    # -- inject and detect ----------------------------------------------------------
    def inject(self, ctx: Context) -> None:
        ctx.scratch["first"] = _burst(ctx, "qps-first-")

    def detect(self, ctx: Context) -> None:
        burst = ctx.scratch["first"].measure()
        # What recover compares the burst after the repair with (plain figures: a workshop's check reads them back)
        ctx.scratch["first_figures"] = {"median_s": burst.lag("median"), "triple": burst.triple(),
                                        "api_done_s": burst.api_done_s, "trail_s": burst.trail_s,
                                        "throttling_lines": burst.notes["throttling_lines"]}
        ctx.record_series("pod lag: API Running - runtime start", "s", burst.lag_points(), style="scatter")
        ctx.observe("burst-measured", EVIDENCE, burst.complete, burst.summary(), raw=burst.raw())
        _timings(ctx, "first", burst)
        if not burst.complete:
            return
        median, trail = burst.lag("median"), burst.trail_s
        if median >= ctx.setting("lag_symptom_s") and trail >= ctx.setting("lag_symptom_s"):
            ctx.observe("pods-pending-while-running", SYMPTOM, True,
                        f"median lag {median} s and the API's last Running {trail} s after the runtime's last "
                        f"start (both >= {ctx.setting('lag_symptom_s')} s): up to {burst.peak_pending} pods were "
                        f"Pending in the API while their containers ran")
            ctx.observe("kubelet-client-throttled", SYMPTOM, burst.notes["throttling_lines"] > 0,
                        f"kubelet logged {burst.notes['throttling_lines']} client-side throttling waits during the "
                        f"burst, the longest {burst.notes['throttling_max_s']} s; e.g. "
                        f"{burst.notes['throttling_examples']}")
        elif median <= ctx.setting("lag_fixed_s") and trail <= ctx.setting("lag_fixed_s"):
            ctx.observe("status-follows-runtime", FIX, True,
                        f"median lag {median} s, the API's last Running {trail} s after the runtime's last start "
                        f"(both <= {ctx.setting('lag_fixed_s')} s) with limits {ctx.scratch['limits']}; "
                        f"{burst.notes['throttling_lines']} client-side throttling waits logged")
        else:
            ctx.observe("lag-between-thresholds", EVIDENCE, True,
                        f"median lag {median} s / trail {trail} s: between {ctx.setting('lag_fixed_s')} and "
                        f"{ctx.setting('lag_symptom_s')} s, neither clearly trailing nor following")

    # -- repair and recover ---------------------------------------------------------------
    def repair(self, ctx: Context) -> None:
        # The article's remedy: restart kubelet with its API client limits raised.
        _clear(ctx)
        ctx.scratch["repaired_at"] = time.monotonic()
        ctx.lab.restart_kubelet(ctx.node, RAISED)
        ctx.scratch["repaired"] = f"kubelet restarted with {' '.join(RAISED)}"

    def recover(self, ctx: Context) -> None:
        # After the lab's restart, or (`nodelab check`) whatever a workshop participant did:
        # kubelet's limits as it reports them, then the same burst again.
        first = ctx.scratch["first_figures"]
        limits = {}

        def raised() -> bool:
            limits.update(_limits(ctx, answering=False))
            return all((limits.get(k) or 0) >= floor for k, floor in ENOUGH.items())

        took = ctx.until(raised, 90, every=2) and ctx.until(lambda: ctx.kube.condition(ctx.node.name).status == "True", 90)
        if "repaired_at" in ctx.scratch:
            ctx.timings["kubelet_restart_s"] = round(time.monotonic() - ctx.scratch["repaired_at"], 1)
        ctx.observe("kubelet-runs-with-raised-limits", RECOVERY, took,
                    f"{ctx.scratch.get('repaired', 'after the repair')}; its /configz now: {limits or 'no answer'} "
                    f"(the article's 30/40 needed)")
        if not took:
            return
        _clear(ctx)
        second = _burst(ctx, "qps-raised-").measure()
        _timings(ctx, "raised", second)
        median = second.lag("median")
        ratio = round(first["median_s"] / median, 1) if median else None
        ctx.timings["median_lag_ratio_default_to_raised"] = ratio
        collapsed = second.complete and median <= ctx.setting("lag_fixed_s") and \
            second.trail_s <= ctx.setting("lag_fixed_s")
        ctx.observe("lag-collapses-with-raised-limits", RECOVERY, collapsed,
                    f"the same burst with {limits}: lag median/p95/max {second.triple()} s against "
                    f"{first['triple']} s with {ctx.scratch['limits']} (median ratio {ratio}); all Running in the "
                    f"API {second.api_done_s} s after creation ({second.trail_s} s after the runtime) against "
                    f"{first['api_done_s']} s ({first['trail_s']} s); throttling waits logged "
                    f"{second.notes['throttling_lines']} against {first['throttling_lines']}", raw=second.raw())

    # -- verify and teardown ------------------------------------------------------------
    def verify(self, ctx: Context) -> None:
        _clear(ctx)   # the hypothesis then says whether their containers are gone

    def teardown(self, ctx: Context) -> None:
        for burst in ctx.scratch.get("bursts", []):
            burst.stop()


def _burst(ctx: Context, prefix: str) -> podburst.PodBurst:
    burst = podburst.PodBurst(ctx.kube, ctx.node, ctx.lab.sandbox_image, prefix, ctx.setting("pods"),
                              ctx.setting("burst_seconds")).create()
    ctx.scratch.setdefault("bursts", []).append(burst)
    ctx.observe(f"burst-{prefix.strip('-')}-created", INJECTION, True,
                f"{burst.count} pods bound to {ctx.node.name} created in {burst.created_s} s")
    return burst


def _timings(ctx: Context, label: str, burst: podburst.PodBurst) -> None:
    ctx.timings.update({f"{label}_lag_median_s": burst.lag("median"), f"{label}_lag_p95_s": burst.lag("p95"),
                        f"{label}_lag_max_s": burst.lag("max"), f"{label}_runtime_all_running_s": burst.runtime_done_s,
                        f"{label}_api_all_running_s": burst.api_done_s,
                        f"{label}_kubelet_requests_per_s": burst.notes["kubelet_requests_per_s"]})


def _limits(ctx: Context, answering: bool = True) -> dict:
    """The kubelet's effective limits; {} while it does not answer, unless it must."""
    try:
        config = ctx.kube.kubelet_config(ctx.node.name)
    except LabError:
        if answering:
            raise
        return {}
    return {k: config.get(k) for k in ("kubeAPIQPS", "kubeAPIBurst", "eventRecordQPS", "eventBurst")}


def _clear(ctx: Context) -> bool:
    """Delete the scenario's pods; True once none of their containers runs."""
    ctx.kube.delete_pods(podburst.SELECTOR)
    return ctx.until(lambda: workload.pod_containers_on_node(ctx.node, "qps-", exited=False) == 0, 180, every=2)


SCENARIO = ApiQps()
