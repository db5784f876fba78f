"""Benchmark: warm `up` to node Ready, and `down`, per target (issue 2 asks < 45 s).

Run as root with the caches warm: `python3 -m tox -e bench` or
`python benchmarks/bench_up.py --target xenial-ga --rounds 3`. It uses a lab
of its own (a separate state dir), so a lab the user has up is untouched.
Prints one line per round and the median; it asserts nothing.
"""

import argparse
import os
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", action="append", default=[])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["NODELAB_STATE_DIR"] = tempfile.mkdtemp(prefix="nodelab-bench-")
    from lab.cluster.lab import Lab
    for target in args.target or ["xenial-ga", "bookworm"]:
        ups, downs = [], []
        for i in range(args.rounds):
            lab = Lab(say=lambda m: None)
            lab.control_plane()            # measured apart: up-to-Ready is the node's own time
            t0 = time.monotonic()
            node = lab.up(target, 1)[0]
            ups.append(time.monotonic() - t0)
            mem = node.container.stats(stream=False)["memory_stats"].get("usage", 0) / 2**20
            t0 = time.monotonic()
            lab.down()
            downs.append(time.monotonic() - t0)
            print(f"{target} round {i + 1}: up to Ready {ups[-1]:.1f} s, node memory {mem:.0f} MiB, "
                  f"down {downs[-1]:.1f} s", flush=True)
        print(f"{target}: median up to Ready {statistics.median(ups):.1f} s, "
              f"median down {statistics.median(downs):.1f} s")


if __name__ == "__main__":
    main()
