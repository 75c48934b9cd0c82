"""Request bodies are JSON: anything else is 415 ``unsupported-media-type``
(api-contract.md, order of checks: after 401 and 403, before 422).

JSON-typed means ``application/json`` or any ``application/*+json`` (RFC 6839), such as
``application/merge-patch+json``. A request without a body needs no ``Content-Type``.
"""

from __future__ import annotations

import functools
from email.message import Message

from fastapi import Request

from app.core.problems import UnsupportedMediaType

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    return _is_json_media_type(content_type)


@functools.lru_cache(maxsize=256)
def _is_json_media_type(content_type: str) -> bool:
    # Parsed as a MIME header (parameters, case, spacing); a client sends the same few.
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def require_json_body(request: Request) -> None:
    """Raise 415 for a write whose body is not JSON-typed. A dependency, so that it runs
    where the order of checks puts it: ``require`` calls it after the role and scope checks,
    and routes without a token take it as a router dependency."""
    if request.method not in _WRITE_METHODS or not request.scope["path"].startswith("/v1/"):
        return  # the API's bodies are JSON; the console's forms are HTML forms
    if is_json_media_type(request.headers.get("content-type")):
        return
    if await request.body():
        raise UnsupportedMediaType()
