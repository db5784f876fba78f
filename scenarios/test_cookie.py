"""systemd's sd-bus cookie overflows: runc hangs, PLEG turns unhealthy, the node goes NotReady.

The incident (four of the source documents): after months of uptime a node
turns NotReady with `PLEG is not healthy`; runc processes hang; docker
inspect blocks on a container lock held by an exec; `busctl` calls to
org.freedesktop.systemd1 time out while `systemctl` still works;
`systemctl daemon-reexec` clears it.

Mechanism: PID 1 stamps every message it sends on its connection to
dbus-daemon with `++bus->cookie` (uint64). dbus1 messages refuse cookies above
0xffffffff (-EOPNOTSUPP), and pre-v242 sd-bus never wraps, so once past 2^32
every later send fails. runc (systemd cgroup driver; rc3..rc8 also created a
probe slice per invocation) waits for systemd's answers forever, holding
docker's container lock; kubelet's PLEG relist inspects the container, blocks,
and after 3 min the node is NotReady.

The lab fast-forwards the months with gdb on the node's PID 1 (lab.nodetools.sdbus): the
cookie is located without stopping PID 1 (the one value in its memory that
tracks systemd's reply serials; with debug symbols gdb confirms it is
`bus->cookie` of the system bus), then set to 0xfffffff0 by one gdb batch
in the node that detaches by itself: no breakpoint, and nothing the lab's
side could leave half done if it were killed.

Steady state: node Ready; a pod with an exec liveness probe every 2 s Running,
and two pods whose containers exit every few seconds restarting (without such
workload the node stays Ready although pods can no longer start:
platform.md). The injection is timed as a busy node offers it: just before
both restarters' back-off ends, so both restarts hang in one PLEG relist
right after the bus dies, and NotReady comes at kubelet's 3 min floor.
Detection: the cookie read again is past 0xffffffff; a system-bus Ping to
systemd1 times out while the private socket answers; runc processes stuck;
Ready=False with `PLEG is not healthy`. Immune builds: the reply serials
continue from 0x80000000 (the fix's COOKIE_CYCLED) and the node stays Ready
past the PLEG threshold plus margin.
Recovery: `systemctl daemon-reexec`; the bus answers, stuck runc exit, the
node is Ready and stays Ready, new pods start.
"""

import re
import time

from lab import timefmt
from lab.cluster import workload
from lab.fixtures import restarters
from lab.nodetools import runtime, sdbus
from lab.scenario.evidence import EVIDENCE, FIX, INJECTION, RECOVERY, STEADY, SYMPTOM
from lab.scenario.record import BugRecord, Fix
from lab.scenario.context import Context
from lab.scenario.definition import Scenario
from lab.scenario.params import Setting
from lab.scenario.watch import ReadyWatch

RECORD = BugRecord(
    id="systemd-sdbus-cookie-overflow",
    title="systemd sd-bus cookie overflow: runc hangs, PLEG is not healthy, node NotReady",
    component="systemd",
    mechanism="PID 1's uint64 bus cookie passes 0xffffffff; dbus1 sealing fails with EOPNOTSUPP for every "
              "later message; runc (systemd cgroup driver) waits forever; docker's container lock is held; "
              "kubelet's PLEG relist blocks for more than 3 min",
    references=(
        "systemd issue #11809", "systemd PR #11818 (commit 1f82f5bb 'sd-bus: deal with cookie overruns', v242)",
        "Launchpad #1876600 (Ubuntu 16.04 backport, 229-4ubuntu21.29)",
        "Red Hat BZ#1720699 (219-62.8, 7.6.z), BZ#1693559 (219-65, 7.7)",
        "runc PR #1084 (per-call systemd test slice, rc3) / PR #2117 (removed, rc9)",
        "kubernetes pkg/kubelet/pleg/generic.go (relistThreshold 3 min)",
    ),
    affected="systemd < v242 without a backport of 1f82f5bb",
    fixes=(
        Fix("242", "upstream v242, commit 1f82f5bb (cookie wraps to 0x80000000)"),
        Fix("229-4ubuntu21.29", "Ubuntu 16.04 backport, LP #1876600", line="229"),
        Fix("219-62.8", "RHEL 7.6.z backport, BZ#1720699", line="219"),
    ),
)

PROBE_POD, RESTARTER_POD, AFTER_POD = "cookie-probed", "cookie-restarter", "cookie-after-recovery"
# Two restarters (lab.fixtures.restarters: pods that crash on a beat, their
# restarts cued together by the lab): a relist that meets one locked container
# waits out kubelet's 2-min runtime request timeout on it and completes,
# inside PLEG's 3 min; the first relist that meets two (two pods' events)
# takes 4 min and wedges PLEG.
RESTARTERS = (RESTARTER_POD, f"{RESTARTER_POD}-2")
# Their back-off is 40 s by then. kubelet states it only at its next sync
# after the exit, and the write must start before it ends.
RESTARTS_BEFORE_INJECTION = 3
PLEG_PREFIX = "PLEG is not healthy"
PLEG_LAST_SEEN = re.compile(r"pleg was last seen active (\S+) ago")
PLEG_THRESHOLD_S = 180


class CookieOverflow(Scenario):
    name = "cookie"
    record = RECORD
    primary_targets = ("xenial-ga", "bookworm")
    key_symptoms = ("system-bus-call-to-systemd1-times-out", "node-notready-pleg")
    defaults = {
        "cookie": Setting(0xFFFFFFF0, "the value gdb writes into PID 1's system-bus cookie; the lab's Pings then "
                                      "drive it past 2^32 at once (0xffffffff minus it, at most 64)",
                          at_least=sdbus.UINT32_MAX - 64, at_most=2**64 - 1),
        "flap_seconds": Setting(45, "how long the Ready/NotReady flapping after the first NotReady is watched"),
    }
    # The flapping the sources describe (runtime calls time out after 2 min,
    # PLEG relists once, then wedges again) takes minutes to show: nightly.
    primary_runs = (("xenial-ga", ""), ("bookworm", ""))
    variants = {"flapping": {"flap_seconds": 420}}
    # kubelet evaluates its Ready condition every nodeStatusUpdateFrequency
    # (10 s by default), which makes NotReady up to 10 s late against PLEG's
    # own threshold; 2 s keeps the report close to it (the chain is unchanged).
    kubelet_flags = ("--node-status-update-frequency=2s",)
    # Detection watches for NotReady up to 480 s after the injection: it comes
    # 180 s after the first relist that meets both restarts (+186 s measured),
    # or, should the two restarts fall into two relists, ~120 s later (the
    # first relist waits out one 2-min timeout and completes).
    watch_seconds = 480
    # An immune node must stay Ready this long after the restarts were cued:
    # an affected node's PLEG wedges in the first relist after them (within
    # 2 s), is unhealthy 180 s later, and kubelet says so within its 2 s
    # status period; 18 s of margin. (runc stuck, the earlier sign, shows at
    # +30 s.)
    ready_hold_seconds = PLEG_THRESHOLD_S + 20
    # After daemon-reexec the recovery's evidence is the bus answering, no runc
    # stuck and a new pod starting; the hold shows Ready does not drop again at
    # once (a relapse into a new wedge could only show 3 min later, which no
    # hold short of that would see: the evidence above is what rules it out).
    verify_hold_seconds = 60

    def steady_state(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        ping = sdbus.ping_systemd(ctx.node)
        return {**super().steady_state(ctx),
                "system-bus-answers": (ping.answered, f"systemd1 Ping reply serial {ping.serial}")}

    def prepare(self, ctx: Context) -> None:
        node, image = ctx.node.name, ctx.lab.sandbox_image
        ctx.kube.create_pod(workload.pod(PROBE_POD, node, image, "while :; do sleep 3600; done",
                                         probe=["/bin/true"], probe_period=2))
        restarter_pods = _restarters(ctx)
        restarter_pods.create(image)
        seen, cues, in_step, deadline = {}, 0, False, time.monotonic() + 240

        def workload_running() -> bool:
            seen["probe"] = workload.phase_and_restarts(ctx.kube.pod(PROBE_POD))[0]
            seen["restarts"] = counts = restarter_pods.counts()
            return seen["probe"] == "Running" and min(counts) >= RESTARTS_BEFORE_INJECTION

        def ready() -> bool:
            return in_step and workload_running()

        while not ready() and time.monotonic() < deadline:
            waited, back_offs = restarter_pods.await_back_offs(deadline - time.monotonic(), done=ready)
            if waited and not ready():
                in_step = restarters.in_step(back_offs)
                restarter_pods.cue(back_offs, f"prepare-{cues}")
                cues += 1
        ctx.observe("workload-running", STEADY, workload_running(),
                    f"{PROBE_POD} {seen['probe'] or 'absent'}; {' and '.join(RESTARTERS)} restarted "
                    f"{' and '.join(map(str, seen['restarts']))} times; the lab cued their restarts "
                    f"{cues} time{'' if cues == 1 else 's'}, the last time with their back-offs ending "
                    f"{'within' if in_step else 'MORE than'} {restarters.IN_STEP_S} s of each other")

    def inject(self, ctx: Context) -> None:
        # In production the cookie runs out at whatever moment it does; on a
        # busy node some container starts are always in flight. The lab picks
        # such a moment: both restarters have exited (their exits handled while
        # the bus still answered) and wait out kubelet's restart back-off; the
        # cookie is written just before the back-off ends, the bus is driven
        # past 2^32 at once, and when the back-off has ended both pods are
        # touched (an annotation: kubelet syncs them now, not at its next
        # 10-15 s resync), so both restarts -- runc calls that hold docker's
        # container locks -- come seconds after the bus died and fall into one
        # PLEG relist.
        push = sdbus.locate_cookie(ctx.node)
        restarter_pods = _restarters(ctx)
        waited, seen = restarter_pods.await_back_offs(120)
        ends = [s["ends"] for s in seen.values() if s["ends"]]
        first, last = (min(ends), max(ends)) if waited else (None, None)
        # The node's clock (kubelet's back-off) against the lab's; the time a
        # read of PID 1's memory and a gdb batch (attach, print, detach) take
        # on this node are the write's.
        offset, rtt = ctx.node.clock_offset()
        t0 = time.monotonic()
        sdbus.track(ctx.node, push)
        t1 = time.monotonic()
        before_write, _ = sdbus.read_cookie(ctx.node, push)
        lead = (time.monotonic() - t0) + 1.5
        exits = "exits read from docker" if all(s.get("exact") for s in seen.values()) else "whole-second exits"
        ctx.observe("restarters-in-back-off", EVIDENCE, waited,
                    "; ".join(f"{n} {seen[n]['reason'] or 'not waiting'}" for n in RESTARTERS) +
                    (f"; back-offs end at {_clock(first - offset)} and {_clock(last - offset)} ({exits}, node clock "
                     f"{offset:+.2f} s from the lab's, read in {rtt:.2f} s); reading PID 1's memory took "
                     f"{t1 - t0:.1f} s and a gdb batch {time.monotonic() - t1:.1f} s, so the write is to start "
                     f"{lead:.1f} s before the first ends" if waited else ""))
        if first:
            time.sleep(max(0.0, first - offset - lead - time.time()))
        value = ctx.setting("cookie")
        ctx.timeline.injected_at = time.monotonic()
        ahead = round(first - offset - time.time(), 1) if first else None
        if ahead is not None:
            ctx.timings["write_before_back_off_end_s"] = ahead   # negative: late, a restart may beat the bus
            ctx.timings["back_off_ends_apart_s"] = round(last - first, 2)
        sdbus.track(ctx.node, push)   # where the cookie is now, for write_cookie's guard
        # Confirmed by the Pings that drive the bus past 2^32 at once (each
        # reply is one send of PID 1's).
        push = ctx.scratch["push"] = sdbus.confirm_write(ctx.node, sdbus.write_cookie(ctx.node, push, value),
                                                         pings=sdbus.UINT32_MAX - min(value, sdbus.UINT32_MAX) + 4)
        serials = ctx.scratch["inject_pings"] = push.serials_after
        ctx.scratch["restarts_at_cue"] = restarter_pods.cue(seen, "injection")
        ctx.scratch["restarts_cued_at"] = ctx.timeline.since_injection()
        # Did it take? gdb read the value back at the located address; then,
        # seen from outside, our Ping's reply carries a serial just above it,
        # or (a busy bus: more than 15 sends before our reply) the cookie read
        # again is past it (affected) or has wrapped to 0x80000000 (fixed),
        # which nothing but the write can have caused.
        now, transcript = sdbus.read_cookie(ctx.node, push)
        after = push.reply_serial_after
        took = push.written == value and (
            (after is not None and value < after <= value + 0x10) or now > value
            or (sdbus.COOKIE_CYCLED <= now < sdbus.COOKIE_CYCLED + 0x10000 and push.before < sdbus.COOKIE_CYCLED))
        raw = "\n".join([f"located by: {push.located_by}", *push.verification, "", push.transcript, "", transcript])
        driven = ("no Pings ran" if not serials else
                  f"{sum(1 for s in serials if s is not None)} Pings answered after it, then "
                  f"{'none' if serials[-1] is None else 'still answering'}")
        timing = (f"written {ahead:.1f} s before the first back-off ended" if ahead is None or ahead >= 0 else
                  f"written {-ahead:.1f} s AFTER the first back-off ended (a restart may have beaten the bus)") \
            if first else "back-off not seen: written at once"
        ctx.observe("cookie-set-by-gdb", INJECTION, took,
                    f"PID 1 system-bus cookie {push.before} (gdb read {before_write:#x} before) -> {value:#x} "
                    f"({push.located_by}); next reply serial {hex(after) if after is not None else 'none'}; "
                    f"{driven}; {timing}; restarts cued at +{ctx.scratch['restarts_cued_at']:.1f} s; cookie read "
                    f"again {now:#x}", raw)

    def detect(self, ctx: Context) -> None:
        node, push = ctx.node, ctx.scratch["push"]
        # 1. Drive the bus on: up to 40 more system-bus Pings, as many as answer.
        serials, last = [s for s in ctx.scratch.get("inject_pings", []) if s is not None], None
        for _ in range(40):
            last = sdbus.ping_systemd(node, timeout=5)
            if not last.answered:
                break
            serials.append(last.serial)
        private_ok, private_raw = sdbus.private_socket_answers(node)
        trail = ", ".join(hex(s) for s in serials[-5:])
        bus_dead = last is not None and not last.answered
        ctx.observe("system-bus-call-to-systemd1-times-out", SYMPTOM, bus_dead and private_ok,
                    (f"Ping {len(serials) + 1} got no answer after serials ... {trail}" if bus_dead
                     else f"all {len(serials)} Pings answered") +
                    f"; private socket {'answers' if private_ok else 'does NOT answer'}",
                    f"{last.raw if last else ''}\n{private_raw}")
        wrapped = [s for s in serials if sdbus.COOKIE_CYCLED <= s < sdbus.COOKIE_CYCLED + 0x10000]
        if wrapped:
            ctx.observe("reply-serials-wrap-to-0x80000000", FIX, True,
                        f"{len(serials)} Pings answered; serials ... {trail} (wrapped at {hex(wrapped[0])})")
        # 2. The sources' own test: read the cookie again.
        cookie, transcript = sdbus.read_cookie(node, push)
        ctx.observe("cookie-past-0xffffffff" if cookie > sdbus.UINT32_MAX else "cookie-read-again",
                    SYMPTOM if cookie > sdbus.UINT32_MAX else EVIDENCE, True,
                    f"gdb: p /x {push.cookie_expr} = {cookie:#x}", transcript)
        # 3. Watch runc and the node's Ready condition.
        watch = ReadyWatch(ctx)
        stuck_seen = notready_seen = False
        hold = ctx.scratch.get("restarts_cued_at", 0) + self.ready_hold_seconds
        while ctx.timeline.since_injection() < self.watch_seconds:
            if not stuck_seen and (stuck := runtime.stuck_runc(node)):
                stuck_seen = True
                ctx.observe("runc-stuck", SYMPTOM, True, f"{len(stuck)} runc processes older than "
                            f"{runtime.STUCK_SECONDS} s", "\n".join(stuck))
            cond = watch.poll()
            if cond.status == "False" and cond.message.startswith(PLEG_PREFIX):
                notready_seen = True
                journal = node.journal("kubelet", grep=PLEG_PREFIX, lines=2000)
                obs = ctx.observe("node-notready-pleg", SYMPTOM, True, f"Ready=False: {cond.message}",
                                  journal[-6000:], deadline=self.watch_seconds)
                self._pleg_timings(ctx, obs.at, cond.message)
                summary, dump = runtime.dockerd_goroutines(node)
                ctx.observe("dockerd-goroutines", EVIDENCE, "0 goroutines" not in summary, summary, dump)
                watch.follow(ctx.setting("flap_seconds"))   # the flapping the sources describe
                break
            if not stuck_seen and wrapped and ctx.timeline.since_injection() >= hold and watch.last == "True":
                break
            # near PLEG's threshold, look every second: the ratio is measured on this
            time.sleep(1 if ctx.timeline.since_injection() >= PLEG_THRESHOLD_S - 10 else 5)
        at_cue = ctx.scratch.get("restarts_at_cue")
        if at_cue:
            now_counts = _restarters(ctx).counts()
            rose = all(b > a for a, b in zip(at_cue, now_counts))
            ctx.observe("restarts-after-cue", EVIDENCE, True,
                        f"restart counts of {' and '.join(RESTARTERS)}: {at_cue} when cued, {now_counts} now: "
                        + ("both restarted after the bus went past 2^32" if rose else
                           "not both restarted (a restart hung in runc is not counted)"))
        ctx.observe("ready-transitions", EVIDENCE, bool(watch.transitions),
                    f"{len(watch.transitions)} Ready transitions after injection", "\n".join(watch.transitions))
        held = ctx.timeline.since_injection()
        if not stuck_seen:
            ctx.observe("runc-stuck", SYMPTOM, False, f"no runc older than {runtime.STUCK_SECONDS} s within "
                        f"{held:.0f} s", deadline=self.watch_seconds)
        if not notready_seen:
            ctx.observe("node-notready-pleg", SYMPTOM, False, f"Ready={watch.last} through {held:.0f} s after "
                        "the injection", deadline=self.watch_seconds)
        if not notready_seen and not stuck_seen:
            ctx.observe("node-ready-past-pleg-threshold", STEADY,
                        watch.last == "True" and held >= hold,
                        f"Ready={watch.last} {held:.0f} s after injection, no runc stuck")

    def repair(self, ctx: Context) -> None:
        ctx.scratch["repaired_at"] = time.monotonic()   # recovery times count from the reexec's start, as before
        res = ctx.node.run(["systemctl", "daemon-reexec"], check=False, timeout=60)
        ctx.observe("daemon-reexec", EVIDENCE, res.ok, f"systemctl daemon-reexec exit {res.rc}",
                    res.stdout + res.stderr)

    def recover(self, ctx: Context) -> None:
        # After the lab's daemon-reexec, or (`nodelab check`) whatever a workshop participant did.
        node = ctx.node
        t0 = ctx.scratch.get("repaired_at", time.monotonic())
        since = "daemon-reexec" if "repaired_at" in ctx.scratch else "the check began"
        ping = {}

        def bus_answers() -> bool:
            ping["last"] = sdbus.ping_systemd(node, timeout=5)
            return ping["last"].answered

        answered = ctx.until(bus_answers, 60, every=0)
        ctx.observe("system-bus-answers-again", RECOVERY, answered,
                    f"Ping {'answered' if answered else 'unanswered'} {time.monotonic() - t0:.0f} s after {since}, serial "
                    f"{ping['last'].serial}",
                    ping["last"].raw)
        ctx.until(lambda: not runtime.stuck_runc(node), 120, every=3)
        stuck = runtime.stuck_runc(node)
        ctx.observe("stuck-runc-gone", RECOVERY, not stuck, f"{len(stuck)} runc older than "
                    f"{runtime.STUCK_SECONDS} s, {time.monotonic() - t0:.0f} s after {since}", "\n".join(stuck))
        ready = ctx.until(lambda: ctx.kube.condition(node.name).status == "True", 240 - (time.monotonic() - t0), every=2)
        ctx.timings["daemon_reexec_to_ready_s"] = round(time.monotonic() - t0, 1)
        cond = ctx.kube.condition(node.name)
        ctx.observe("node-ready-again", RECOVERY, ready,
                    f"Ready={cond.status} {ctx.timings['daemon_reexec_to_ready_s']} s after {since} {cond.message}")
        ctx.scratch["restarts_at_recovery"] = workload.phase_and_restarts(ctx.kube.pod(RESTARTER_POD))[1]
        # (a second `nodelab check` finds the first one's pod there: it starts another)
        after = AFTER_POD if ctx.kube.pod(AFTER_POD) is None else f"{AFTER_POD}-{time.strftime('%H%M%S')}"
        ctx.kube.create_pod(workload.pod(after, node.name, ctx.lab.sandbox_image, "sleep 3600"))
        started = workload.running_within(ctx.kube, after, 300 - (time.monotonic() - t0), every=2)
        ctx.observe("new-pod-starts", RECOVERY, started,
                    f"pod {after} {'Running' if started else 'not Running'} "
                    f"{time.monotonic() - t0:.0f} s after {since}")

    def verify(self, ctx: Context) -> None:
        hold = self.verify_hold_seconds if ctx.timeline.seen(SYMPTOM) else 10
        statuses = []

        def not_ready() -> bool:
            statuses.append(ctx.kube.condition(ctx.node.name).status)
            return statuses[-1] != "True"

        with ctx.timed("verify_ready_hold_s"):
            ctx.until(not_ready, hold, every=5)
        ok = bool(statuses) and all(s == "True" for s in statuses)
        ctx.observe("node-stays-ready", STEADY if not ctx.timeline.seen(SYMPTOM) else RECOVERY, ok,
                    f"Ready over {ctx.timings['verify_ready_hold_s']:.0f} s: "
                    f"{''.join('R' if s == 'True' else 'N' for s in statuses)}")
        phase, restarts = workload.phase_and_restarts(ctx.kube.pod(RESTARTER_POD))
        before = ctx.scratch.get("restarts_at_recovery")
        ctx.observe("restarter-restarts", EVIDENCE, before is None or restarts > before,
                    f"{RESTARTER_POD} {phase}, restarts {restarts} (at recovery: {before})")

    def _pleg_timings(self, ctx: Context, notready_at: float, message: str) -> None:
        """When PLEG last relisted (from kubelet's own message) and how NotReady compares with its threshold."""
        m = PLEG_LAST_SEEN.search(message)
        if m:
            ctx.timings["pleg_last_relist_after_injection_s"] = round(notready_at - timefmt.go_duration(m.group(1)), 1)
        ctx.timings["notready_over_pleg_threshold"] = round(notready_at / PLEG_THRESHOLD_S, 3)


def _restarters(ctx: Context) -> restarters.Restarters:
    return restarters.Restarters(ctx.kube, ctx.node, RESTARTERS)


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch)) + f".{int(epoch % 1 * 10)}"


SCENARIO = CookieOverflow()
