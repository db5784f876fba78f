"""The regression gate: every package-keyed scenario must be `immune` on a candidate."""

from lab.recipes import targets
from lab.errors import LabError
from lab.progress import console
from lab.scenario import catalog, runner
from lab.scenario.record import IMMUNE


def gate(lab, base: str, overrides: dict[str, str], names: list[str] | None, directory: str | None) -> int:
    candidate = targets.candidate(base, overrides)
    scenarios = catalog.scenarios(directory)
    chosen = names or sorted(n for n, s in scenarios.items() if s.keyed_on_packages)
    unknown = [n for n in chosen if n not in scenarios]
    if unknown:
        raise LabError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(scenarios))}")
    settings = [n for n in chosen if not scenarios[n].keyed_on_packages]
    if settings:
        raise LabError(f"scenario(s) {', '.join(settings)} hang on a workload or kubelet setting, not on "
                       f"packages; compare their variants with `nodelab run NAME --variant ...` instead")
    results = {n: runner.run(lab, scenarios[n], candidate) for n in chosen}
    failed = {n: r["verdict"] for n, r in results.items() if r["verdict"] != IMMUNE}
    c = console()
    if failed:
        c.print(f"[red]gate FAILED for {candidate.summary}: " +
                ", ".join(f"{n} {v}" for n, v in failed.items()) + "[/red]")
        return 1
    c.print(f"[green]gate passed for {candidate.summary}: {', '.join(chosen)} immune[/green]")
    return 0
