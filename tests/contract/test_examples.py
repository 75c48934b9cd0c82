"""Every operation has request and response examples, recorded from a real exchange
(`prap examples`), and each validates against the schema it illustrates (issue 15)."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from httpx import AsyncClient


def _validate(example: Any, schema: dict[str, Any], components: dict[str, Any]) -> None:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; `#/components/...` refs resolve against
    # the components carried alongside.
    jsonschema_rs.Draft202012Validator({**schema, "components": components}).validate(example)


async def test_every_operation_has_examples_that_fit_their_schemas(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    components = document["components"]
    checked = 0
    for item in document["paths"].values():
        for operation in item.values():
            op_id = operation["operationId"]
            for media in operation.get("requestBody", {}).get("content", {}).values():
                assert "example" in media, f"{op_id}: no request example"
                _validate(media["example"], media["schema"], components)
                checked += 1
            successes = {
                status: response
                for status, response in operation["responses"].items()
                if status.startswith("2") and response.get("content")
            }
            for status, response in successes.items():
                for media_type, media in response["content"].items():
                    assert "example" in media, f"{op_id} {status} {media_type}: no example"
                    _validate(media["example"], media["schema"], components)
                    checked += 1
            for status, response in operation["responses"].items():
                for media in response.get("content", {}).values():
                    if "example" in media and not status.startswith("2"):
                        _validate(media["example"], media["schema"], components)
                        checked += 1
    assert checked > 60
