"""Open websockets by client id, and sending ComfyUI messages to them."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

log = logging.getLogger("comfyui_sim.hub")

# A socket that was closed under us raises one of these from send/close.
SEND_ERRORS = (WebSocketDisconnect, RuntimeError, OSError)


@dataclass(eq=False)
class Connection:
    sid: str
    websocket: WebSocket
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class WebSocketHub:
    """One socket per client id, as in ComfyUI: a new connection with the same id replaces the
    old one in the table (the old socket stays open but receives nothing more). And as in
    ComfyUI, whose handler pops the id when any socket closes, the older socket closing takes
    the id out of the table: the newer socket then receives nothing either."""

    def __init__(self) -> None:
        self._connections: dict[str, Connection] = {}
        self._all: set[Connection] = set()

    def register(self, sid: str, websocket: WebSocket) -> Connection:
        connection = Connection(sid, websocket)
        self._connections[sid] = connection
        self._all.add(connection)
        return connection

    def unregister(self, connection: Connection) -> None:
        """A failed send: forget this socket (and its id, only if it is still this socket's)."""
        self._all.discard(connection)
        if self._connections.get(connection.sid) is connection:
            del self._connections[connection.sid]

    def closed(self, connection: Connection) -> None:
        """A socket closed: ComfyUI's ``sockets.pop(sid)``, whichever socket holds the id."""
        self._all.discard(connection)
        self._connections.pop(connection.sid, None)

    @property
    def client_ids(self) -> list[str]:
        return list(self._connections)

    async def send_to(self, connection: Connection, event: str, data: Any) -> None:
        text = json.dumps({"type": event, "data": data})
        async with connection.lock:
            try:
                await connection.websocket.send_text(text)
            except SEND_ERRORS as ex:
                log.info("dropping websocket %s after a failed send: %r", connection.sid, ex)
                self.unregister(connection)

    async def send(self, event: str, data: Any, sid: str | None) -> None:
        """To ``sid`` only, or to every client when ``sid`` is None (ComfyUI's ``send_sync``)."""
        if sid is None:
            for connection in list(self._connections.values()):
                await self.send_to(connection, event, data)
            return
        target = self._connections.get(sid)
        if target is not None:
            await self.send_to(target, event, data)

    async def close_all(self, code: int) -> int:
        """Close every open socket (also superseded ones); returns how many were open."""
        connections = list(self._all)
        self._all.clear()
        self._connections.clear()
        for connection in connections:
            async with connection.lock:
                try:
                    await connection.websocket.close(code=code)
                except SEND_ERRORS as ex:
                    log.debug("websocket %s was already closed: %r", connection.sid, ex)
        return len(connections)
