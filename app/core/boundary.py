"""The API boundary: checks made on the raw request before anything else sees it.

The Special Customer Record refusal (domain.md §2; GEN 62-64, FND 21.3, SES 3.30) comes
first of all, before authentication: SCR customers "must not have their details held on any
electronic systems", so a write whose JSON body says ``"special_customer_record": true`` is
answered 422 here, and none of the body reaches a log line, the database or the idempotency
store.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.asgi import read_body, replay_receive, send_problem
from app.core.problems import ProblemError, SpecialCustomerRecord

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY_BYTES = 1024 * 1024


class PayloadTooLarge(ProblemError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"
    default_detail = "The request body is larger than 1 MiB."


# Stands in for a body that is not JSON: valid JSON that no request schema accepts, so that
# FastAPI runs authentication before it reports the body (api-contract.md order of checks:
# 401, 403, then 422). The validation handler reports it as invalid JSON.
INVALID_JSON_STAND_IN = b'"invalid JSON body"'


def parse(body: bytes) -> tuple[bool, object]:
    try:
        return True, json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False, None


class BoundaryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if len(body) > MAX_BODY_BYTES:
            await send_problem(send, PayloadTooLarge())
            return
        state = scope.setdefault("state", {})
        state["raw_body"] = body
        parsed, document = parse(body) if body.strip() else (True, None)
        if isinstance(document, dict) and document.get("special_customer_record") is True:
            await send_problem(send, SpecialCustomerRecord())
            return
        if not parsed:
            state["invalid_json"] = True
            body = INVALID_JSON_STAND_IN
        await self.app(scope, replay_receive(body, receive), send)
