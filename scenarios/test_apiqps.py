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
lines kubelet writes (client-go 1.20 logs them at -v=3 only, so the lab raises
the running kubelet's verbosity through its /debug/flags/v for the burst).
Recovery: the same burst after restarting kubelet with the article's flags;
the lag collapses. Both distributions go side by side into the report.
"""

import re
import statistics
import time

from lab import timefmt
from lab.cluster import workload
from lab.errors import LabError
from lab.polling import until
from lab.scenario.evidence import EVIDENCE, FIX, INJECTION, RECOVERY, STEADY, SYMPTOM
from lab.scenario.record import IMMUNE, REPRODUCES, BugRecord, Fix
from lab.scenario.context import Context
from lab.scenario.definition import Scenario

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
SELECTOR = "nodelab.scenario=apiqps"
# client-go's words for a request held back by its token bucket (1.20; newer).
THROTTLED = re.compile(r"Throttling request took (\S+),|Waited for (\S+) due to client-side throttling")
DEFAULTS = {
    "pods": 60,              # pods in one burst
    "burst_seconds": 300,    # how long a burst may take to show Running everywhere
    # Median lag (runtime start -> API Running) and the trail of the whole
    # burst (runtime's last start -> API's last Running), both at or above:
    # the API trails the node; both at or below lag_fixed_s: it follows.
    "lag_symptom_s": 10,
    "lag_fixed_s": 5,
}


class ApiQps(Scenario):
    name = "apiqps"
    record = RECORD
    defaults = DEFAULTS
    variants = {"default": {}, "raised": {"kubelet_flags": " ".join(RAISED)}}
    primary_runs = (("bookworm", "default"), ("bookworm", "raised"))
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
    def prepare(self, ctx: Context) -> None:
        cond = ctx.kube.condition(ctx.node.name)
        leftovers = ctx.kube.pods(SELECTOR)
        ctx.observe("node-ready-no-burst", STEADY, cond.status == "True" and not leftovers,
                    f"Ready={cond.status}; {len(leftovers)} of the scenario's pods present; kubelet limits "
                    f"{ctx.scratch['limits']}")

    # -- inject and detect ----------------------------------------------------------
    def inject(self, ctx: Context) -> None:
        ctx.scratch["first"] = _Burst(ctx, "qps-first-").create()

    def detect(self, ctx: Context) -> None:
        burst = ctx.scratch["first"].measure()
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

    # -- recover --------------------------------------------------------------------
    def recover(self, ctx: Context) -> None:
        first = ctx.scratch["first"]
        _clear(ctx)
        t0 = time.monotonic()
        ctx.lab.restart_kubelet(ctx.node, RAISED)
        took = until(lambda: _limits(ctx, answering=False).get("kubeAPIQPS") == 30, 90, every=2)
        until(lambda: ctx.kube.condition(ctx.node.name).status == "True", 90)
        limits = _limits(ctx)
        ctx.timings["kubelet_restart_s"] = round(time.monotonic() - t0, 1)
        ctx.observe("kubelet-restarted-with-raised-limits", EVIDENCE, took,
                    f"kubelet restarted with {' '.join(RAISED)}; its /configz now: {limits}")
        if not took:
            raise LabError(f"kubelet did not come back with the raised limits: {limits}")
        second = _Burst(ctx, "qps-raised-").create().measure()
        _timings(ctx, "raised", second)
        median = second.lag("median")
        ratio = round(first.lag("median") / median, 1) if median else None
        ctx.timings["median_lag_ratio_default_to_raised"] = ratio
        collapsed = second.complete and median <= ctx.setting("lag_fixed_s") and \
            second.trail_s <= ctx.setting("lag_fixed_s")
        ctx.observe("lag-collapses-with-raised-limits", RECOVERY, collapsed,
                    f"the same burst with {' '.join(RAISED)}: lag median/p95/max {_triple(second)} s against "
                    f"{_triple(first)} s with {ctx.scratch['limits']} (median ratio {ratio}); all Running in the "
                    f"API {second.api_done_s} s after creation ({second.trail_s} s after the runtime) against "
                    f"{first.api_done_s} s ({first.trail_s} s); throttling waits logged "
                    f"{second.notes['throttling_lines']} against {first.notes['throttling_lines']}", raw=second.raw())

    # -- verify and teardown ------------------------------------------------------------
    def verify(self, ctx: Context) -> None:
        cleared = _clear(ctx)
        cond = ctx.kube.condition(ctx.node.name)
        ctx.observe("steady-after", STEADY, cleared and cond.status == "True",
                    f"the scenario's pods deleted and their containers {'gone' if cleared else 'NOT gone'}; "
                    f"Ready={cond.status}")

    def teardown(self, ctx: Context) -> None:
        for burst in ctx.scratch.get("bursts", []):
            burst.stop()
        ctx.kube.delete_pods(SELECTOR)


class _Burst:
    """One burst of pods on the node, and what the runtime and the API said of it."""

    def __init__(self, ctx: Context, prefix: str):
        self.ctx, self.prefix, self.count = ctx, prefix, ctx.setting("pods")
        self.started: dict[str, float] = {}     # runtime: container started (epoch s)
        self.running: dict[str, float] = {}     # API: first seen Running (epoch s)
        self.notes: dict = {}

    def create(self) -> "_Burst":
        ctx = self.ctx
        self.requests_before = _kubelet_requests(ctx)
        self.patches_before = _status_patches(ctx)
        self.verbosity = ctx.kube.set_kubelet_verbosity(ctx.node.name, 3)
        self.journal_since = ctx.node.run(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
        self.watch = ctx.kube.watch_running(f"{SELECTOR},nodelab.burst={self.prefix.strip('-')}")
        ctx.scratch.setdefault("bursts", []).append(self)
        self.t0 = time.time()
        for i in range(self.count):
            ctx.kube.create_pod(workload.pod(f"{self.prefix}{i:03d}", ctx.node.name, ctx.lab.sandbox_image,
                                             "sleep 3600", labels={"nodelab.scenario": "apiqps",
                                                                   "nodelab.burst": self.prefix.strip("-")}))
        self.created_s = round(time.time() - self.t0, 2)
        ctx.observe(f"burst-{self.prefix.strip('-')}-created", INJECTION, True,
                    f"{self.count} pods bound to {ctx.node.name} created in {self.created_s} s")
        return self

    def measure(self) -> "_Burst":
        ctx = self.ctx
        until(lambda: len(self.watch.running) >= self.count, ctx.setting("burst_seconds"))
        self.stop()
        self.started = workload.started_on_node(ctx.node, self.prefix)
        self.running = dict(self.watch.running)
        seconds = time.time() - self.t0
        self.notes["kubelet_requests_per_s"] = round((_kubelet_requests(ctx) - self.requests_before) / seconds, 1)
        self.notes["status_patches"] = int(_status_patches(ctx) - self.patches_before)
        ctx.kube.set_kubelet_verbosity(ctx.node.name, 1)
        throttled = ctx.node.run(f"journalctl -u kubelet --since '{self.journal_since}' --no-pager -o cat | "
                                 f"grep -E 'Throttling request took|due to client-side throttling'", check=False).stdout
        lines = throttled.splitlines()
        self.notes["throttling_lines"] = len(lines)
        waits = [timefmt.go_duration(m.group(1) or m.group(2)) for m in map(THROTTLED.search, lines) if m]
        self.notes["throttling_max_s"] = round(max(waits), 2) if waits else None
        self.notes["throttling_examples"] = [" ".join(line.split())[:200] for line in lines[:: max(1, len(lines) // 3)][:3]]
        self.notes["watch_breaks"] = self.watch.breaks
        self.notes["verbosity"] = self.verbosity
        return self

    def stop(self) -> None:
        self.watch.stop()

    @property
    def complete(self) -> bool:
        return len(self.started) == self.count and len(self.running) == self.count

    @property
    def lags(self) -> list[float]:
        return sorted(self.running[p] - self.started[p] for p in self.started if p in self.running)

    def lag(self, which: str) -> float | None:
        lags = self.lags
        if len(lags) < 2:
            return None
        value = {"median": statistics.median(lags), "p95": statistics.quantiles(lags, n=20)[-1],
                 "max": lags[-1]}[which]
        return round(value, 1)

    @property
    def runtime_done_s(self) -> float | None:
        return round(max(self.started.values()) - self.t0, 1) if self.started else None

    @property
    def api_done_s(self) -> float | None:
        return round(max(self.running.values()) - self.t0, 1) if self.running else None

    @property
    def trail_s(self) -> float | None:
        """How long after the runtime's last container start the API showed the last pod Running."""
        done = (self.runtime_done_s, self.api_done_s)
        return round(done[1] - done[0], 1) if None not in done else None

    @property
    def peak_pending(self) -> int:
        """Most pods at one moment whose containers ran while the API still said Pending."""
        moments = sorted([(t, 1) for t in self.started.values()] + [(t, -1) for t in self.running.values()])
        peak = now = 0
        for _, step in moments:
            now += step
            peak = max(peak, now)
        return peak

    def summary(self) -> str:
        return (f"{len(self.started)}/{self.count} containers running on the node after {self.runtime_done_s} s, "
                f"{len(self.running)}/{self.count} Running in the API after {self.api_done_s} s; lag "
                f"median/p95/max {_triple(self)} s; peak {self.peak_pending} pods Pending while running; kubelet "
                f"{self.notes['kubelet_requests_per_s']} API requests/s, {self.notes['status_patches']} pods/status "
                f"PATCHes at the API server; {self.notes['throttling_lines']} client-side throttling lines "
                f"(e.g. {self.notes['throttling_examples'][:1]})")

    def raw(self) -> str:
        rows = [f"{p} started {self.started[p] - self.t0:.2f} api-running "
                f"{(self.running[p] - self.t0) if p in self.running else float('nan'):.2f}" for p in sorted(self.started)]
        return "\n".join(rows + [f"notes {self.notes}"])


def _triple(burst: _Burst) -> str:
    return "/".join(str(burst.lag(k)) for k in ("median", "p95", "max"))


def _timings(ctx: Context, label: str, burst: _Burst) -> None:
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


def _kubelet_requests(ctx: Context) -> float:
    return sum(v for k, v in ctx.kube.kubelet_metrics(ctx.node.name).items() if k.startswith("rest_client_requests_total{"))


def _status_patches(ctx: Context) -> float:
    return sum(v for k, v in ctx.kube.metrics().items()
               if k.startswith("apiserver_request_total{") and 'resource="pods"' in k and 'subresource="status"' in k
               and 'verb="PATCH"' in k)


def _clear(ctx: Context) -> bool:
    """Delete the scenario's pods; True once none of their containers runs."""
    ctx.kube.delete_pods(SELECTOR)
    return until(lambda: workload.pod_containers_on_node(ctx.node, "qps-", exited=False) == 0, 180, every=2)


SCENARIO = ApiQps()
