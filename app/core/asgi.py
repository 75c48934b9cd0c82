"""Small helpers for the request pipeline (pure ASGI)."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Message, Receive, Scope

from app.core.problems import ProblemError


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


def problem_body(error: ProblemError, instance: str | None = None) -> bytes:
    payload: dict[str, Any] = error.to_problem(instance).model_dump(exclude_none=True)
    return json.dumps(payload).encode()
