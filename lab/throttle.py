"""A slow link in front of a real server: a TCP relay that limits the bytes
flowing from the server to its clients to a fixed rate, shared by every
connection (one link, not one per connection). Clients to server is not
limited. It relays bytes only (TLS passes through untouched) and notes each
connection's open/close time and bytes, for the scenario's evidence.
"""

import asyncio
import threading
import time
from dataclasses import dataclass, field

CHUNK = 16 * 1024


@dataclass
class Connection:
    opened: float                 # epoch seconds
    closed: float | None = None
    bytes_down: int = 0           # server -> client
    last_byte: float | None = None  # when the last server byte went to the client


@dataclass
class ThrottledRelay:
    listen: tuple[str, int]       # (address, port); port 0 picks one
    upstream: tuple[str, int]
    bytes_per_second: int
    connections: list[Connection] = field(default_factory=list)

    def start(self) -> "ThrottledRelay":
        self._free_at = 0.0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"relay {self.listen}")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"relay on {self.listen} did not start")
        if self._error:
            raise self._error
        return self

    @property
    def address(self) -> str:
        return f"{self.listen[0]}:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._error = None
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._relay, self.listen[0], self.listen[1]))
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _take(self, n: int) -> None:
        """Reserve n bytes of the link; sleep until they have gone through it."""
        now = time.monotonic()
        start = max(now, self._free_at)
        self._free_at = start + n / self.bytes_per_second
        await asyncio.sleep(self._free_at - now)

    async def _relay(self, reader, writer) -> None:
        conn = Connection(time.time())
        self.connections.append(conn)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            conn.closed = time.time()
            return

        async def pump(src, dst, throttled: bool) -> None:
            try:
                while data := await src.read(CHUNK):
                    if throttled:
                        await self._take(len(data))
                    dst.write(data)
                    await dst.drain()
                    if throttled:
                        conn.bytes_down += len(data)
                        conn.last_byte = time.time()
            except (ConnectionError, OSError):
                pass
            finally:
                try:
                    dst.close()
                except RuntimeError:
                    pass

        try:
            await asyncio.gather(pump(reader, up_writer, False), pump(up_reader, writer, True))
        finally:                  # also when stop() cancels a connection still open
            conn.closed = time.time()

    def stop(self) -> None:
        if getattr(self, "_server", None) is None:
            return

        async def _close():
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            # Let the cancelled connections run their cleanup (close sockets,
            # note their closing time) before the loop stops under them.
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()
        asyncio.run_coroutine_threadsafe(_close(), self._loop)
        self._thread.join(10)
        self._server = None
