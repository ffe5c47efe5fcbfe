"""hypercorn's TCP connection handler, fixed for a bounded shutdown with TLS.

When hypercorn stops, it closes idle keep-alive connections and then awaits
`Server.wait_closed()`, which waits for every connection to finish closing. A TLS close
waits for the peer's close_notify; clients that hold an idle pooled connection (httpx,
browsers) never send it, so measured here the process hung until SIGKILL. After the
worker is marked terminated, `PromptCloseTCPServer` aborts the transport instead (the
response, if any, has already been written: this only affects idle/finished connections).
"""

from __future__ import annotations

import contextlib

import hypercorn.asyncio.run as hypercorn_run
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.events import Closed

__all__ = ["PromptCloseTCPServer", "install"]


class PromptCloseTCPServer(TCPServer):
    async def _close(self) -> None:
        if not self.context.terminated.is_set():
            await super()._close()
            return
        with contextlib.suppress(Exception):
            self.writer.transport.abort()
        await self.idle_task.stop()

    async def _initiate_server_close(self) -> None:
        await self.protocol.handle(Closed())
        if self.context.terminated.is_set():
            self.writer.transport.abort()  # reader sees EOF at once; no TLS close wait
        else:
            self.writer.close()

    async def run(self) -> None:
        """hypercorn's run, then drop the connection's object graph by reference counting.

        `self.protocol.send` is our bound `protocol_send`: a cycle that kept every closed
        connection (transport, streams, h11/wsproto state, the app's tasks) alive until a
        full collection, which the raised GC thresholds (`run.tune_gc`) make rare. Measured:
        +3.5 MiB of garbage per 500 WebSocket connect/close cycles, never levelling off.
        """
        try:
            await super().run()
        finally:
            self.__dict__.pop("protocol", None)
            self.__dict__.pop("_task_group", None)


def install() -> None:
    """Make hypercorn's asyncio worker use `PromptCloseTCPServer` for every connection."""
    hypercorn_run.TCPServer = PromptCloseTCPServer  # type: ignore[attr-defined]
