"""Small helpers for the pure-ASGI middlewares."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from app.core.problems import PROBLEM_CONTENT_TYPE, ProblemError


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return b"".join(chunks)


def replay_receive(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then defers to the real one."""
    sent = False

    async def _receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return _receive


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def send_response(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> None:
    raw = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def problem_body(error: ProblemError, instance: str | None = None) -> bytes:
    payload: dict[str, Any] = error.to_problem(instance).model_dump(exclude_none=True)
    return json.dumps(payload).encode()


async def send_problem(send: Send, error: ProblemError, instance: str | None = None) -> None:
    headers = [(b"content-type", PROBLEM_CONTENT_TYPE.encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send_response(send, error.status, problem_body(error, instance), headers)
