"""Zombie memory cgroups make cgroup v1 memory.stat slow on kernels before 4.16.

The incident ("6 entertaining system bugs", history 2; cAdvisor #1774,
#2259): a cron-heavy node creates and deletes pod cgroups all day. A deleted
memory cgroup that still has page cache charged to it (a log file its job
wrote) stays alive as a "zombie", counted in /proc/cgroups but with no
directory. Before Linux 4.16 (a983b5ebee57, "mm: memcontrol: fix excessive
complexity in memory.stat reporting") reading a cgroup's `memory.stat`
summed every statistic over every descendant, dead ones included, and over
every possible CPU: the read slows in proportion to the zombies, and
cAdvisor inside kubelet, which reads it for every container over and over,
burns CPU. Upgrading the kernel fixed it; `echo 3 > drop_caches` as a remedy
hung the source's machine.

The lab's chain: the real kubelet runs short pods (a cron job's shape:
start, write a file to a hostPath directory, exit), which are then deleted;
each leaves its pod slice and its container's scope behind as zombie memory
cgroups, pinned by the file's page cache. Nothing makes cgroups behind
kubelet's back. After every wave: /proc/cgroups memory num_cgroups against
the live directories, the time to read memory.stat at kubepods.slice (where
the zombies are: the verdict's line) and at the root (the fastest of many
reads in one process, lab/assets/nodelab-readtime.c: a busy kubelet
stretches reads, never shortens them), and kubelet's CPU. The cost is
zombies x ~70 stat items x possible CPUs: a 2-vCPU VM shows fractions of a
millisecond where the source's servers showed seconds, so the node VM boots
with `possible_cpus=N` (the `possible_cpus` setting; hotpluggable CPUs that never
come online, as on large servers: 4.4 sums its per-CPU counters over them,
6.1 does not walk the dead cgroups at all). Every report says so.

Verdict from the node's kernel (it needs a VM: on container nodes the host's
kernel decides, not the target): on 4.4 the read time grows with the zombies
(reproduces), on 6.1 the zombies pile up alike and the read stays flat
(immune). Recovery, as the kernel documents it and without the slab drop
that hung the source's node: the churn stops, the files the jobs left are
removed (their page cache goes with them) and page cache alone is dropped
(`echo 1`); the zombies are freed and the read is fast again.
"""

import statistics
import time

from lab.fixtures import jobwaves
from lab.fixtures.jobwaves import JOB_DIR
from lab.nodetools import memcg
from lab.scenario.context import Context
from lab.scenario.definition import Scenario
from lab.scenario.evidence import EVIDENCE, FIX, INJECTION, RECOVERY, SYMPTOM
from lab.scenario.params import Setting
from lab.scenario.record import BugRecord, Fix

RECORD = BugRecord(
    id="memcg-zombie-cgroups-slow-memory-stat",
    title="zombie memory cgroups make memory.stat slow and kubelet's cAdvisor burn CPU (kernel < 4.16)",
    component="kernel",
    mechanism="a deleted memory cgroup with page cache still charged stays alive (a zombie); before 4.16 reading "
              "cgroup v1 memory.stat walks every descendant, dead ones included, for each of ~70 statistics and "
              "every possible CPU, so the read slows with the zombies and cAdvisor's constant reads cost CPU",
    references=(
        "linux a983b5ebee57 (4.16): mm: memcontrol: fix excessive complexity in memory.stat reporting",
        "google/cadvisor #1774, #2259 (memory.stat reads taking seconds, kubelet CPU)",
        "6 entertaining system bugs, history 2 (a cron-heavy node; drop_caches hung it; a kernel upgrade fixed it)",
    ),
    affected="Linux before 4.16 with cgroup v1 (Ubuntu 16.04's 4.4)",
    fixes=(Fix("4.16", "Linux 4.16 keeps memcg statistics aggregated (a983b5ebee57): memory.stat no longer walks "
                       "the dead descendants"),),
)

DEFAULTS = {
    "waves": Setting(4, "waves of short pods, each created, run to completion and deleted", at_least=1),
    "pods_per_wave": Setting(8, "pods per wave (each leaves its pod slice and container scope behind)", at_least=1),
    "file_kib": Setting(64, "KiB each pod's job writes to the hostPath directory (the page cache that pins it)",
                        at_least=4),
    "possible_cpus": Setting(64, "possible CPUs the node VM's kernel is booted with (possible_cpus=), of which "
                                 "only the VM's vCPUs come online: the per-CPU factor of the cost", at_least=1,
                             at_most=512),
    "reads": Setting(200, "memory.stat reads per sample, in one process (the fastest is the figure)", at_least=1),
}
MIN_ZOMBIES = 40          # fewer and the injection did not take
# The verdict reads kubepods.slice, where the churn's zombies are: on 4.4 they
# dominate its read (+1102% and +1284% over the churn in two runs), while the
# root's read also walks everything else and, under TCG, swung by 2x between
# samples (a cold CI run of e465081 read 11.7 ms at the root before the churn
# and 7.9 ms after its first wave, and called 4.4 immune on the root's line).
# The growth is on the Theil-Sen line of read time against zombies (the median
# of the pairwise slopes: one bad sample of five does not move it); on 6.1 the
# same churn measured +22% with single samples 2x apart.
SLOWER, FLAT = 1.0, 0.5   # at least doubles: the symptom; at most +50%: the fix's flat line
FAST_AGAIN = 0.25         # recovery: the root's read back within +25% of its baseline


class MemcgZombies(Scenario):
    name = "memcg"
    record = RECORD
    defaults = DEFAULTS
    primary_targets = ("xenial-ga", "bookworm")
    requires = ("own_kernel",)
    key_symptoms = ("memory-stat-slows-with-zombies",)
    stand_ins = ()

    def expected(self, ctx: Context) -> tuple[str, str]:
        return self.record.expected({"kernel": ctx.environment.get("kernel")})   # uname -r: 4.4.0-21-generic

    def kernel_args(self, params: dict) -> tuple[str, ...]:
        cpus = int(params.get("possible_cpus", DEFAULTS["possible_cpus"].default))
        return (f"possible_cpus={cpus}",)

    # -- prepare ----------------------------------------------------------------------
    def prepare(self, ctx: Context) -> None:
        node = ctx.node
        memcg.install_reader(node)
        node.run(["mkdir", "-p", JOB_DIR])
        online = node.run("nproc").stdout.strip()
        possible = node.run("cat /sys/devices/system/cpu/possible").stdout.strip()
        _sample(ctx)   # a first read pays for what boot left unflushed (6.1's rstat): not the baseline
        base = ctx.scratch["baseline"] = _sample(ctx)
        ctx.scratch["kubelet_cpu_before"] = _kubelet_cpu(ctx, 15)
        ctx.observe("node-kernel-and-cpus", EVIDENCE, True,
                    f"kernel {ctx.environment.get('kernel')}, cgroup v1 memory controller at {memcg.MEMCG}; "
                    f"{online} CPUs online, possible {possible} (booted with possible_cpus="
                    f"{ctx.setting('possible_cpus')}, modelling a larger server's per-CPU factor); before the churn: "
                    f"{memcg.describe(base)}; kubelet {ctx.scratch['kubelet_cpu_before']}% of a CPU over 15 s")

    def steady_state(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        now = _sample(ctx)
        return {**super().steady_state(ctx), "memory-cgroups-readable": (now["root_us"] > 0, memcg.describe(now))}

    # -- inject: a cron node's churn, through kubelet -------------------------------------
    def inject(self, ctx: Context) -> None:
        series = ctx.scratch["series"] = []
        for w in range(ctx.setting("waves")):
            seconds, failed, released = jobwaves.wave(ctx.kube, ctx.node, ctx.lab.sandbox_image, w,
                                                      ctx.setting("pods_per_wave"), ctx.setting("file_kib"))
            if released:
                ctx.observe(f"container-would-not-exit-w{w}", EVIDENCE, True,
                            f"wave {w + 1}: the lab released what docker still ran {jobwaves.RELEASE_AFTER_S} s "
                            f"into the wave (not part of the bug's chain; the pod ends Failed, its cgroup counts "
                            f"alike): {' | '.join(released)}")
            series.append({**_sample(ctx), "at": ctx.timeline.since_injection(), "wave_s": seconds,
                           "failed": failed})
        base, last = ctx.scratch["baseline"], series[-1]
        pods = ctx.setting("waves") * ctx.setting("pods_per_wave")
        made = last["zombies"] - base["zombies"]
        failed = sum(s["failed"] for s in series)
        ctx.timings.update({"pods_churned": pods, "pods_failed": failed, "zombies_made": made,
                            "zombies_per_pod": round(made / pods, 2)})
        ctx.observe("churn-leaves-zombie-cgroups", INJECTION, made >= MIN_ZOMBIES,
                    f"{pods} pods run by kubelet ({ctx.setting('waves')} waves of {ctx.setting('pods_per_wave')}, "
                    f"each writing {ctx.setting('file_kib')} KiB to {JOB_DIR}; {failed} ended Failed) and "
                    f"deleted: memory num_cgroups "
                    f"{base['num_cgroups']} -> {last['num_cgroups']} while live directories went {base['live']} -> "
                    f"{last['live']}: {made} zombies more ({made / pods:.1f} per pod; at least {MIN_ZOMBIES} needed)")

    # -- detect -----------------------------------------------------------------------
    def detect(self, ctx: Context) -> None:
        base, series = ctx.scratch["baseline"], ctx.scratch["series"]
        last = series[-1]
        judged, root = (_growth(base, series, f"{where}_us") for where in ("kubepods", "root"))
        kubelet = _kubelet_cpu(ctx, 15)
        for where, (slope, growth) in (("kubepods", judged), ("root", root)):
            ctx.timings.update({f"{where}_stat_us_before": base[f"{where}_us"],
                                f"{where}_stat_us_after": last[f"{where}_us"],
                                f"{where}_stat_growth": growth, f"{where}_stat_us_per_zombie": slope})
        ctx.timings.update({"kubelet_cpu_pct_before": ctx.scratch["kubelet_cpu_before"], "kubelet_cpu_pct_after": kubelet})
        ctx.record_series("zombie memory cgroups", "cgroups", [(s["at"], s["zombies"]) for s in series])
        ctx.record_series("kubepods.slice memory.stat read", "us", [(s["at"], s["kubepods_us"]) for s in series])
        ctx.record_series("root memory.stat read", "us", [(s["at"], s["root_us"]) for s in series])
        table = "; ".join(f"wave {i + 1} ({s['wave_s']} s): {memcg.describe(s)}" for i, s in enumerate(series))
        ctx.observe("stat-time-per-wave", EVIDENCE, True, f"before: {memcg.describe(base)}; {table}")
        ctx.observe("kubelet-cpu", EVIDENCE, True,
                    f"kubelet used {ctx.scratch['kubelet_cpu_before']}% of a CPU over 15 s before the churn and "
                    f"{kubelet}% over 15 s after it (cAdvisor reads every container's memory.stat; kubelet 1.20 "
                    f"exposes no housekeeping duration, so its CPU is the figure)")
        summary = (f"kernel {ctx.environment.get('kernel')}: kubepods.slice memory.stat {base['kubepods_us']} us "
                   f"with {base['zombies']} zombies -> {last['kubepods_us']} us with {last['zombies']}; on the "
                   f"Theil-Sen line {judged[0]} us per zombie, {judged[1]:+.0%} over the churn "
                   f"({ctx.setting('possible_cpus')} possible CPUs; the symptom needs {SLOWER:+.0%}, a flat line at "
                   f"most {FLAT:+.0%}); the root's read {base['root_us']} -> {last['root_us']} us, {root[0]} us per "
                   f"zombie, {root[1]:+.0%}")
        if judged[1] >= SLOWER:
            ctx.observe("memory-stat-slows-with-zombies", SYMPTOM, True, summary)
        elif judged[1] <= FLAT:
            ctx.observe("memory-stat-flat-with-zombies", FIX, True, summary)
        else:
            ctx.observe("memory-stat-neither-slow-nor-flat", EVIDENCE, True, summary)

    # -- recover: stop the churn, remove the jobs' files, drop page cache only ------------
    def repair(self, ctx: Context) -> None:
        # The churn has stopped; what still charges the dead cgroups is the
        # jobs' page cache: remove their files and drop the page cache (echo 1;
        # the source's echo 3 hung its machines).
        t0 = time.monotonic()
        ctx.node.run(f"rm -rf {JOB_DIR}/* && sync && echo 1 > /proc/sys/vm/drop_caches", timeout=300)
        ctx.timings["cache_drop_s"] = round(time.monotonic() - t0, 1)

    def recover(self, ctx: Context) -> None:
        # After the lab's repair, or (`nodelab check`) whatever a workshop participant did.
        base, last = ctx.scratch["baseline"], ctx.scratch["series"][-1]
        freed = ctx.until(lambda: memcg.counts(ctx.node)["zombies"] <= base["zombies"] + MIN_ZOMBIES // 4, 120, every=5)
        after = ctx.scratch["after_recovery"] = _sample(ctx)
        how = (f"the churn stopped, the jobs' files removed and page cache dropped (echo 1, not 3) in "
               f"{ctx.timings['cache_drop_s']} s" if "cache_drop_s" in ctx.timings else "after the repair")
        ctx.observe("zombies-freed", RECOVERY, freed,
                    f"{how}: {last['zombies']} -> {after['zombies']} zombies (before the churn {base['zombies']})")
        ctx.observe("memory-stat-fast-again", RECOVERY, after["root_us"] <= base["root_us"] * (1 + FAST_AGAIN),
                    f"root memory.stat {last['root_us']} -> {after['root_us']} us (before the churn "
                    f"{base['root_us']} us; within {FAST_AGAIN:+.0%} needed)")

    def verify(self, ctx: Context) -> None:
        ctx.node.run(["rm", "-rf", JOB_DIR])


def _sample(ctx: Context) -> dict:
    return memcg.sample(ctx.node, ctx.setting("reads"))


def _kubelet_cpu(ctx: Context, seconds: int) -> float:
    """kubelet's CPU over `seconds`, in percent of one CPU (utime + stime from /proc)."""
    script = ("pid=$(systemctl show -p MainPID kubelet | cut -d= -f2); "
              "t() { awk '{print $14 + $15}' /proc/$pid/stat; }; "
              f"a=$(t); sleep {seconds}; b=$(t); echo $((b - a)) $(getconf CLK_TCK)")
    ticks, hz = ctx.node.run(["sh", "-c", script], timeout=seconds + 60).stdout.split()
    return round(int(ticks) * 100 / int(hz) / seconds, 1)


def _growth(base: dict, series: list[dict], figure: str) -> tuple[float, float]:
    """How a read's time grew with the zombies over the churn: the slope of its
    Theil-Sen line (us per zombie) and the growth that slope makes from the
    baseline's zombies to the last sample's, against the line's value at the baseline."""
    points = [(base["zombies"], base[figure])] + [(s["zombies"], s[figure]) for s in series]
    slope, at_base = _line(points, base["zombies"])
    growth = slope * (series[-1]["zombies"] - base["zombies"]) / at_base if at_base > 0 else 0.0
    return slope, round(growth, 2)


def _line(points: list[tuple[int, float]], at: int) -> tuple[float, float]:
    """The Theil-Sen line of read time against zombies: the median of the slopes
    between every two samples (us per zombie) and the line's value at `at`
    zombies (through the median of what each sample leaves above the slope)."""
    slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(points) for x2, y2 in points[i + 1:] if x2 != x1]
    slope = statistics.median(slopes) if slopes else 0.0
    return round(slope, 3), statistics.median(y - slope * (x - at) for x, y in points)


SCENARIO = MemcgZombies()
