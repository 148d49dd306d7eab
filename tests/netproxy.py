"""A TCP proxy on 127.0.0.1 that throttles a link and cuts it on demand: a 4G modem we can control."""

from __future__ import annotations

import asyncio
import threading

from tests.conftest import free_port


class ThrottlingProxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:target_port at `kbit_per_s` in each direction."""

    def __init__(self, target_port: int, kbit_per_s: float) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.bytes_per_s = kbit_per_s * 1000 / 8
        self.cuts = 0
        self.bytes_up = 0  # client -> broker, as on the wire (MQTT framing included)
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proxy", daemon=True)

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(5)

    def cut(self) -> None:
        """Drop every open connection, as a dead zone would."""
        self.cuts += 1
        self._loop.call_soon_threadsafe(self._close_all)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._close_all)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        server.close()
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.run_until_complete(asyncio.sleep(0))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pump(reader, up_writer, upstream=True), self._pump(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            w.transport.abort()
            self._writers.discard(w)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool = False) -> None:
        while data := await reader.read(1024 if self.bytes_per_s < 1e7 else 65536):
            if upstream:
                self.bytes_up += len(data)
            if self.bytes_per_s < 1e7:
                await asyncio.sleep(len(data) / self.bytes_per_s)
            writer.write(data)
            await writer.drain()
        writer.transport.abort()
