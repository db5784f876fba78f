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
B (small image, near). Detection, from kubelet's events ("Pulling image",
"Successfully pulled image ... in Xs"), the registry's own log (when each
repository was first asked for) and the relay (when A's last byte went):
B's pull starts only when A's transfer is over; B's wait against its own pull
time. Immune (`--serialize-image-pulls=false`): B's pull overlaps A's and B
runs while A is still pulling. Recovery, both remedies of the source: the
same pods with the registry close to the node (both near), then kubelet
restarted with `--serialize-image-pulls=false` and the slow path again.
"""

import time

from lab.cluster import workload
from lab.errors import LabError
from lab.progress import say
from lab.fixtures import pullrace
from lab.fixtures.registry import Registry
from lab.scenario.evidence import EVIDENCE, FIX, INJECTION, RECOVERY, SYMPTOM
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
    "large_mib": Setting(32, "MiB of random bytes in the large image's own layer"),
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
    key_symptoms = ("small-pull-waits-for-slow-pull",)

    def expected(self, ctx: Context) -> tuple[str, str]:
        config = ctx.kube.kubelet_config(ctx.node.name)
        serial, parallel = config.get("serializeImagePulls", True), config.get("maxParallelImagePulls")
        ctx.scratch["pull_config"] = {"serializeImagePulls": serial, "maxParallelImagePulls": parallel}
        if serial or parallel == 1:
            return REPRODUCES, f"the kubelet's /configz says serializeImagePulls={serial}" + \
                (f", maxParallelImagePulls={parallel}" if parallel is not None else "") + ": one pull at a time"
        return IMMUNE, f"the kubelet's /configz says serializeImagePulls={serial}, maxParallelImagePulls=" \
                       f"{parallel if parallel is not None else 'unlimited (kubelet < 1.27)'}: pulls run side by side"

    # -- prepare ----------------------------------------------------------------
    def prepare(self, ctx: Context) -> None:
        gateway = ctx.lab.host_address()
        t0 = time.monotonic()
        registry = Registry(ctx.lab.state, gateway, ctx.setting("slow_kib_per_s") * 1024).start(say)
        ctx.scratch["registry"] = registry
        registry.trust(ctx.node)
        ctx.timings["registry_start_s"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        sizes = pullrace.build_and_push(ctx.node, registry, ctx.lab.sandbox_image, ctx.setting("large_mib"))
        ctx.timings["images_build_push_s"] = round(time.monotonic() - t0, 1)
        ctx.observe("registry-serves-both-paths", EVIDENCE, True,
                    f"{registry.version} at {registry.near} (near) and through the relay at {registry.far} "
                    f"({ctx.setting('slow_kib_per_s')} KiB/s); pushed from the node: {sizes}")

    def steady_state(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        left, registry = pullrace.images_on_node(ctx.node), ctx.scratch["registry"]
        in_flight = [c for c in registry.relay.connections if c.closed is None]
        return {**super().steady_state(ctx),
                "no-scenario-images-on-node": (not left, f"scenario images on the node: {left or 'none'}"),
                "slow-path-idle": (not in_flight, f"{len(in_flight)} transfers open on the slow path")}

    # -- inject and detect ----------------------------------------------------------
    def inject(self, ctx: Context) -> None:
        registry = ctx.scratch["registry"]
        ctx.scratch["first"] = _race(ctx, "first", a_from=registry.far, b_from=registry.near)

    def detect(self, ctx: Context) -> None:
        r = ctx.scratch["first"].finish()
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

    # -- recover --------------------------------------------------------------------
    def recover(self, ctx: Context) -> None:
        registry, first = ctx.scratch["registry"], ctx.scratch["first"]
        # The source's second remedy first (the kubelet still pulls serially):
        # a registry close to the node.
        _clear(ctx, "first")
        near = _race(ctx, "near", a_from=registry.near, b_from=registry.near, wait_for_a_bytes=False).finish()
        _timings(ctx, "near", near)
        ctx.observe("near-registry-unblocks", RECOVERY, near.complete and near.b_to_running_s < ctx.setting("blocked_s"),
                    f"both images from the near registry, pulls still serialized: B Running {near.b_to_running_s} s "
                    f"after creation (A's pull {near.a_pull_s} s) against {first.b_to_running_s} s behind the far "
                    f"registry", raw=near.raw())
        # The kubelet setting.
        _clear(ctx, "near")
        t0 = time.monotonic()
        ctx.lab.restart_kubelet(ctx.node, PARALLEL)
        took = ctx.until(lambda: _serialize_setting(ctx) is False, 90, every=2)
        ctx.timings["kubelet_restart_s"] = round(time.monotonic() - t0, 1)
        ctx.observe("kubelet-restarted-with-parallel-pulls", EVIDENCE, took,
                    f"kubelet restarted with {' '.join(PARALLEL)}; /configz serializeImagePulls="
                    f"{_serialize_setting(ctx)}")
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

    # -- verify and teardown ------------------------------------------------------------
    def verify(self, ctx: Context) -> None:
        cleared = _clear(ctx, "all")
        ctx.observe("pods-gone-from-runtime", EVIDENCE, cleared,
                    f"the scenario's pods {'gone' if cleared else 'NOT gone'} from the runtime, images removed")

    def teardown(self, ctx: Context) -> None:
        registry = ctx.scratch.get("registry")
        if registry:
            registry.stop()


def _race(ctx: Context, name: str, a_from: str, b_from: str, wait_for_a_bytes: bool = True) -> pullrace.PullRace:
    race = pullrace.PullRace(ctx.kube, ctx.node, ctx.scratch["registry"], name, a_from, b_from,
                             ctx.setting("wait_seconds")).start(wait_for_a_bytes)
    ctx.observe(f"pods-created-{name}", INJECTION, True, race.created())
    return race


def _timings(ctx: Context, label: str, r: pullrace.PullRace) -> None:
    ctx.timings.update({f"{label}_b_to_running_s": r.b_to_running_s, f"{label}_b_pull_s": r.b_pull_s,
                        f"{label}_b_added_wait_s": r.b_added_wait_s, f"{label}_a_pull_s": r.a_pull_s})


def _serialize_setting(ctx: Context):
    try:
        return ctx.kube.kubelet_config(ctx.node.name).get("serializeImagePulls", True)
    except LabError:
        return None


def _clear(ctx: Context, label: str) -> bool:
    """Delete the scenario's pods and, once the runtime has none of their containers, their images."""
    t0 = time.monotonic()
    ctx.kube.delete_pods(pullrace.SELECTOR)
    gone = ctx.until(lambda: workload.pod_containers_on_node(ctx.node, "pulls-") == 0, 120, every=1)
    ctx.timings[f"clear_after_{label}_s"] = round(time.monotonic() - t0, 1)
    images = pullrace.images_on_node(ctx.node)
    if images:
        ctx.node.run(["docker", "rmi", "-f", *images], check=False)
    return gone and not pullrace.images_on_node(ctx.node)


SCENARIO = SerializedPulls()
