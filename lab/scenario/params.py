"""A scenario's parameters, declared and checked before anything boots.

Numbers are `Setting`s (a default and what it means), anything else is an
`Option` (a path, a version, a choice); `kubelet_flags` every scenario takes.
`--param` names a scenario does not declare, and values that do not parse,
are one clear error before a node is started.
"""

from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError


@dataclass(frozen=True)
class Setting:
    """A whole number the scenario runs with; `--param NAME=N` (decimal or 0x-hex) overrides it."""
    default: int
    help: str
    at_least: int = 0
    at_most: int | None = None


@dataclass(frozen=True)
class Option:
    """A parameter that is not a number."""
    help: str
    choices: tuple[str, ...] = ()
    is_file: bool = False          # a path on the lab host that must exist


COMMON = {"kubelet_flags": Option("extra kubelet flags for the run's node, e.g. '--serialize-image-pulls=false'")}


def pairs(items: list[str], option: str, form: str) -> dict[str, str]:
    """KEY=VALUE command-line items as a dict (--param, --set)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise LabError(f"{option} takes {form}, not {item!r}")
        out[name] = value
    return out


def declared(scenario) -> dict:
    """Every parameter the scenario takes: name -> Setting or Option."""
    return {**scenario.defaults, **scenario.options, **COMMON}


def _bound(n: int) -> str:
    """A range's end as the user would write it: hex where it is an address or a cookie."""
    return f"{n:#x}" if n > 2**20 else str(n)


def check(scenario, given: dict) -> dict:
    """The given parameters, parsed (numbers as int); one clear LabError for
    a parameter the scenario does not take or a value that does not fit."""
    known = declared(scenario)
    parsed = {}
    for name, value in given.items():
        if name not in known:
            raise LabError(f"scenario {scenario.name} has no parameter {name!r}; its parameters: "
                           f"{', '.join(sorted(known))} (`nodelab scenarios {scenario.name}` says what each does)")
        kind = known[name]
        if isinstance(kind, Setting):
            try:
                parsed[name] = value if isinstance(value, int) else int(str(value), 0)
            except ValueError:
                raise LabError(f"--param {name}={value}: {name} is a whole number (decimal or 0x-hex) in "
                               f"{scenario.name}: {kind.help}") from None
            if parsed[name] < kind.at_least or (kind.at_most is not None and parsed[name] > kind.at_most):
                top = f" and at most {_bound(kind.at_most)}" if kind.at_most is not None else ""
                raise LabError(f"--param {name}={value}: must be at least {_bound(kind.at_least)}{top}")
            continue
        if kind.choices and value not in kind.choices:
            raise LabError(f"--param {name}={value}: one of {', '.join(kind.choices)}")
        if kind.is_file and not Path(value).is_file():
            raise LabError(f"--param {name}={value}: no such file")
        parsed[name] = value
    return parsed


def describe(scenario) -> list[str]:
    """One line per parameter, for `nodelab scenarios NAME`."""
    lines = []
    for name, kind in sorted(declared(scenario).items()):
        if isinstance(kind, Setting):
            limit = f", {kind.at_least}..{kind.at_most}" if kind.at_most is not None else f", >= {kind.at_least}"
            lines.append(f"{name} (number, default {kind.default}{limit}): {kind.help}")
        else:
            what = f"one of {', '.join(kind.choices)}" if kind.choices else "a file" if kind.is_file else "text"
            lines.append(f"{name} ({what}): {kind.help}")
    return lines
