"""A non-reaping cron PID 1 piles up `curl` zombies until the node has no PIDs left.

The incident ("6 entertaining system bugs", history 1): a pod runs supercronic
as PID 1; every job starts `curl` in the background and exits. The curls are
orphaned, re-parented to the container's PID 1, and, when they exit, never
reaped: supercronic <= 0.2.30 waits for its job's own process only. Zombies
keep their PIDs; the PID space fills; dockerd/containerd fail with
`runtime/cgo: pthread_create failed: ...` and docker "freezes".

The lab runs that workload for real: the job is `/bin/sh -c` starting the
target's own curl (from the node's packages, put in an image made on the node)
against a slow HTTP endpoint the lab serves on its network, so each curl lives
a few seconds and outlives its shell. PID 1 is supercronic -- a stand-in with
supercronic 0.2.30's waiting behaviour unless `--param supercronic=PATH` (with
`--param supercronic_version=X.Y.Z`) brings the real one -- or, in the `tini`
variant, tini/docker-init from the target's packages with the same runner
below it.

Fast-forward without touching the host: the node's PID capacity is lowered
to a few thousand (per-namespace kernel.pid_max where the kernel has it, the
node container's pids cgroup otherwise; lab/nodetools/pidspace.py), so the
months of the incident take a minute or two.

Steady state: node Ready, PIDs in use at their baseline, a new pod starts.
Detection (read from the host's /proc and cgroupfs, which keep working when
the node cannot fork): zombies under the cron PID 1 and their rate; PIDs in
use against the capacity; the first fork/thread failure in the runtime's and
kubelet's journals; a new pod failing to start. Immune (tini): zombies stay
flat while orphans keep arriving under PID 1 for a sustained window.
Recovery, both ways the source names: delete the cron pod (zombies vanish,
PIDs back to baseline, new pods start), then the same workload under tini
(zombies stay flat). When the runtime stays wedged once the PIDs are back
(seen in some runs: lab.nodetools.runtime.serving_again says how), the lab
restarts containerd, docker and kubelet, as an operator would, and reports it
(evidence `daemons-wedged-after-exhaustion`).
"""

import os
import signal
import time

from lab.cluster import workload
from lab.nodetools import pidspace, procs, runtime
from lab.errors import LabError
from lab.scenario.evidence import EVIDENCE, FIX, INJECTION, RECOVERY, STEADY, SYMPTOM
from lab.scenario.record import IMMUNE, INCONCLUSIVE, REPRODUCES, BugRecord, Fix
from lab.scenario.context import Context
from lab.scenario.definition import Scenario
from lab.scenario.params import Option, Setting
from lab.fixtures import cronpod
from lab.fixtures.slowhttp import SlowEndpoint

RECORD = BugRecord(
    id="supercronic-zombie-flood",
    title="zombie curl flood under a non-reaping cron PID 1 exhausts the node's PIDs",
    component="supercronic",
    mechanism="a job's background children are re-parented to the container's PID 1 when the job exits; "
              "supercronic <= 0.2.30 waits only for its job's process, so they stay zombies holding PIDs "
              "until the PID space is full and fork/clone fails for every process on the node",
    references=(
        "supercronic PR #164 (0.2.31: reap orphans when PID 1), PR #172 (0.2.33: forks itself as PID 1, -no-reap)",
        "tini (waitpid(-1) as PID 1; `docker run --init`)",
        "kubernetes podPidsLimit (GA 1.20), eviction signal pid.available (PIDPressure)",
        "6 entertaining system bugs, history 1",
    ),
    affected="supercronic <= 0.2.30 (or any non-reaping PID 1); the distribution does not matter",
    fixes=(Fix("0.2.31", "supercronic 0.2.31 reaps orphaned processes when it is PID 1 (PR #164)"),),
)

API_DELETE_SECONDS = 30
KUBELET_WEDGED_SECONDS = 90   # Ready after the PIDs are back, or the daemons are restarted
NEW_POD_SECONDS = 60          # a new pod Running once Ready, or the daemons are restarted
# A new pod on a node without PIDs: kubelet's sandbox start fails within
# seconds (FailedCreatePodSandBox 3 s after creation, seen here); 30 s without
# Running is the symptom, with the events as its evidence.
NEWCOMER_SECONDS = 30
# Tasks above the baseline (taken in prepare, with no pod of the scenario's
# running) that still count as "PIDs back": small beside the flood's
# free_pids, room for a pod of the lab's and threads the daemons started
# during the flood.
PIDS_BACK_MARGIN = 100        # after the cron pod's delete (repair, recover)
PIDS_SETTLED_MARGIN = 50      # the steady-state hypothesis, before and after the run
CRON_POD, TINI_POD, NEWCOMER_POD = "zombies-cron", "zombies-cron-tini", "zombies-newcomer"
BASELINE_POD, AFTER_POD = "zombies-baseline", "zombies-after"
DEFAULTS = {
    # 1000 free PIDs fill in about a minute at 20 curls a second (1500 took 88 s
    # in CI runs for the same evidence); tini is then watched half as long again.
    "free_pids": Setting(1000, "PIDs left for new tasks once the node's capacity is lowered"),
    "curls_per_job": Setting(20, "background curls each job leaves behind"),
    "curl_seconds": Setting(3, "how long the lab's endpoint takes to answer"),
    "watch_seconds": Setting(300, "how long detection waits for the PID space to fill"),
    "flat_seconds": Setting(90, "how long zombies must stay flat under tini (the flood fills the default "
                                "free PIDs in about 60 s)"),
}


class ZombieFlood(Scenario):
    name = "zombies"
    record = RECORD
    defaults = DEFAULTS
    # The lab's nodes run docker with the systemd cgroup driver, under which
    # every container scope gets systemd's DefaultTasksMax (512 on systemd 229,
    # 15% of pid_max since v231): observed here, it stops the flood inside the
    # pod. The source's pods had no such cap (docker's default cgroupfs
    # driver), so the main variants lift it (DefaultTasksMax=infinity);
    # `systemd-tasksmax` keeps systemd's default and shows the containment.
    variants = {"supercronic": {"pid1": "supercronic"}, "tini": {"pid1": "tini"},
                "systemd-tasksmax": {"pid1": "supercronic", "pod_task_cap": "systemd"}}
    # A workload bug: the runner reproduces on every target, tini is immune on
    # every target. CI runs both on one target.
    primary_runs = (("bookworm", "supercronic"), ("bookworm", "tini"))
    keyed_on_packages = False
    key_symptoms = ("zombies-pile-up", "pid-space-exhausted", "fork-failures-logged")
    # Zombies, PIDs and fork failures are read from the host's /proc and
    # cgroupfs, which keep answering when the node itself cannot fork. A VM
    # (its own pid_max: dockerd's ENOSPC, the source's line) is read over SSH,
    # which forks in the VM: skipped there (README, VM nodes, says what a
    # fork-free channel would take).
    requires = ("host_sees_node_processes",)
    settle_seconds = 90
    detector_unjudged = {"systemd-tasksmax": "the pod's own task cap contains the flood, so the node is immune, "
                                             "yet hundreds of zombies under one parent are what the detector "
                                             "reports"}
    options = {
        "supercronic": Option("a real supercronic binary on the lab host, run instead of the stand-in", is_file=True),
        "supercronic_version": Option("that binary's version (X.Y.Z): it decides the expected verdict"),
        "pid1": Option("what runs as the cron pod's PID 1 (the variants set it)", choices=("supercronic", "tini")),
        "pod_task_cap": Option("'systemd' keeps systemd's DefaultTasksMax on container scopes (variant "
                               "systemd-tasksmax)", choices=("systemd",)),
    }

    def expected(self, ctx: Context) -> tuple[str, str]:
        if ctx.params.get("pid1") == "tini":
            return IMMUNE, "tini is PID 1 and reaps every process it inherits (waitpid(-1)); the runner below it " \
                           "is unchanged"
        if ctx.params.get("supercronic"):
            version = ctx.params.get("supercronic_version")
            if not version:
                return INCONCLUSIVE, "a real supercronic was given without --param supercronic_version=X.Y.Z"
            verdict, why = self.record.expected({"supercronic": version})
        else:
            verdict, why = self.record.expected({"supercronic": "0.2.30"})   # the stand-in's semantics
        if verdict == REPRODUCES and ctx.params.get("pod_task_cap") == "systemd":
            return IMMUNE, f"{why}; but systemd's DefaultTasksMax (512 on v228-230, 15% of pid_max since v231) " \
                           f"caps every container scope under docker's systemd cgroup driver below the " \
                           f"{ctx.setting('free_pids')} PIDs the node has free: the flood stays inside the cron pod"
        return verdict, why

    # -- prepare ----------------------------------------------------------------
    def prepare(self, ctx: Context) -> None:
        node = ctx.node
        gateway = ctx.lab.host_address()
        ctx.scratch["endpoint"] = SlowEndpoint(gateway, ctx.setting("curl_seconds")).start()
        image = cronpod.build_image(node, ctx.params.get("supercronic"), ctx.params.get("supercronic_version"))
        ctx.scratch.update(image=image, stand_ins=image.stand_ins)
        if ctx.params.get("pid1") == "tini" and not image.init:
            raise LabError(f"{node.target} ships none of {', '.join(cronpod.INIT_CANDIDATES)}: no tini to run as PID 1")
        ctx.observe("workload-image", EVIDENCE, True, image.evidence)
        if ctx.params.get("pod_task_cap") != "systemd":
            ctx.observe("pod-task-cap-lifted", EVIDENCE, True, pidspace.lift_systemd_task_cap(node))
        started = workload.start_pod(ctx.kube, ctx.node.name, BASELINE_POD, ctx.lab.sandbox_image, "sleep 3600")
        ctx.observe("new-pod-starts", STEADY, started is not None,
                    f"a busybox pod Running after {started:.1f} s" if started is not None else "did not start")
        ctx.kube.delete_pod(BASELINE_POD)
        time.sleep(3)
        ctx.scratch["baseline_pids"] = pidspace.node_in_use(node)

    # -- inject -------------------------------------------------------------------
    def inject(self, ctx: Context) -> None:
        capacity = pidspace.limit_node(ctx.node, ctx.setting("free_pids"))
        ctx.scratch["capacity"] = capacity
        ctx.timings["pid_capacity"] = capacity.as_dict()
        ctx.observe("pid-capacity-lowered", EVIDENCE, True,
                    f"{capacity.mechanism} set to {capacity.limit}: {capacity.in_use} tasks in use, "
                    f"{capacity.free} PIDs free; the host's pid_max is still {capacity.host_pid_max}")
        pod = CRON_POD if ctx.params.get("pid1") != "tini" else TINI_POD
        ctx.scratch["cron_pod"] = pod
        ctx.timeline.injected_at = time.monotonic()
        cron = _start_cron(ctx, pod, under_init=ctx.params.get("pid1") == "tini")
        pid1 = cron.pid1
        ctx.scratch.update(pid1=pid1, pid1_started=procs.start_ticks(pid1) if pid1 else None, cron_cid=cron.cid)
        ctx.observe("cron-pod-running", INJECTION, pid1 is not None,
                    f"{pod} Running; its PID 1 is host PID {pid1} ({procs.comm(pid1)}), starting "
                    f"{ctx.setting('curls_per_job')} background curls every second against "
                    f"{ctx.scratch['endpoint'].url} (answers after {ctx.setting('curl_seconds')} s)"
                    if pid1 else f"{pod} did not start: {cron.not_running}")

    # -- detect -------------------------------------------------------------------
    def detect(self, ctx: Context) -> None:
        if ctx.params.get("pid1") == "tini":
            self._watch_flat(ctx, ctx.scratch["cron_pod"], ctx.scratch["pid1"], ctx.setting("flat_seconds"), FIX)
            started = workload.start_pod(ctx.kube, ctx.node.name, NEWCOMER_POD, ctx.lab.sandbox_image, "sleep 3600")
            ctx.observe("new-pod-starts", EVIDENCE, started is not None,
                        f"a new pod Running {started:.1f} s after it was created" if started is not None
                        else f"a new pod did not start: {workload.why_not_running(ctx.kube, NEWCOMER_POD)}")
            return
        self._watch_flood(ctx)

    def _watch_flood(self, ctx: Context) -> None:
        node, capacity = ctx.node, ctx.scratch["capacity"]
        pid1 = ctx.scratch["pid1"]
        flood = cronpod.watch_flood(node, pid1, ctx.scratch["cron_cid"], ctx.setting("watch_seconds"),
                                    ctx.timeline.since_injection)
        series, exhausted_at = flood.series, flood.exhausted_at
        ctx.scratch["series"] = series
        ctx.record_series("zombies under the cron PID 1", "count", [(t, z) for t, z, _ in series])
        ctx.record_series("tasks in use on the node", "count", [(t, n) for t, _, n in series if n is not None])
        if flood.failure:
            ctx.scratch["runner_failure"] = flood.failure
        zombies, in_use = series[-1][1], series[-1][2]
        rate = flood.per_minute()
        ctx.timings["zombies_per_minute"] = rate
        cap = pidspace.task_cap(pid1, node) if procs.alive(pid1) else None
        contained = cap is not None and cap[0] < capacity.free
        ctx.observe("zombies-pile-up", EVIDENCE if contained else SYMPTOM,
                    zombies >= (cap[0] if contained else capacity.free) // 2,
                    f"{zombies} zombie children under the cron PID 1 (host PID {pid1}), {rate:.0f} per minute; "
                    f"samples (s since injection, zombies, tasks in use): {series[::max(1, len(series) // 8)]}",
                    raw="\n".join(f"{p} {pp} {st} {c}" for p, pp, st, c in procs.children(pid1)[:40]))
        if contained:
            self._contained(ctx, cap, zombies, in_use, exhausted_at)
            return
        reachable = capacity.in_use + capacity.free
        full = exhausted_at is not None and in_use >= 0.9 * reachable
        if full:
            ctx.timings["injection_to_first_fork_failure_s"] = exhausted_at
        ctx.observe("pid-space-exhausted", SYMPTOM, full,
                    f"{in_use} of about {reachable} tasks the node can hold in use ({capacity.mechanism} "
                    f"{capacity.limit}); the job could no longer fork: {ctx.scratch.get('runner_failure')}"
                    if full else f"{in_use} of about {reachable} tasks in use; the job's last fork failure: "
                                 f"{ctx.scratch.get('runner_failure', 'none')}: the PID space did not fill "
                                 f"within {ctx.setting('watch_seconds')} s")
        if not full:
            return
        # A new pod on the node now.
        started = workload.start_pod(ctx.kube, ctx.node.name, NEWCOMER_POD, ctx.lab.sandbox_image, "sleep 3600",
                                     timeout=NEWCOMER_SECONDS)
        ctx.observe("new-pod-fails-to-start", SYMPTOM if started is None else EVIDENCE, started is None,
                    f"{NEWCOMER_POD} not Running {NEWCOMER_SECONDS} s after creation: "
                    f"{workload.why_not_running(ctx.kube, NEWCOMER_POD)}"
                    if started is None else f"{NEWCOMER_POD} started although the PID space was full",
                    raw="\n".join(ctx.kube.events_for(NEWCOMER_POD)))
        # What the runtime and kubelet logged (journalctl from outside the node's PID namespace).
        failures, kinds = runtime.fork_failures_logged(node, int(ctx.timeline.since_injection()) + 5)
        ctx.observe("fork-failures-logged", SYMPTOM, bool(failures),
                    f"{len(failures)} fork/thread-creation failures in docker/containerd/kubelet journals; first of "
                    f"each kind: " + " || ".join(v[:260] for v in kinds.values()) if failures else
                    "no fork/thread-creation failure in docker/containerd/kubelet journals",
                    raw="\n".join(failures[:50]))

    def _contained(self, ctx: Context, cap: tuple[int, str], zombies: int, in_use: int,
                   exhausted_at: float | None) -> None:
        """The pod's own pids limit stopped the flood: the pod breaks, the node does not."""
        started = workload.start_pod(ctx.kube, ctx.node.name, NEWCOMER_POD, ctx.lab.sandbox_image, "sleep 3600", timeout=60)
        capacity = ctx.scratch["capacity"]
        held = exhausted_at is not None and zombies >= cap[0] - 3 * ctx.setting("curls_per_job") \
            and in_use < capacity.in_use + capacity.free // 2 and started is not None
        ctx.observe("flood-contained-in-pod", FIX, held,
                    f"the cron pod's pids cgroup ({cap[1].rsplit('/', 1)[-1]}) allows {cap[0]} tasks: zombies "
                    f"stopped at {zombies}, the job's forks fail ({ctx.scratch.get('runner_failure', 'no failure')}), "
                    f"the node has {in_use} tasks in use of about {capacity.in_use + capacity.free}, and a new pod "
                    + (f"Running after {started:.1f} s" if started is not None else
                       f"did not start: {workload.why_not_running(ctx.kube, NEWCOMER_POD)}"))

    def _watch_flat(self, ctx: Context, pod: str, pid1: int, seconds: int, kind: str) -> bool:
        """Zombies under the pod's PID 1 stay flat while its jobs keep orphaning curls."""
        w = cronpod.watch_flat(pid1, ctx.scratch["endpoint"], seconds, ctx.timeline.since_injection)
        flat = w.requests >= 10 * seconds and w.orphans_seen > 0 and w.peak <= ctx.setting("curls_per_job")
        ctx.observe("zombies-stay-flat" if kind == FIX else "tini-keeps-zombies-flat", kind, flat,
                    f"{pod}: {w.requests} curls served in {seconds} s, up to {w.orphans_seen} orphaned curls seen "
                    f"under PID 1 ({procs.comm(pid1)}), zombies at most {w.peak} "
                    f"(samples {w.series[::max(1, len(w.series) // 6)]})")
        return flat

    # -- repair and recover -----------------------------------------------------------
    def repair(self, ctx: Context) -> None:
        """The source's remedies, as an operator applies them: delete the cron
        pod, killing its PID 1 when kubelet cannot stop it; restart the runtime
        and kubelet if they stay wedged once the PIDs are back; then run the
        same workload under tini, the lasting fix. A workshop participant does
        the first by hand (scenarios/guides/zombies.md); `nodelab check` then
        observes with recover alone."""
        node, pid1, baseline = ctx.node, ctx.scratch["pid1"], ctx.scratch["baseline_pids"]
        t0 = time.monotonic()
        ctx.kube.delete_pod(ctx.scratch["cron_pod"])
        if not ctx.until(lambda: not _cron_pid1_alive(ctx), API_DELETE_SECONDS):
            # The node cannot fork, so kubelet and docker cannot stop the pod
            # (runc is a new process). An operator's already-open root shell
            # can still `kill -9` (a builtin): the lab does that from outside
            # the node's PID namespace, on the pod's own PID 1 only.
            ctx.observe("api-delete-stalls", EVIDENCE, True,
                        f"kubelet had not stopped the deleted cron pod after {API_DELETE_SECONDS} s (the node "
                        f"cannot fork); killing its PID 1 (host PID {pid1}) with SIGKILL from outside the node's "
                        f"PID namespace")
            os.kill(pid1, signal.SIGKILL)
        steps = []
        if ctx.until(lambda: not _cron_pid1_alive(ctx), 60):
            ctx.timings["delete_to_zombies_gone_s"] = round(time.monotonic() - t0, 1)
        back = ctx.until(lambda: pidspace.node_in_use(node) <= baseline + PIDS_BACK_MARGIN, 60)
        steps.append(f"{pidspace.node_in_use(node)} tasks in use {time.monotonic() - t0:.1f} s after the delete "
                     f"(baseline {baseline}{'' if back else ', not back within 60 s'})")
        after_pod = workload.pod(AFTER_POD, node.name, ctx.lab.sandbox_image, "sleep 3600")
        serving = runtime.serving_again(ctx.kube, node, after_pod, KUBELET_WEDGED_SECONDS, NEW_POD_SECONDS)
        ctx.scratch["served"] = {"ready": serving.ready, "started": serving.started}
        if serving.ready:
            ctx.timings["delete_to_ready_s"] = round(serving.ready_at - t0, 1)
        if serving.started:
            ctx.timings["delete_to_new_pod_running_s"] = round(time.monotonic() - t0, 1)
        steps.append(f"Ready {'again' if serving.ready else 'NOT again'}, {AFTER_POD} "
                     f"{'Running' if serving.started else 'NOT Running'}")
        if serving.restarted:
            ctx.observe("daemons-wedged-after-exhaustion", EVIDENCE, True, serving.restarted)
        ctx.observe("cron-pod-deleted", EVIDENCE, True, "; ".join(steps))
        # The source's other remedy: the same workload under tini.
        if not ctx.scratch["image"].init:
            ctx.observe("tini-keeps-zombies-flat", EVIDENCE, False, f"{node.target} has no tini/docker-init")
            return
        tini = _start_cron(ctx, TINI_POD, under_init=True)
        if tini.pid1 is None:
            ctx.observe("tini-keeps-zombies-flat", RECOVERY, False, f"{TINI_POD} did not start: {tini.not_running}")
        else:
            self._watch_flat(ctx, TINI_POD, tini.pid1, ctx.setting("flat_seconds"), RECOVERY)
        ctx.kube.delete_pod(TINI_POD)

    def recover(self, ctx: Context) -> None:
        """After the lab's repair, or (`nodelab check`) whatever a workshop
        participant did: the cron pod gone from the API and its PID 1 with its
        zombies from the node, the PIDs back at the baseline, the node Ready
        and a new pod Running."""
        node, pid1, baseline = ctx.node, ctx.scratch["pid1"], ctx.scratch["baseline_pids"]
        cron_pod = ctx.scratch["cron_pod"]
        gone = ctx.until(lambda: ctx.kube.pod(cron_pod) is None and not _cron_pid1_alive(ctx), 60)
        ctx.until(lambda: pidspace.node_in_use(node) <= baseline + PIDS_BACK_MARGIN, 60)
        in_use = pidspace.node_in_use(node)
        left = "gone, and its zombies with it" if not _cron_pid1_alive(ctx) else \
            f"still there with {procs.children_states(pid1)['Z']} zombie children"
        ctx.observe("zombies-gone-pids-back", RECOVERY, gone and in_use <= baseline + PIDS_BACK_MARGIN,
                    f"{cron_pod} {'deleted' if ctx.kube.pod(cron_pod) is None else 'still in the API'}; its PID 1 "
                    f"(host PID {pid1}) {left}{_after_delete(ctx, 'zombies_gone')}; {in_use} tasks in use "
                    f"(baseline {baseline})")
        served = ctx.scratch.get("served", {})   # what the lab's repair saw, in a run
        ready = served.get("ready", True) and \
            ctx.until(lambda: ctx.kube.condition(node.name).status == "True", KUBELET_WEDGED_SECONDS)
        cond = ctx.kube.condition(node.name)
        ctx.observe("node-ready-again", RECOVERY, ready, f"Ready={cond.status} {cond.message}"
                    f"{_after_delete(ctx, 'ready')}; {runtime.daemon_states(node)}")
        if ctx.kube.pod(AFTER_POD) is None:
            ctx.kube.create_pod(workload.pod(AFTER_POD, node.name, ctx.lab.sandbox_image, "sleep 3600"))
        started = served.get("started", True) and \
            ctx.until(lambda: workload.phase_and_restarts(ctx.kube.pod(AFTER_POD))[0] == "Running", NEW_POD_SECONDS)
        ctx.observe("new-pod-starts-again", RECOVERY, started,
                    f"{AFTER_POD} Running{_after_delete(ctx, 'new_pod_running')}" if started
                    else f"{AFTER_POD} did not start: {workload.why_not_running(ctx.kube, AFTER_POD)}")

    # -- verify -------------------------------------------------------------------
    def verify(self, ctx: Context) -> None:
        for pod in (CRON_POD, TINI_POD, NEWCOMER_POD, AFTER_POD):
            ctx.kube.delete_pod(pod)   # the hypothesis then waits up to settle_seconds for the PIDs

    def steady_state(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        baseline, in_use = ctx.scratch["baseline_pids"], pidspace.node_in_use(ctx.node)
        return {**super().steady_state(ctx), "pids-at-baseline": (
            in_use <= baseline + PIDS_SETTLED_MARGIN, f"{in_use} tasks (PIDs) in use on the node's pids cgroup (baseline {baseline})")}

    def teardown(self, ctx: Context) -> None:
        endpoint = ctx.scratch.get("endpoint")
        if endpoint:
            endpoint.stop()
            ctx.timings["curls_served"] = endpoint.requests


def _after_delete(ctx: Context, what: str) -> str:
    """" N s after the delete" when the lab's repair timed it (a participant's repair is not timed)."""
    seconds = ctx.timings.get(f"delete_to_{what}_s")
    return f" {seconds} s after the delete" if seconds is not None else ""


def _start_cron(ctx: Context, pod: str, under_init: bool) -> cronpod.CronPod:
    """Start a cron pod; its PID 1 (host PID) is None if it never ran."""
    return cronpod.start(ctx, pod, ctx.scratch["image"], ctx.scratch["endpoint"].url, ctx.setting("curls_per_job"),
                         under_init)


def _cron_pid1_alive(ctx: Context) -> bool:
    """The injected cron pod's PID 1 still runs (that very process: its PID may have been reused since)."""
    return procs.alive(ctx.scratch["pid1"], ctx.scratch["pid1_started"])


SCENARIO = ZombieFlood()
