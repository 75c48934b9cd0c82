"""``HEAD`` on every ``GET`` (RFC 9110 9.3.2): the same status and headers, no body.

FastAPI's routes list only the methods they are declared with, so without this a ``HEAD``
would be 405. The request runs as the ``GET`` it mirrors, and the body is dropped on the way
out; ``Content-Length`` stays the ``GET``'s, as the RFC allows.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app(dict(scope, method="GET"), receive, without_body)
