"""A real HTTP receiver for webhook tests: an asyncio server on 127.0.0.1, started by the
test, that records every request and answers as the test tells it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.settings import Settings


@dataclass
class Received:
    headers: dict[str, str]
    body: str

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0


@dataclass
class Receiver:
    """``answer`` decides each reply from the request (default: 200 at once)."""

    answer: Callable[[Received], Answer] = field(default=lambda _r: Answer())
    received: list[Received] = field(default_factory=list)
    in_progress: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks/prap"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Received(headers=headers, body=body.decode())
            self.received.append(request)
            answer = self.answer(request)
            self.in_progress += 1
            try:
                if answer.delay:
                    await asyncio.sleep(answer.delay)
            finally:
                self.in_progress -= 1
            writer.write(
                f"HTTP/1.1 {answer.status} X\r\ncontent-length: 0\r\n"
                "connection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client gave up (a timeout) or the test is over
        finally:
            writer.close()

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.received]


def sessions_of(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = app.state.sessions
    return sessions


def settings_of(app: FastAPI, **changes: Any) -> Settings:
    settings: Settings = app.state.settings
    return settings.model_copy(update=changes)
