"""Memory pressure without swap stalls the node before the OOM killer acts.

The incident ("6 entertaining system bugs", history 5): a memory-hungry
workload on a node without swap. The kernel can reclaim only file pages
(page cache, and every program's executable text), which are read straight
back in: the node thrashes, SSH and monitoring stall, for a long time before
the OOM killer decides reclaim makes no progress. Kernel-bound, so VM nodes
only: on a container node the lab host's kernel and memory would be the ones
under pressure.

The lab's chain: a pod runs lab/assets/nodelab-memhog.c, which grows
anonymous memory to the edge of OOM (MemAvailable down to `leave_mib`, sized
from the VM's memory, not far past it) and holds there for `hold_s` seconds
reading a file working set, then exits by itself, so the VM always comes back
without a reset; an innocent pod runs beside it. What the node lives through
is measured by three witnesses (lab.fixtures.pressure): a probe process on
the node outside the pods (its wake-up gaps, major faults, kswapd's CPU, and
/proc/pressure/memory where the kernel has PSI, 4.20+), the lab's SSH
commands timed from the host, and the node's heartbeat as the API server
sees it (each renewal of its Lease; Ready and MemoryPressure as it shows
them). The kernel's log says whom the OOM killer killed, and when.

Verdict from the configuration, like apiqps and pulls: kubelet's hard
eviction threshold (its /configz) against the hog's growth over kubelet's
10 s eviction interval. The lab's default, memory.available<100Mi (kubelet's
own default), leaves no room: the hog reaches the edge and the node stalls
(reproduces). The remedy variant `eviction` (the source's and the
documentation's: a threshold with headroom plus system-reserved) makes
kubelet evict the hog before the edge, and the node stays responsive
(immune). Repair on the default form restarts kubelet with the remedy;
recovery (what a workshop's `nodelab check` asks of a hand repair) reads
kubelet's threshold and runs the same hog again, which must be evicted while
the node stays responsive. The report compares the kernels by its figures:
the same run on 4.4 (xenial-ga) and 6.1 (bookworm, with PSI). The second
remedy, variant `earlyoom` (Debian targets only: Ubuntu 16.04's archive has
no earlyoom): the suite's own earlyoom package, installed on the node with
dpkg and run as Debian ships it (lab.fixtures.oomdaemon), kills the hog at
10% MemAvailable, before kubelet's default threshold and long before the
kernel's OOM killer would act (immune).
"""

import time

from lab.cluster import workload
from lab.errors import LabError
from lab.fixtures import episode, oomdaemon, pressure
from lab.scenario.context import Context
from lab.scenario.definition import Scenario
from lab.scenario.evidence import EVIDENCE, FIX, INJECTION, RECOVERY, SYMPTOM
from lab.scenario.params import Option, Setting
from lab.scenario.record import IMMUNE, REPRODUCES, BugRecord, Fix

RECORD = BugRecord(
    id="memory-pressure-no-swap-stall",
    title="memory pressure without swap stalls the node (SSH, monitoring, kubelet) before the OOM killer acts",
    component="kubelet",
    mechanism="without swap, reclaim can only drop file pages (page cache and programs' text), which are faulted "
              "straight back: the node thrashes while the OOM killer waits for reclaim to stop making progress; "
              "kubelet's hard eviction acts only when memory.available crosses its threshold, checked every 10 s, "
              "so a threshold without headroom is crossed too late",
    references=(
        "6 entertaining system bugs, history 5 (no swap: the node unreachable long before the OOM killer; "
        "'should improve with 4.6+')",
        "kubernetes docs: Node-pressure eviction (--eviction-hard, --system-reserved, --kernel-memcg-notification)",
        "linux 4.20: PSI, /proc/pressure/memory (Documentation/accounting/psi.rst)",
        "earlyoom, systemd-oomd: userspace OOM daemons acting on PSI or MemAvailable",
    ),
    affected="a node without swap whose kubelet hard eviction threshold leaves less headroom than a workload's "
             "growth between two eviction checks (kubelet's default memory.available<100Mi)",
    fixes=(Fix("headroom", "a hard eviction threshold above the workload's growth in one eviction interval, with "
                           "system-reserved memory (the configuration, not a version)"),),
)

REMEDY = ("--eviction-hard=memory.available<600Mi", "--system-reserved=memory=300Mi",
          "--kernel-memcg-notification=true")
EVICTION_INTERVAL_S = 10      # kubelet's eviction manager checks the thresholds this often
EARLYOOM_MEM_PERCENT = 10     # earlyoom's SIGTERM limit as Debian runs it (its -m default; no swap: memory alone)
EARLYOOM_POLL_S = 1           # earlyoom polls at most this far apart (closer as memory runs low)
DEFAULTS = {
    "leave_mib": Setting(48, "MemAvailable (MiB) the hog grows down to: less than the node's own programs' text "
                             "and the hog's file need, so the kernel thrashes at the edge rather than OOMs at once",
                         at_least=8),
    "step_mib": Setting(16, "MiB the hog adds per step", at_least=1),
    "step_ms": Setting(500, "ms between the hog's steps (with step_mib: its growth rate)", at_least=10),
    "hold_s": Setting(60, "seconds the hog holds at the edge before it exits by itself: the longest a stall lasts",
                      at_least=5),
    "file_mib": Setting(128, "MiB of the file working set the hog reads over and over while it holds", at_least=1),
    "stall_s": Setting(5, "a probe wake-up or SSH command at least this late is a stall (the symptom)", at_least=1),
    "responsive_s": Setting(3, "no probe wake-up or SSH command later than this: the node stayed responsive",
                            at_least=1),
    "baseline_s": Setting(15, "seconds the witnesses watch the node before the pressure", at_least=5),
}
OPTIONS = {"oom_daemon": Option("a userspace OOM daemon installed on the node from its own archive before the "
                                  "pressure (none: the kernel's OOM killer and kubelet only)",
                                  choices=("none", "earlyoom"))}


class MemoryStall(Scenario):
    name = "memstall"
    record = RECORD
    defaults = DEFAULTS
    options = OPTIONS
    variants = {"default": {}, "eviction": {"kubelet_flags": " ".join(REMEDY)}, "earlyoom": {"oom_daemon": "earlyoom"}}
    primary_runs = (("xenial-ga", "default"), ("xenial-ga", "eviction"))
    requires = ("own_kernel",)
    keyed_on_packages = False
    key_symptoms = ("node-stalls-under-memory-pressure",)
    # MemoryPressure stays True for evictionPressureTransitionPeriod after the pressure
    # ends (5 min by default): 20 s lets the steady state hold again without a 5-minute wait.
    kubelet_flags = ("--eviction-pressure-transition-period=20s",)

    def kernel_args(self, params: dict) -> tuple[str, ...]:
        return ("psi=1",)   # Debian builds PSI in but off by default; 4.4 has none and passes the word to init

    def cannot_run_on(self, target: str, params: dict) -> str:
        return oomdaemon.unavailable(target) if params.get("oom_daemon") == "earlyoom" else ""

    def expected(self, ctx: Context) -> tuple[str, str]:
        config = ctx.scratch["config"] = pressure.eviction_settings(ctx.kube, ctx.node)
        shown = (f"kubelet's evictionHard memory.available {config['threshold']} and systemReserved memory "
                 f"{config['reserved'] or 'none'} (its /configz)")
        if ctx.params.get("oom_daemon") == "earlyoom":
            total = int(ctx.node.run("awk '/^MemTotal:/ {print $2}' /proc/meminfo").stdout) // 1024
            acts, step = total * EARLYOOM_MEM_PERCENT // 100, _size(ctx).growth_per_s() * EARLYOOM_POLL_S
            if acts >= ctx.setting("leave_mib") + step:
                return IMMUNE, (f"earlyoom (Debian's, installed before the pressure) sends SIGTERM at MemAvailable <= "
                                f"{EARLYOOM_MEM_PERCENT}% of {total} MiB ({acts} MiB), above the hog's edge "
                                f"({ctx.setting('leave_mib')} MiB) by more than its growth in one "
                                f"{EARLYOOM_POLL_S} s poll ({step:.0f} MiB); {shown}")
            return REPRODUCES, (f"earlyoom's {EARLYOOM_MEM_PERCENT}% of {total} MiB ({acts} MiB) is within one poll's "
                                f"growth ({step:.0f} MiB) of the hog's edge ({ctx.setting('leave_mib')} MiB)")
        room, why = _headroom(ctx, config)
        return (IMMUNE if room else REPRODUCES), f"{shown}: {why}"

    # -- prepare: the witnesses watch a quiet node ------------------------------------
    def prepare(self, ctx: Context) -> None:
        node = ctx.node
        pressure.install(node)
        if ctx.params.get("oom_daemon") == "earlyoom":
            daemon = ctx.scratch["oom_daemon"] = oomdaemon.install(node)
            ctx.observe("oom-daemon-running", EVIDENCE, True,
                        f"{daemon['package']} installed with dpkg, unit active, EARLYOOM_ARGS {daemon['args']}: "
                        f"{oomdaemon.limits(daemon['banner'])}", raw="\n".join(daemon["banner"]))
        ctx.kube.create_pod(pressure.innocent_pod(pressure.INNOCENT, node.name, ctx.lab.sandbox_image))
        if not workload.running_within(ctx.kube, pressure.INNOCENT, 120, every=2):
            raise LabError(f"the innocent pod did not start: {workload.why_not_running(ctx.kube, pressure.INNOCENT)}")
        mem = node.run("grep -E '^(MemTotal|MemAvailable|SwapTotal):' /proc/meminfo").stdout.split()
        ctx.scratch["meminfo_mib"] = {mem[i].rstrip(":"): int(mem[i + 1]) // 1024 for i in range(0, len(mem), 3)}
        base = ctx.scratch["baseline"] = episode.quiet(ctx.kube, ctx.node, ctx.setting("baseline_s"))
        m = ctx.scratch["meminfo_mib"]
        psi = "PSI present" if node.run(["test", "-e", "/proc/pressure/memory"], check=False).ok else "no PSI"
        ctx.observe("node-memory-and-witnesses", EVIDENCE, True,
                    f"kernel {ctx.environment.get('kernel')}, MemTotal {m['MemTotal']} MiB, MemAvailable "
                    f"{m['MemAvailable']} MiB, swap {m['SwapTotal']} MiB, {psi}; quiet for {ctx.setting('baseline_s')} "
                    f"s: {episode.witnesses(base)}")

    def steady_state(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        cond = ctx.kube.condition(ctx.node.name, "MemoryPressure")
        return {**super().steady_state(ctx),
                "no-memory-pressure": (cond.status == "False", f"MemoryPressure={cond.status} {cond.message}")}

    # -- inject: the hog goes to the edge ---------------------------------------------
    def inject(self, ctx: Context) -> None:
        ep = ctx.scratch["pressure"] = _episode(ctx, "first")
        _series(ctx, ep, "")
        ctx.observe("memory-at-the-edge", INJECTION, ep["hog_peak_mib"] >= ep["available_mib"] // 2,
                    f"the hog grew to {ep['hog_peak_mib']} MiB of the {ep['available_mib']} MiB available "
                    f"({'reached the edge, MemAvailable <= ' + str(ctx.setting('leave_mib')) + ' MiB' if ep['edge'] else 'stopped before the edge'}); "
                    f"it ended {ep['hog_end']}; lowest MemAvailable the probe saw {ep['min_available_mib']} MiB "
                    f"(at least half of what was available needed)", raw=ep["hog_log"])

    # -- detect -----------------------------------------------------------------------
    def detect(self, ctx: Context) -> None:
        ep = ctx.scratch["pressure"]
        _timings(ctx, ep, "")
        ctx.observe("how-the-hog-ended", EVIDENCE, True, episode.ending(ep), raw=ep["dmesg_oom"])
        worst, who = episode.worst(ep)
        stalled, responsive = worst >= ctx.setting("stall_s"), worst <= ctx.setting("responsive_s")
        summary = f"{episode.witnesses(ep)}; {episode.ending(ep)}"
        if stalled:
            ctx.observe("node-stalls-under-memory-pressure", SYMPTOM, True,
                        f"the node stalled: {who} waited {worst} s (at least {ctx.setting('stall_s')} s): {summary}")
        elif responsive and episode.daemon_killed_hog(ep):
            first = ep["daemon_kills"][0]
            ctx.observe("hog-killed-by-oom-daemon", FIX, True,
                        f"earlyoom sent {first[1]} to {first[3]} (pid {first[2]}) {first[0]} s after the pressure "
                        f"began, and nothing waited longer than {worst} s ({who}; at most "
                        f"{ctx.setting('responsive_s')} s): {summary}")
        elif responsive and ep["hog_end"].startswith("evicted"):
            ctx.observe("hog-evicted-node-responsive", FIX, True,
                        f"kubelet evicted the hog before the edge and nothing waited longer than {worst} s ({who}; at most "
                        f"{ctx.setting('responsive_s')} s): {summary}")
        else:
            ctx.observe("neither-stalled-nor-protected", EVIDENCE, True,
                        f"worst wait {worst} s ({who}), between {ctx.setting('responsive_s')} and {ctx.setting('stall_s')} s "
                        f"or not ended by eviction: {summary}")

    # -- repair and recover: the remedy, and the same hog again -------------------------
    def repair(self, ctx: Context) -> None:
        """The documented remedy, as an operator applies it: kubelet restarted with
        a hard eviction threshold with headroom and system-reserved memory (REMEDY)."""
        t0 = time.monotonic()
        ctx.lab.restart_kubelet(ctx.node, REMEDY)
        def settings() -> dict:
            return pressure.eviction_settings(ctx.kube, ctx.node, answering=False)

        took = ctx.until(lambda: settings().get("threshold") == "600Mi", 120, every=2)
        ctx.until(lambda: ctx.kube.condition(ctx.node.name).status == "True", 120, every=2)
        ctx.timings["kubelet_restart_s"] = round(time.monotonic() - t0, 1)
        ctx.observe("kubelet-restarted-with-the-remedy", EVIDENCE, took,
                    f"kubelet restarted with {' '.join(REMEDY)}: {settings()}")
        if not took:
            raise LabError("kubelet did not come back with the remedy's eviction threshold")

    def recover(self, ctx: Context) -> None:
        """kubelet's threshold leaves room for the hog's growth between two eviction
        checks, and the same hog, run again, is evicted before the node stalls."""
        ready = ctx.until(lambda: ctx.kube.condition(ctx.node.name).status == "True", 120, every=2)
        seen: list[dict] = []   # a kubelet just restarted answers /configz a few seconds later
        ctx.until(lambda: seen.append(pressure.eviction_settings(ctx.kube, ctx.node, answering=False)) or seen[-1],
                  120, every=2)
        config = seen[-1]
        room, why = _headroom(ctx, config) if config else (False, "kubelet's /configz does not answer")
        ctx.observe("eviction-threshold-has-headroom", RECOVERY, ready and room,
                    f"kubelet's evictionHard memory.available {config.get('threshold') or '?'}, systemReserved memory "
                    f"{config.get('reserved') or 'none'}: {why}" + ("" if ready else "; the node is not Ready"))
        first = ctx.scratch["pressure"]
        ep = ctx.scratch["remedy"] = _episode(ctx, "remedy")
        _series(ctx, ep, " (remedy)")
        _timings(ctx, ep, "remedy_")
        (worst, who), (before, before_who) = episode.worst(ep), episode.worst(first)
        ctx.observe("remedy-evicts-before-the-stall", RECOVERY,
                    ep["hog_end"].startswith("evicted") and worst <= ctx.setting("responsive_s"),
                    f"the same hog with {config.get('threshold')} of headroom: {episode.ending(ep)}; worst wait {worst} "
                    f"s ({who}; at most {ctx.setting('responsive_s')} s needed) against {before} s ({before_who}) "
                    f"without it; {episode.witnesses(ep)}", raw=ep["hog_log"])

    def verify(self, ctx: Context) -> None:
        ctx.kube.delete_pods(pressure.SELECTOR)
        ctx.until(lambda: not ctx.kube.pods(pressure.SELECTOR), 120, every=2)
        ctx.node.run(["rm", "-rf", pressure.WORK_DIR], check=False)

    def teardown(self, ctx: Context) -> None:
        ctx.node.run(["systemctl", "stop", pressure.PROBE_UNIT], check=False, timeout=30)


# -- the hog's size and one episode -------------------------------------------------------
def _size(ctx: Context) -> pressure.HogSize:
    return pressure.HogSize(ctx.setting("leave_mib"), ctx.setting("step_mib"), ctx.setting("step_ms"),
                            ctx.setting("hold_s"), ctx.setting("file_mib"))


def _episode(ctx: Context, label: str) -> dict:
    """The hog once more, every witness watching (lab.fixtures.episode.run)."""
    return episode.run(ctx.kube, ctx.node, ctx.lab.sandbox_image, _size(ctx), label,
                       since_injection=ctx.timeline.since_injection, stall_s=ctx.setting("stall_s"),
                       oom_daemon=bool(ctx.scratch.get("oom_daemon")))


def _headroom(ctx: Context, config: dict) -> tuple[bool, str]:
    """Whether kubelet's hard eviction threshold leaves room for the hog's growth in
    one eviction interval plus 100 MiB (the edge comes first otherwise), and why."""
    growth = _size(ctx).growth_per_s() * EVICTION_INTERVAL_S
    if config["threshold_mib"] < growth + 100:
        return False, (f"the threshold is below the hog's growth in one {EVICTION_INTERVAL_S} s eviction interval "
                       f"({growth:.0f} MiB) plus 100 MiB, so the edge comes first")
    return True, f"room for {growth:.0f} MiB of growth between two eviction checks, plus 100 MiB"


# -- what the report says ----------------------------------------------------------------
def _timings(ctx: Context, ep: dict, prefix: str) -> None:
    kill = ep["oom_kills"][0][0] if ep["oom_kills"] else None
    ctx.timings.update({f"{prefix}{k}": ep[k] for k in (
        "hog_peak_mib", "hog_ended_s", "probe_worst_gap_s", "ssh_worst_s", "ssh_median_s", "heartbeat_worst_gap_s",
        "kswapd_cpu_s", "major_faults", "min_available_mib", "psi_some_peak", "psi_full_peak", "back_after_end_s")})
    ctx.timings[f"{prefix}pressure_to_oom_kill_s"] = kill
    if ep["daemon_kills"]:
        ctx.timings[f"{prefix}pressure_to_oom_daemon_kill_s"] = ep["daemon_kills"][0][0]
    ctx.timings[f"{prefix}innocent_worst_gap_s"] = ep["innocent"]["worst_gap_s"]


def _series(ctx: Context, ep: dict, suffix: str) -> None:
    offset = ep["at"]   # the episode's clock started this long after the injection
    ctx.record_series(f"probe wake-up gap{suffix}", "s", [(r[0] + offset, r[1] / 1000) for r in ep["probe_rows"]])
    ctx.record_series(f"MemAvailable{suffix}", "MiB", [(r[0] + offset, round(r[4] / 1024)) for r in ep["probe_rows"]])
    ctx.record_series(f"SSH true{suffix}", "s", [(t + offset, s) for t, s in ep["ssh_points"]], style="scatter")


SCENARIO = MemoryStall()
