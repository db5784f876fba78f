"""memcg's verdict line (scenarios/test_memcg.py): what runs on the VMs measured decide."""

from scenarios.test_memcg import FLAT, SLOWER, _growth


def _run(rows):
    """(zombies, root us, kubepods us) before the churn, then after each wave."""
    base = {"zombies": rows[0][0], "root_us": rows[0][1], "kubepods_us": rows[0][2]}
    return base, [{"zombies": z, "root_us": r, "kubepods_us": k} for z, r, k in rows[1:]]


# A cold CI run of e465081 on Ubuntu 16.04's 4.4: the root's first read 2x slow.
XENIAL_COLD_CI = [(15, 11743.4, 872.1), (32, 7927.3, 2302.9), (48, 10878.1, 4214.7), (64, 10838.0, 5847.0),
                  (80, 12323.2, 7759.6)]
# 2026-12-02 on 4.4, six waves: one wave's root read fell back.
XENIAL_SIX_WAVES = [(15, 3744.5, 303.4), (32, 5193.6, 1630.4), (48, 7908.2, 3169.6), (64, 10338.3, 5025.3),
                    (80, 8429.5, 5035.6), (97, 9769.3, 5945.9), (112, 12113.0, 6930.9)]
# 2026-12-05 on Debian 12's 6.1: the same churn, single reads 2x apart.
BOOKWORM = [(21, 284.1, 261.7), (37, 556.1, 558.4), (53, 498.0, 482.7), (69, 323.3, 311.0), (85, 283.7, 545.3)]


def test_kubepods_line_tells_4_4_from_6_1_where_the_root_line_did_not():
    for rows in (XENIAL_COLD_CI, XENIAL_SIX_WAVES):
        slope, growth = _growth(*_run(rows), "kubepods_us")
        assert growth >= SLOWER and 60 < slope < 120, (slope, growth)
    slope, growth = _growth(*_run(BOOKWORM), "kubepods_us")
    assert growth <= FLAT and abs(slope) < 5, (slope, growth)
    # The root's line on the cold CI run: 4.4 would have read as flat (the failure this line replaces).
    assert _growth(*_run(XENIAL_COLD_CI), "root_us")[1] <= FLAT


def test_one_bad_sample_of_five_does_not_move_the_line():
    base, series = _run([(10, 0, 1000.0), (30, 0, 3000.0), (50, 0, 5000.0), (70, 0, 7000.0), (90, 0, 9000.0)])
    assert _growth(base, series, "kubepods_us") == (100.0, 8.0)
    series[1]["kubepods_us"] = 20000.0   # one read 4x slow
    assert _growth(base, series, "kubepods_us") == (100.0, 8.0)
    flat = [(10, 0, 500.0), (30, 0, 510.0), (50, 0, 1500.0), (70, 0, 495.0), (90, 0, 505.0)]
    assert _growth(*_run(flat), "kubepods_us")[1] <= FLAT
