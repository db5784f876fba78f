import time
import urllib.request

from lab.fixtures.slowhttp import SlowEndpoint


def test_the_endpoint_answers_after_its_delay_and_counts_requests():
    with SlowEndpoint("127.0.0.1", 0.3) as endpoint:
        t0 = time.monotonic()
        body = urllib.request.urlopen(endpoint.url, timeout=10).read()
        waited = time.monotonic() - t0
        assert body == b"slow\n"
        assert waited >= 0.3
        assert endpoint.requests == 1
