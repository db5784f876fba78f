import pytest

from lab.timefmt import go_duration, rfc3339


@pytest.mark.parametrize("text,seconds", [("143.513206ms", 0.143513206), ("1.2s", 1.2), ("1m2.5s", 62.5),
                                          ("850µs", 0.00085), ("2h", 7200)])
def test_go_durations_as_client_go_and_the_registry_print_them(text, seconds):
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1.2", "fast", "1.2s extra"])
def test_what_is_not_a_go_duration_is_refused(text):
    with pytest.raises(ValueError):
        go_duration(text)


def test_nanosecond_stamps_keep_their_fraction():
    assert rfc3339("1970-01-01T00:00:01.123456789Z") == pytest.approx(1.123456789)
    assert rfc3339("2026-11-23T00:50:01Z") == 1795395001.0
