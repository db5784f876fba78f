from pathlib import Path

import pytest

from lab.scenario.record import IMMUNE, INCONCLUSIVE, REPRODUCES, BugRecord, Fix, upstream
from lab.scenario.catalog import from_directory as load_scenarios

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@pytest.mark.parametrize("version, up", [("229-4ubuntu4", "229"), ("252.39-1~deb12u2", "252.39"),
                                         ("1:2.0-3", "2.0"), ("242", "242")])
def test_upstream_part(version, up):
    assert upstream(version) == up


@pytest.fixture(scope="module")
def cookie_record():
    return load_scenarios(SCENARIOS)["cookie"].record


@pytest.mark.parametrize("systemd, verdict", [
    ("229-4ubuntu4", REPRODUCES),          # Ubuntu 16.04 release pocket
    ("229-4ubuntu21.28", REPRODUCES),      # last update before the backport
    ("229-4ubuntu21.29", IMMUNE),          # LP #1876600 backport
    ("229-4ubuntu21.31", IMMUNE),          # xenial-updates today
    ("241-7~deb10u8", REPRODUCES),         # last upstream release without the fix
    ("242-1", IMMUNE),                     # upstream fix
    ("252.39-1~deb12u2", IMMUNE),          # Debian 12
    ("219-62.7", REPRODUCES), ("219-62.8", IMMUNE),   # RHEL 7.6.z backport line
    ("237-3ubuntu10.57", REPRODUCES),      # 237 < 242 and the record knows no backport for that line
])
def test_cookie_expected_verdicts(cookie_record, systemd, verdict):
    assert cookie_record.expected({"systemd": systemd})[0] == verdict


def test_missing_component_is_inconclusive(cookie_record):
    verdict, why = cookie_record.expected({"systemd": None})
    assert verdict == INCONCLUSIVE and "not installed" in why


def test_backport_applies_only_to_its_line():
    record = BugRecord("b", "t", "pkg", "m", (), "all", fixes=(Fix("229-4ubuntu21.29", "backport", line="229"),))
    assert record.expected({"pkg": "230-1"})[0] == REPRODUCES
    assert record.expected({"pkg": "229-4ubuntu21.30"})[0] == IMMUNE
