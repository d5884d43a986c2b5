"""A TCP proxy between the service and PostgreSQL that can play the database going away: every
open connection cut at once, and new ones refused, until it comes back on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import socket


class TcpProxy:
    """Listens on a local TCP port; forwards to `target`: (host, port), or a unix socket path
    (the embedded PostgreSQL of a run without a configured server)."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target
        self.port = 0
        self.connections = 0  # accepted over the proxy's life
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._accept, sock=sock)

    async def cut(self) -> None:
        """The database restarts: stop listening (new connections refused) and reset every
        open one."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def restore(self) -> None:
        await self.start()

    def freeze(self) -> None:
        """Connections stay open but nothing more gets through (a server that hangs)."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        await self.cut()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if isinstance(self.target, str):
                server_r, server_w = await asyncio.open_unix_connection(self.target)
            else:
                server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        self._links |= {client_w, server_w}
        try:
            await asyncio.gather(
                _pipe(client_r, server_w, self._flowing), _pipe(server_r, client_w, self._flowing)
            )
        finally:
            for writer in (client_w, server_w):
                self._links.discard(writer)
                writer.transport.abort()


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event
) -> None:
    with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            await flowing.wait()
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
