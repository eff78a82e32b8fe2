"""The simulator's loopback TCP servers share one lifecycle: bind (port 0 picks a free
port), know their clients so ``stop()`` can close them, and hand each connection to
``serve``. The SCPI instruments and the control channel build on it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


class TcpServer:
    """One asyncio TCP server in the caller's loop; subclasses implement ``serve``."""

    #: Longest line a client may send (asyncio's stream limit).
    line_limit: int = 1 << 16

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self._server: asyncio.base_events.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> Any:
        self._server = await asyncio.start_server(
            self._connection, self.host, self._requested_port, limit=self.line_limit
        )
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._clients):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Any:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            await self.serve(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Talk to one client until it goes away."""
        raise NotImplementedError
