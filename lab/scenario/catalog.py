"""Where scenarios come from: the ones shipped with nodelab (the checkout's
scenarios/, installed as the package `nodelab_scenarios`), plus a user's own
directory of scenario modules (`--scenarios-dir`)."""

import importlib
import importlib.util
import pkgutil
from pathlib import Path

from lab.errors import LabError
from lab.scenario.definition import Scenario

PACKAGE = "nodelab_scenarios"


def _scenario_of(module) -> Scenario | None:
    scenario = getattr(module, "SCENARIO", None)
    return scenario if isinstance(scenario, Scenario) else None


def shipped() -> dict[str, Scenario]:
    package = importlib.import_module(PACKAGE)
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("test_"):
            scenario = _scenario_of(importlib.import_module(f"{PACKAGE}.{info.name}"))
            if scenario:
                found[scenario.name] = scenario
    return found


def from_directory(directory: Path) -> dict[str, Scenario]:
    if not directory.is_dir():
        raise LabError(f"no scenarios directory at {directory}")
    found = {}
    for path in sorted(directory.glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"nodelab_user_scenario_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        scenario = _scenario_of(module)
        if scenario:
            found[scenario.name] = scenario
    return found


def scenarios(directory: str | None = None) -> dict[str, Scenario]:
    """Every scenario by name; a user's directory adds to (and may replace) the shipped ones."""
    found = shipped()
    if directory:
        found.update(from_directory(Path(directory)))
    return found


def get(name: str, directory: str | None = None) -> Scenario:
    found = scenarios(directory)
    if name not in found:
        raise LabError(f"unknown scenario {name!r}; known: {', '.join(sorted(found)) or 'none'}")
    return found[name]
