import pytest

from lab.errors import LabError
from lab.scenario.definition import Scenario
from lab.scenario.params import pairs
from lab.recipes.targets import PRIMARY


class Plain(Scenario):
    name = "plain"
    primary_targets = ("xenial-ga", "bookworm")


class WithVariants(Scenario):
    name = "variants"
    variants = {"buggy": {"pid1": "x"}, "fixed": {"pid1": "y"}}
    primary_runs = (("bookworm", "buggy"), ("bookworm", "fixed"))


def test_primary_runs_unless_told():
    assert Plain().runs() == [("xenial-ga", ""), ("bookworm", "")]
    assert WithVariants().runs() == [("bookworm", "buggy"), ("bookworm", "fixed")]
    assert Scenario().runs() == [(t, "") for t in PRIMARY]


def test_targets_and_variants_make_a_matrix():
    assert WithVariants().runs(["xenial-ga"]) == [("xenial-ga", "buggy"), ("xenial-ga", "fixed")]
    assert WithVariants().runs(None, ["fixed"]) == [("bookworm", "fixed")]
    assert Plain().runs(["xenial"]) == [("xenial", "")]


def test_an_unknown_variant_is_a_clear_error():
    with pytest.raises(LabError, match="no variant 'nope'.*known: buggy, fixed"):
        WithVariants().runs(None, ["nope"])


def test_pairs():
    assert pairs(["a=1", "b=x=y"], "--param", "KEY=VALUE") == {"a": "1", "b": "x=y"}
    with pytest.raises(LabError, match="--param takes KEY=VALUE, not 'a'"):
        pairs(["a"], "--param", "KEY=VALUE")
