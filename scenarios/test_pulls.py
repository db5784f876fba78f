"""One slow registry pull keeps every other pod on the node waiting: kubelet's serialized image pulls.

The incident ("6 entertaining system bugs", history 4): a pod whose image came
from a slow, far registry kept later pods on the same node in
ContainerCreating, although their images would have pulled in a second.
kubelet pulls images one at a time by default (`serializeImagePulls: true`):
one worker goroutine drains the pull queue (pkg/kubelet/images/puller.go).

The lab runs a real registry -- Debian's docker-registry (distribution 2.8),
lab/fixtures/registry.py -- on its network, reachable directly ("near") and through a
bandwidth-limited relay ("far", lab/fixtures/throttle.py). On the node it builds two
images from the lab's busybox: "large" (one layer of random bytes, tens of
MiB, so nothing compresses it) and "small" (a few bytes over busybox), pushes
them, and removes them from the node's docker so kubelet must pull.

Steady state: node Ready, neither image on the node, no transfer on the slow
path. Injection: pod A (large image, far) and, once A's layer is flowing, pod
B (small image, near). Detection, while A's layer still crawls (the node as a
participant of the workshop finds it): B not Running and its image never
asked of the registry `blocked_s` after its creation. Then, once both run,
from kubelet's events ("Pulling image", "Successfully pulled image ... in
Xs"), the registry's own log (when each repository was first asked for) and
the relay (when A's last byte went): B's pull began only when A's transfer
was over; B's wait against its own pull time. Immune
(`--serialize-image-pulls=false`): B runs while A is still pulling.
Repair, both remedies of the source: the same pods with the registry close to
the node (both near), then kubelet restarted with
`--serialize-image-pulls=false` and the slow path again. Recovery (what
`nodelab check` asks of a participant's repair): the newest B Running and
kubelet's /configz saying it pulls side by side.
"""

import json
import time

from lab.cluster import workload
from lab.errors import LabError
from lab.progress import say
from lab.fixtures import pullrace
from lab.fixtures import registry as registry_fixture
from lab.fixtures.registry import Registry
from lab.scenario.evidence import EVIDENCE, FIX, INJECTION, RECOVERY, STEADY, SYMPTOM
from lab.scenario.record import IMMUNE, REPRODUCES, BugRecord
from lab.scenario.context import Context
from lab.scenario.definition import Scenario
from lab.scenario.params import Setting

RECORD = BugRecord(
    id="kubelet-serial-image-pulls",
    title="one slow registry pull blocks every other pod on the node (serialized image pulls)",
    component="kubelet",
    mechanism="with serializeImagePulls (the default) kubelet pulls images one at a time: one worker goroutine "
              "drains the pull queue (pkg/kubelet/images/puller.go), so a pod whose image comes from a slow "
              "registry keeps every later pod on the node waiting for its own, even tiny, image",
    references=(
        "kubernetes #83471, #109956 (serial pulls block unrelated pods)",
        "kubelet --serialize-image-pulls=false; 1.27+: maxParallelImagePulls (KEP-3673)",
        "6 entertaining system bugs, history 4",
    ),
    affected="every kubelet with serializeImagePulls=true, the default of every release; no version changes it",
)

PARALLEL = ("--serialize-image-pulls=false",)
DEFAULTS = {
    "large_mib": Setting(48, "MiB of random bytes in the large image's own layer"),
    "slow_kib_per_s": Setting(1024, "the far (slow) path's bandwidth, KiB/s"),
    "wait_seconds": Setting(240, "how long a pod may take to run"),
    "blocked_s": Setting(10, "B's pull held back at least this long counts as serialized"),
}


class SerializedPulls(Scenario):
    name = "pulls"
    record = RECORD
    defaults = DEFAULTS
    variants = {"serial": {}, "parallel": {"kubelet_flags": " ".join(PARALLEL)}}
    primary_runs = (("bookworm", "serial"), ("bookworm", "parallel"))
    # kubelet's pull queue does not care what the node is: on VMs only when asked (--target).
    primary_runs_on = {"qemu": ()}
    keyed_on_packages = False
    key_symptoms = ("small-pull-held-back", "small-pull-waits-for-slow-pull")
    # A workshop's slow pull must outlast the participant's investigation (~12 min, not 48 s).
    workshop_params = {"slow_kib_per_s": 64}

    def expected(self, ctx: Context) -> tuple[str, str]:
        one_at_a_time, shown = _pull_config(ctx)
        return (REPRODUCES, f"the kubelet's /configz says {shown}: one pull at a time") if one_at_a_time else \
            (IMMUNE, f"the kubelet's /configz says {shown}: pulls run side by side")

    # -- prepare ----------------------------------------------------------------
    def prepare(self, ctx: Context) -> None:
        gateway = ctx.lab.host_address()
        t0 = time.monotonic()
        registry = Registry(ctx.lab.state, gateway, ctx.setting("slow_kib_per_s") * 1024).start(say)
        ctx.scratch["registry"], ctx.scratch["registry_where"] = registry, registry.where()
        registry.trust(ctx.node)
        ctx.timings["registry_start_s"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        sizes = pullrace.build_and_push(ctx.node, registry, ctx.lab.sandbox_image, ctx.setting("large_mib"))
        ctx.timings["images_build_push_s"] = round(time.monotonic() - t0, 1)
        ctx.observe("registry-serves-both-paths", EVIDENCE, True,
                    f"{registry.version} at {registry.near} (near) and through the relay at {registry.far} "
                    f"({ctx.setting('slow_kib_per_s')} KiB/s); pushed from the node: {sizes}")

        # Before the injection only: after a workshop's repair, A's pull may
        # rightly still crawl (pulls no longer wait for it).
        in_flight = [c for c in registry.relay.connections if c.closed is None]
        ctx.observe("slow-path-idle", STEADY, not in_flight, f"{len(in_flight)} transfers open on the slow path")

    def steady_state(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        left = pullrace.images_on_node(ctx.node)
        return {**super().steady_state(ctx),
                "no-scenario-images-on-node": (not left, f"scenario images on the node: {left or 'none'}")}

    # -- inject and detect ----------------------------------------------------------
    def inject(self, ctx: Context) -> None:
        registry = ctx.scratch["registry"]
        ctx.scratch["first"] = _race(ctx, "first", a_from=registry.far, b_from=registry.near)

    def detect(self, ctx: Context) -> None:
        race = ctx.scratch["first"]
        look = race.look(ctx.setting("blocked_s"))
        ctx.timings["first_look_b_age_s"] = look.b_age_s
        if look.b_held_back:
            # The node as the incident (and a workshop) shows it; the race goes
            # on, and repair measures it to the end.
            ctx.observe("small-pull-held-back", SYMPTOM, True, look.summary())
            return
        ctx.observe("small-pull-not-held-back", EVIDENCE, True, look.summary())
        _measure_first(ctx, race.finish())

    # -- repair and recover -----------------------------------------------------------
    def repair(self, ctx: Context) -> None:
        """Both remedies of the source, after the first race is measured to its end."""
        registry, first = ctx.scratch["registry"], ctx.scratch["first"]
        if "first_measured" not in ctx.scratch:
            _measure_first(ctx, first.finish())
        # A registry close to the node (the kubelet still pulls serially).
        _clear(ctx, "first")
        near = _race(ctx, "near", a_from=registry.near, b_from=registry.near, wait_for_a_bytes=False).finish()
        _timings(ctx, "near", near)
        ctx.observe("near-registry-unblocks", RECOVERY, near.complete and near.b_to_running_s < ctx.setting("blocked_s"),
                    f"both images from the near registry, pulls still serialized: B Running {near.b_to_running_s} s "
                    f"after creation (A's pull {near.a_pull_s} s) against {first.b_to_running_s} s behind the far "
                    f"registry", raw=near.raw())
        # The kubelet setting, proven on the slow path again.
        _clear(ctx, "near")
        t0 = time.monotonic()
        ctx.lab.restart_kubelet(ctx.node, PARALLEL)
        took = ctx.until(lambda: _pull_config(ctx, answering=False)[0] is False, 90, every=2)
        ctx.timings["kubelet_restart_s"] = round(time.monotonic() - t0, 1)
        ctx.observe("kubelet-restarted-with-parallel-pulls", EVIDENCE, took,
                    f"kubelet restarted with {' '.join(PARALLEL)}; /configz: {_pull_config(ctx, answering=False)[1]}")
        if not took:
            raise LabError("kubelet did not come back with serializeImagePulls=false")
        parallel = _race(ctx, "parallel", a_from=registry.far, b_from=registry.near).finish()
        _timings(ctx, "parallel", parallel)
        ratio = round(first.b_to_running_s / parallel.b_to_running_s, 1) if parallel.complete else None
        ctx.timings["b_to_running_ratio_serial_to_parallel"] = ratio
        overlap = parallel.complete and parallel.b_running < parallel.a_last_byte
        ctx.observe("parallel-pulls-unblock", RECOVERY, overlap,
                    f"with {' '.join(PARALLEL)}: B Running {parallel.b_to_running_s} s after creation "
                    f"({parallel.b_added_wait_s} s beyond its own {parallel.b_pull_s} s pull), "
                    f"{parallel.a_last_byte - parallel.b_running:.1f} s before A's transfer ended; serialized: "
                    f"{first.b_to_running_s} s ({first.b_added_wait_s} s added); ratio {ratio}"
                    if parallel.complete else parallel.summary(), raw=parallel.raw())

    def recover(self, ctx: Context) -> None:
        """The newest small-image pod runs, and kubelet says it no longer pulls one image at a time."""
        newcomer = _newcomer(ctx)
        running = ctx.until(lambda: workload.phase_and_restarts(ctx.kube.pod(newcomer))[0] == "Running",
                            ctx.setting("wait_seconds"), every=1)
        ctx.observe("newcomer-running", RECOVERY, running,
                    f"{newcomer} {'Running' if running else 'not Running: ' + workload.why_not_running(ctx.kube, newcomer)}")
        one_at_a_time, shown = _pull_config(ctx)
        ctx.observe("kubelet-pulls-side-by-side", RECOVERY, not one_at_a_time,
                    f"kubelet's /configz: {shown}" + (
                        ": one pull at a time still, so the next slow pull holds every pod behind it again"
                        if one_at_a_time else ""))

    # -- verify and teardown ------------------------------------------------------------
    def verify(self, ctx: Context) -> None:
        cleared = _clear(ctx, "all")
        ctx.observe("pods-gone-from-runtime", EVIDENCE, cleared,
                    f"the scenario's pods {'gone' if cleared else 'NOT gone'} from the runtime, images removed")

    def release(self, lab) -> None:
        # This run's registry and relay, or those a workshop's break left (also
        # when its node is gone); also when an interrupt came while they were starting.
        registry_fixture.stop(lab.state)


def _race(ctx: Context, name: str, a_from: str, b_from: str, wait_for_a_bytes: bool = True) -> pullrace.PullRace:
    race = pullrace.PullRace(ctx.kube, ctx.node, ctx.scratch["registry"], name, a_from, b_from,
                             ctx.setting("wait_seconds")).start(wait_for_a_bytes)
    ctx.scratch["newcomer"] = race.b   # the pod that recovery wants Running (a workshop's check too)
    ctx.observe(f"pods-created-{name}", INJECTION, True, race.created())
    return race


def _newcomer(ctx: Context) -> str:
    """The pod recovery wants Running: the newest race's B or, where an earlier
    workshop check's verify has cleared it, a fresh one with B's image from the
    near registry (pulls that still wait behind a slow one hold it back too)."""
    name = ctx.scratch["newcomer"]
    if ctx.kube.pod(name) is None:
        name = ctx.scratch["newcomer"] = "pulls-check-b"
        if ctx.kube.pod(name) is None:
            where = ctx.scratch["registry_where"]
            ctx.kube.create_pod(workload.pod(name, ctx.node.name, f"{where['address']}:{where['port']}/{pullrace.SMALL}:1",
                                             "sleep 3600", labels=pullrace.LABELS, pull_policy="IfNotPresent"))
    return name


def _pull_config(ctx: Context, answering: bool = True) -> tuple[bool | None, str]:
    """Whether kubelet pulls one image at a time, and its /configz settings as it
    says them; (None, why) when it does not answer and need not (a restart)."""
    try:
        config = ctx.kube.kubelet_config(ctx.node.name)
    except LabError:
        if answering:
            raise
        return None, "no answer (kubelet restarting?)"
    serial, parallel = config.get("serializeImagePulls", True), config.get("maxParallelImagePulls")
    limit = f", maxParallelImagePulls={parallel}" if parallel is not None else \
        "" if serial else " (no maxParallelImagePulls before kubelet 1.27: unlimited)"
    return bool(serial or parallel == 1), f"serializeImagePulls={json.dumps(serial)}{limit}"


def _measure_first(ctx: Context, r: pullrace.PullRace) -> None:
    """The first race to its end: when B's pull really began against A's last byte."""
    ctx.scratch["first_measured"] = True
    ctx.observe("pulls-measured", EVIDENCE, r.complete, r.summary(), raw=r.raw())
    _timings(ctx, "first", r)
    if not r.complete:
        return
    if r.b_waited_s >= ctx.setting("blocked_s") and r.b_first_request >= r.a_last_byte - 1:
        ctx.observe("small-pull-waits-for-slow-pull", SYMPTOM, True,
                    f"B's image was first asked of the registry {r.b_first_request - r.a_last_byte:+.1f} s after "
                    f"A's last byte left the slow path; kubelet said Pulling for B {r.b_waited_s} s before its "
                    f"pull began; B Running {r.b_to_running_s} s after creation for a {r.b_pull_s} s pull of its "
                    f"own: {r.b_added_wait_s} s added")
    elif r.b_first_request < r.a_last_byte and r.b_running < r.a_last_byte:
        ctx.observe("pulls-overlap", FIX, True,
                    f"B's pull began {r.a_last_byte - r.b_first_request:.1f} s before A's transfer ended and B "
                    f"was Running {r.a_last_byte - r.b_running:.1f} s before it; B Running {r.b_to_running_s} s "
                    f"after creation for a {r.b_pull_s} s pull of its own: {r.b_added_wait_s} s added")
    else:
        ctx.observe("pulls-neither-blocked-nor-overlapping", EVIDENCE, True, r.summary())


def _timings(ctx: Context, label: str, r: pullrace.PullRace) -> None:
    ctx.timings.update({f"{label}_b_to_running_s": r.b_to_running_s, f"{label}_b_pull_s": r.b_pull_s,
                        f"{label}_b_added_wait_s": r.b_added_wait_s, f"{label}_a_pull_s": r.a_pull_s})


def _clear(ctx: Context, label: str) -> bool:
    """Delete the scenario's pods and, once the runtime has none of their containers, their images."""
    t0 = time.monotonic()
    ctx.kube.delete_pods(pullrace.SELECTOR)
    ctx.until(lambda: workload.pod_containers_on_node(ctx.node, "pulls-", exited=False) == 0, 120, every=1)
    # kubelet's container GC removes exited containers once a minute (a minute per
    # clear, measured); the lab removes its own namespace's at once, so that their
    # images can go and the next race pulls every layer again.
    ctx.node.run(["sh", "-c", f"docker ps -aq --filter status=exited --filter status=created --filter "
                              f"label=io.kubernetes.pod.namespace={ctx.kube.namespace} | xargs -r docker rm -f"],
                 check=False)
    gone = ctx.until(lambda: workload.pod_containers_on_node(ctx.node, "pulls-") == 0, 120, every=1)
    ctx.timings[f"clear_after_{label}_s"] = round(time.monotonic() - t0, 1)
    images = pullrace.images_on_node(ctx.node)
    if images:
        ctx.node.run(["docker", "rmi", "-f", *images], check=False)
    return gone and not pullrace.images_on_node(ctx.node)


SCENARIO = SerializedPulls()
