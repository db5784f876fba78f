"""Stand-ins for programs no reachable package source ships, built on the host.

A stand-in behaves as the original does in the way a scenario depends on
(its source says how, and the scenario's report names it); the scenario
accepts the real program when the user supplies one. Built statically with
the host's gcc (lab.recipes.cbuild).
"""

from pathlib import Path

from lab.recipes import cbuild

STANDINS = {
    "supercronic": "nodelab-cron-standin.c",
}


def build(name: str) -> Path:
    """Path of the built stand-in for `name` (compiled once per source/compiler)."""
    return cbuild.static_binary(STANDINS[name], name)
