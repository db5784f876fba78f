"""An HTTP endpoint on the lab's network that answers after a delay.

Scenarios point real clients (curl in a pod) at it when they need those
clients to live for a known time; it runs in the lab process and stops with
the scenario, so nothing is left on the host.
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlowEndpoint:
    def __init__(self, address: str, delay: float):
        self.address, self.delay = address, delay
        self.requests = 0
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):   # noqa: N802 - http.server's naming
                with endpoint._lock:
                    endpoint.requests += 1
                time.sleep(endpoint.delay)
                body = b"slow\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass    # clients killed mid-request (their pod deleted) are expected

        self._server = Server((address, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="slow-endpoint", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> "SlowEndpoint":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
