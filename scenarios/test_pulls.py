"""One slow registry pull keeps every other pod on the node waiting: kubelet's serialized image pulls.

The incident ("6 entertaining system bugs", history 4): a pod whose image came
from a slow, far registry kept later pods on the same node in
ContainerCreating, although their images would have pulled in a second.
kubelet pulls images one at a time by default (`serializeImagePulls: true`):
one worker goroutine drains the pull queue (pkg/kubelet/images/puller.go).

The lab runs a real registry -- Debian's docker-registry (distribution 2.8),
lab/registry.py -- on its network, reachable directly ("near") and through a
bandwidth-limited relay ("far", lab/throttle.py). On the node it builds two
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

import re
import time

from lab import timefmt
from lab.cluster import workload
from lab.errors import LabError
from lab.polling import until
from lab.progress import say
from lab.fixtures.registry import Registry
from lab.scenario.evidence import EVIDENCE, FIX, INJECTION, RECOVERY, STEADY, SYMPTOM
from lab.scenario.record import IMMUNE, REPRODUCES, BugRecord
from lab.scenario.context import Context
from lab.scenario.definition import Scenario

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
SELECTOR = "nodelab.scenario=pulls"
LARGE, SMALL = "nodelab/large", "nodelab/small"
PULLED = re.compile(r'Successfully pulled image "[^"]+" in (\S+)')
DEFAULTS = {
    "large_mib": 32,          # the large image's own layer
    "slow_kib_per_s": 1024,   # the far path's bandwidth
    "wait_seconds": 240,      # how long a pod may take to run
    "blocked_s": 10,          # B's pull held back at least this long: serialized
}


class SerializedPulls(Scenario):
    name = "pulls"
    record = RECORD
    defaults = DEFAULTS
    variants = {"serial": {}, "parallel": {"kubelet_flags": " ".join(PARALLEL)}}
    primary_runs = (("bookworm", "serial"), ("bookworm", "parallel"))
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
        sizes = _build_and_push(ctx, registry)
        ctx.timings["images_build_push_s"] = round(time.monotonic() - t0, 1)
        ctx.observe("registry-serves-both-paths", EVIDENCE, True,
                    f"{registry.version} at {registry.near} (near) and through the relay at {registry.far} "
                    f"({ctx.setting('slow_kib_per_s')} KiB/s); pushed from the node: {sizes}")
        left = _our_images(ctx)
        cond = ctx.kube.condition(ctx.node.name)
        ctx.observe("node-ready-no-pulls", STEADY, cond.status == "True" and not left and not registry.relay.connections,
                    f"Ready={cond.status}; scenario images on the node: {left or 'none'}; transfers on the slow "
                    f"path: {len(registry.relay.connections)}; kubelet {ctx.scratch['pull_config']}")

    # -- inject and detect ----------------------------------------------------------
    def inject(self, ctx: Context) -> None:
        registry = ctx.scratch["registry"]
        ctx.scratch["first"] = _Round(ctx, "first", a_from=registry.far, b_from=registry.near).start()

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
        near = _Round(ctx, "near", a_from=registry.near, b_from=registry.near).start(wait_for_a_bytes=False).finish()
        _timings(ctx, "near", near)
        ctx.observe("near-registry-unblocks", RECOVERY, near.complete and near.b_to_running_s < ctx.setting("blocked_s"),
                    f"both images from the near registry, pulls still serialized: B Running {near.b_to_running_s} s "
                    f"after creation (A's pull {near.a_pull_s} s) against {first.b_to_running_s} s behind the far "
                    f"registry", raw=near.raw())
        # The kubelet setting.
        _clear(ctx, "near")
        t0 = time.monotonic()
        ctx.lab.restart_kubelet(ctx.node, PARALLEL)
        took = until(lambda: _serialize_setting(ctx) is False, 90, every=2)
        ctx.timings["kubelet_restart_s"] = round(time.monotonic() - t0, 1)
        ctx.observe("kubelet-restarted-with-parallel-pulls", EVIDENCE, took,
                    f"kubelet restarted with {' '.join(PARALLEL)}; /configz serializeImagePulls="
                    f"{_serialize_setting(ctx)}")
        if not took:
            raise LabError("kubelet did not come back with serializeImagePulls=false")
        parallel = _Round(ctx, "parallel", a_from=registry.far, b_from=registry.near).start().finish()
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
        cond = ctx.kube.condition(ctx.node.name)
        left = _our_images(ctx)
        ctx.observe("steady-after", STEADY, cleared and cond.status == "True" and not left,
                    f"the scenario's pods {'gone' if cleared else 'NOT gone'} from the runtime, images removed "
                    f"({left or 'none left'}); Ready={cond.status}")

    def teardown(self, ctx: Context) -> None:
        ctx.kube.delete_pods(SELECTOR)
        registry = ctx.scratch.get("registry")
        if registry:
            registry.stop()


class _Round:
    """Pod A (large image) then pod B (small image), and what kubelet, the
    registry and the slow path said of their pulls."""

    def __init__(self, ctx: Context, name: str, a_from: str, b_from: str):
        self.ctx, self.name = ctx, name
        self.a, self.b = f"pulls-{name}-a", f"pulls-{name}-b"
        self.images = {self.a: f"{a_from}/{LARGE}:1", self.b: f"{b_from}/{SMALL}:1"}
        self.times: dict[str, float] = {}

    def _create(self, pod: str) -> None:
        self.ctx.kube.create_pod(workload.pod(pod, self.ctx.node.name, self.images[pod], "sleep 3600",
                                              labels={"nodelab.scenario": "pulls"}, pull_policy="IfNotPresent"))
        self.times[f"{pod} created"] = time.time()

    def start(self, wait_for_a_bytes: bool = True) -> "_Round":
        ctx = self.ctx
        relay = ctx.scratch["registry"].relay
        self.t0 = time.time()
        self.relay_before = len(relay.connections)
        self._create(self.a)
        if wait_for_a_bytes:
            flowing = until(lambda: self._slow_bytes() >= 256 * 1024, 60, every=0.2)
            if not flowing:
                raise LabError(f"A's layer never flowed on the slow path: {workload.why_not_running(ctx.kube, self.a)}")
            self.times["A's layer flowing"] = time.time()
        self._create(self.b)
        ctx.observe(f"pods-created-{self.name}", INJECTION, True,
                    f"{self.a} ({self.images[self.a]}) then {self.b} ({self.images[self.b]}) on {ctx.node.name}")
        return self

    def _slow_bytes(self) -> int:
        return sum(c.bytes_down for c in self.ctx.scratch["registry"].relay.connections[self.relay_before:])

    def finish(self) -> "_Round":
        ctx, seconds = self.ctx, self.ctx.setting("wait_seconds")
        for pod in (self.b, self.a):
            if workload.running_within(ctx.kube, pod, seconds, every=0.25):
                self.times[f"{pod} Running"] = time.time()
        registry = ctx.scratch["registry"]
        slow = registry.relay.connections[self.relay_before:]
        self.slow_bytes = sum(c.bytes_down for c in slow)
        self.a_last_byte = max((c.last_byte for c in slow if c.last_byte), default=None)
        asked = [r for r in registry.requests() if r.started >= self.t0]    # not the push before
        self.first_request = {repo: min((r.started for r in asked if r.repository == repo), default=None)
                              for repo in (LARGE, SMALL)}
        self.last_request = {repo: max((r.ended for r in asked if r.repository == repo), default=None)
                             for repo in (LARGE, SMALL)}
        if self.a_last_byte is None:   # both near: A's transfer ended with its last blob request
            self.a_last_byte = max((r.ended for r in asked if r.repository == LARGE), default=None)
        self.events = {pod: ctx.kube.events_for(pod) for pod in (self.a, self.b)}
        self.pulls = {pod: _pull_from_events(ctx, pod) for pod in (self.a, self.b)}
        return self

    @property
    def complete(self) -> bool:
        return all(f"{p} Running" in self.times for p in (self.a, self.b)) and \
            None not in (self.a_last_byte, self.first_request[SMALL]) and all(self.pulls.values())

    @property
    def b_running(self) -> float:
        return self.times[f"{self.b} Running"]

    @property
    def b_first_request(self) -> float:
        return self.first_request[SMALL]

    @property
    def b_to_running_s(self) -> float | None:
        return round(self.b_running - self.times[f"{self.b} created"], 1) if f"{self.b} Running" in self.times else None

    @property
    def b_pull_s(self) -> float | None:
        """B's own pull as the registry saw it: its first request to its last answer."""
        first, last = self.first_request[SMALL], self.last_request[SMALL]
        return round(last - first, 2) if None not in (first, last) else None

    @property
    def a_pull_s(self) -> float | None:
        """A's pull: its first request to its last byte (on the slow path, or from the registry)."""
        first = self.first_request[LARGE]
        return round(self.a_last_byte - first, 1) if None not in (first, self.a_last_byte) else None

    @property
    def b_added_wait_s(self) -> float | None:
        """B's time to Running beyond its own pull (the theoretical minimum's main part)."""
        return round(self.b_to_running_s - self.b_pull_s, 1) if None not in (self.b_to_running_s, self.b_pull_s) \
            else None

    @property
    def b_waited_s(self) -> float:
        """From kubelet's "Pulling image" event for B to the registry's first request for B's image."""
        return round(self.b_first_request - self.pulls[self.b]["announced"], 1)

    def summary(self) -> str:
        if not self.complete:
            missing = [p for p in (self.a, self.b) if f"{p} Running" not in self.times]
            return f"round {self.name} incomplete: not Running: {missing or 'none'}; " + \
                "; ".join(f"{p}: {workload.why_not_running(self.ctx.kube, p)}" for p in missing) + \
                f"; slow path {self.slow_bytes} bytes, registry first asked {self.first_request}"
        rel = lambda t: f"{t - self.t0:+.1f}"  # noqa: E731 - seconds since A's creation
        return (f"round {self.name}: A ({self.images[self.a]}) asked of the registry at "
                f"{rel(self.first_request[LARGE])} s, last byte at {rel(self.a_last_byte)} s "
                f"({self.slow_bytes / 2**20:.1f} MiB on the slow path); B ({self.images[self.b]}) created at "
                f"{rel(self.times[self.b + ' created'])} s, kubelet's event Pulling at "
                f"{rel(self.pulls[self.b]['announced'])} s, registry first asked at {rel(self.b_first_request)} s, "
                f"its pull {self.b_pull_s} s (registry), Running at {rel(self.b_running)} s: "
                f"{self.b_to_running_s} s after creation, {self.b_added_wait_s} s more than its own pull; kubelet "
                f"reports B's pull as {self.pulls[self.b]['kubelet_s']} s (1.20 counts the queue in it)")

    def raw(self) -> str:
        lines = [f"{k}: {v - self.t0:+.2f}" for k, v in sorted(self.times.items(), key=lambda kv: kv[1])]
        for pod, events in self.events.items():
            lines += [f"{pod} event: {e}" for e in events]
        return "\n".join(lines + [f"pulls {self.pulls}", f"first registry request {self.first_request}"])


def _pull_from_events(ctx: Context, pod: str) -> dict | None:
    """kubelet's "Pulling image" (when it announced the pull, epoch s) and the
    duration in its "Successfully pulled image ... in Xs" (kubelet 1.20 starts
    that clock before the pull queue, so it includes the wait)."""
    events = ctx.kube.event_objects(pod)
    pulling = [e for e in events if e.reason == "Pulling"]
    pulled = [m.group(1) for e in events if e.reason == "Pulled" for m in [PULLED.search(e.message or "")] if m]
    if not pulling or not pulled:
        return None
    stamp = pulling[0].first_timestamp or pulling[0].event_time
    return {"announced": stamp.timestamp(), "kubelet_s": round(timefmt.go_duration(pulled[0]), 2)}


def _timings(ctx: Context, label: str, r: _Round) -> None:
    ctx.timings.update({f"{label}_b_to_running_s": r.b_to_running_s, f"{label}_b_pull_s": r.b_pull_s,
                        f"{label}_b_added_wait_s": r.b_added_wait_s, f"{label}_a_pull_s": r.a_pull_s})


def _serialize_setting(ctx: Context):
    try:
        return ctx.kube.kubelet_config(ctx.node.name).get("serializeImagePulls", True)
    except LabError:
        return None


def _build_and_push(ctx: Context, registry: Registry) -> str:
    """Build the two images on the node from the lab's busybox, push them
    near, and remove them from the node's docker again."""
    near, base = registry.near, ctx.lab.sandbox_image
    script = f"""set -e
d=/tmp/nodelab-pulls; rm -rf $d; mkdir -p $d/large $d/small
head -c {ctx.setting('large_mib')}M /dev/urandom > $d/large/blob
echo small > $d/small/note
printf 'FROM {base}\\nCOPY blob /blob\\n' > $d/large/Dockerfile
printf 'FROM {base}\\nCOPY note /note\\n' > $d/small/Dockerfile
docker build -q -t {near}/{LARGE}:1 $d/large >/dev/null
docker build -q -t {near}/{SMALL}:1 $d/small >/dev/null
docker push {near}/{LARGE}:1 >/dev/null
docker push {near}/{SMALL}:1 >/dev/null
docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}} {{{{.Size}}}}' | grep nodelab/ | grep -v busybox
docker rmi {near}/{LARGE}:1 {near}/{SMALL}:1 >/dev/null
rm -rf $d
"""
    return "; ".join(ctx.node.run(["sh", "-c", script], timeout=300).stdout.split("\n")).strip("; ")


def _our_images(ctx: Context) -> list[str]:
    """The scenario's images the node's docker has, under either registry address."""
    out = ctx.node.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split()
    return [i for i in out if i.rsplit(":", 1)[0].endswith((f"/{LARGE}", f"/{SMALL}"))]


def _clear(ctx: Context, label: str) -> bool:
    """Delete the scenario's pods and, once the runtime has none of their containers, their images."""
    t0 = time.monotonic()
    ctx.kube.delete_pods(SELECTOR)
    gone = until(lambda: workload.pod_containers_on_node(ctx.node, "pulls-") == 0, 120, every=1)
    ctx.timings[f"clear_after_{label}_s"] = round(time.monotonic() - t0, 1)
    images = _our_images(ctx)
    if images:
        ctx.node.run(["docker", "rmi", "-f", *images], check=False)
    return gone and not _our_images(ctx)


SCENARIO = SerializedPulls()
