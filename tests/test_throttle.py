import socket
import threading
import time

from lab.fixtures.throttle import ThrottledRelay


def _server(payload: bytes) -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.recv(16)            # the client speaks first, unthrottled
            conn.sendall(payload)
    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def test_the_relay_passes_bytes_intact_no_faster_than_its_rate():
    payload = bytes(range(256)) * 800          # 200 KiB
    srv, port = _server(payload)
    relay = ThrottledRelay(("127.0.0.1", 0), ("127.0.0.1", port), bytes_per_second=100 * 1024).start()
    try:
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", relay.port)) as c:
            c.sendall(b"hello")
            got = b""
            while chunk := c.recv(65536):
                got += chunk
        took = time.monotonic() - t0
    finally:
        relay.stop()
        srv.close()
    assert got == payload
    # A token bucket with no burst cannot deliver faster than its rate: 2 s
    # for 200 KiB at 100 KiB/s (one chunk may go before the first sleep).
    assert took >= (len(payload) - 16 * 1024) / (100 * 1024)
    assert relay.connections[0].bytes_down == len(payload)
    assert relay.connections[0].closed is not None


def test_a_relay_whose_port_is_taken_says_so():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        relay = ThrottledRelay(("127.0.0.1", holder.getsockname()[1]), ("127.0.0.1", 1), 1000)
        try:
            relay.start()
        except OSError as exc:
            assert "address already in use" in str(exc).lower()
        else:
            raise AssertionError("a relay started on a port that is in use")
    finally:
        holder.close()


def test_stopping_the_relay_closes_and_notes_connections_still_open():
    payload = b"x" * 1024
    srv, port = _server(payload)
    relay = ThrottledRelay(("127.0.0.1", 0), ("127.0.0.1", port), bytes_per_second=100 * 1024).start()
    try:
        with socket.create_connection(("127.0.0.1", relay.port)) as c:
            c.sendall(b"hello")
            c.settimeout(5)
            got = b""
            while len(got) < len(payload):
                got += c.recv(65536)
            relay.stop()                       # the client has not closed yet
            assert c.recv(1) == b""            # the relay closed its side
    finally:
        relay.stop()
        srv.close()
    assert relay.connections[0].closed is not None


def test_the_relay_as_a_process_of_the_lab_outlives_its_handle_and_is_seen_through_its_snapshot(tmp_path):
    from lab.fixtures.throttle import RelayProcess
    from lab.owned.state import LabState
    state = LabState(tmp_path / "state")
    payload = bytes(range(256)) * 400          # 100 KiB
    srv, port = _server(payload)
    relay = RelayProcess.start(state, "test-relay", "127.0.0.1", ("127.0.0.1", port), 200 * 1024, tmp_path)
    try:
        assert relay.running() and relay.port
        with socket.create_connection(("127.0.0.1", relay.port)) as c:
            c.sendall(b"hello")
            got = b""
            while chunk := c.recv(65536):
                got += chunk
        assert got == payload
        # Another handle (a later command) finds the same relay and its connection.
        again = RelayProcess(state, "test-relay", tmp_path / "relay.json")
        deadline = time.monotonic() + 5
        while not (again.connections and again.connections[0].closed) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert again.connections[0].bytes_down == len(payload)
        assert again.connections[0].closed is not None
    finally:
        relay.stop()
        srv.close()
    assert not relay.running()
    assert state.resources("process", "test-relay") == []
