"""A TCP proxy on 127.0.0.1 in front of PostgreSQL that can lose the reply to one COMMIT.

Everything passes through until `arm()`; then the next COMMIT a client sends (a simple-query
`COMMIT`, as Sundial's group commit sends it), or the one after `skip` more, is forwarded,
PostgreSQL commits it, and the connection is closed without the reply: the write is durable but the client sees it fail with
"connection closed", as when the database or the network dies at that moment."""
import asyncio
import threading

COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"
# Time PostgreSQL gets to finish the commit before the connection is closed.
COMMIT_GRACE = 0.3


class CommitReplyDropper:
    def __init__(self, pg_host: str, pg_port: int):
        self.pg_host, self.pg_port = pg_host, pg_port
        self._armed = threading.Event()
        self._skip = 0
        self.commits = 0
        self.cuts = 0
        self._server = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    def arm(self, skip: int = 0) -> None:
        """Loses the reply of the COMMIT after the next `skip` ones."""
        self._skip = skip
        self._armed.set()

    @property
    def armed(self) -> bool:
        return self._armed.is_set()

    async def close(self) -> None:
        if self._server:
            self._server.close()

    async def _handle(self, client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection(self.pg_host, self.pg_port)
        except OSError:
            client_w.close()
            return
        cut = asyncio.Event()

        async def upstream():
            try:
                while not cut.is_set():
                    data = await client_r.read(65536)
                    if not data:
                        break
                    if COMMIT in data:
                        self.commits += 1
                    if COMMIT in data and self._armed.is_set() and self._skip > 0:
                        self._skip -= 1
                    elif COMMIT in data and self._armed.is_set():
                        # From here on nothing PostgreSQL says reaches the client.
                        self._armed.clear()
                        self.cuts += 1
                        cut.set()
                    server_w.write(data)
                    await server_w.drain()
                    if cut.is_set():
                        await asyncio.sleep(COMMIT_GRACE)
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                server_w.close()
                client_w.close()

        async def downstream():
            try:
                while True:
                    data = await server_r.read(65536)
                    if not data or cut.is_set():
                        break
                    client_w.write(data)
                    await client_w.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                client_w.close()

        await asyncio.gather(upstream(), downstream())
