"""A TCP proxy in front of a real Redis or Postgres that counts what crosses the wire.

Round trips are counted as the client's turns: each time the client sends after the
server has answered (or first) on a connection, it waits for the server once more. That
holds for any request/response protocol, pipelined or not: a pipeline of six commands
is one turn, SAQ's pool check before a statement is one turn of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Wire:
    """Counts of one proxy: client turns (round trips) and bytes each way."""

    def __init__(self) -> None:
        self.round_trips = 0
        self.bytes_to_server = 0
        self.bytes_to_client = 0

    def reset(self) -> None:
        self.round_trips = self.bytes_to_server = self.bytes_to_client = 0


class _Connection:
    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.client_spoke_last = False

    async def client_to_server(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while data := await reader.read(65536):
            if not self.client_spoke_last:
                self.wire.round_trips += 1
                self.client_spoke_last = True
            self.wire.bytes_to_server += len(data)
            writer.write(data)
            await writer.drain()
        writer.close()

    async def server_to_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while data := await reader.read(65536):
            self.client_spoke_last = False
            self.wire.bytes_to_client += len(data)
            writer.write(data)
            await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def proxy(port: int) -> AsyncIterator[tuple[int, Wire]]:
    """A proxy to 127.0.0.1:``port`` in this event loop; yields its own port and counts."""
    wire = Wire()
    tasks: set[asyncio.Task[None]] = set()

    async def serve(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", port)
        connection = _Connection(wire)
        pumps = [
            asyncio.create_task(connection.client_to_server(client_reader, server_writer)),
            asyncio.create_task(connection.server_to_client(server_reader, client_writer)),
        ]
        tasks.update(pumps)
        with contextlib.suppress(Exception):
            await asyncio.gather(*pumps)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], wire
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
