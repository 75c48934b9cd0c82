"""The committed OpenAPI document is the one the app serves (api-contract.md, Running it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from httpx import AsyncClient

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


async def test_committed_document_matches_the_served_one(client: AsyncClient) -> None:
    served = (await client.get("/openapi.json")).json()
    committed = json.loads(COMMITTED.read_text())
    assert served == committed, "run `prap openapi` (scripts/export_openapi.py) and commit"


async def test_every_operation_is_documented_properly(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    seen: set[str] = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            op_id = operation["operationId"]
            assert re.fullmatch(r"[a-z][A-Za-z]+", op_id), op_id
            assert op_id not in seen
            seen.add(op_id)
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert "application/problem+json" in response["content"], (path, status)
            assert "500" in operation["responses"], (path, method)
            if path.startswith("/v1/sandbox"):
                assert operation["x-sandbox-only"] is True
    schemas = document["components"]["schemas"]
    assert "Problem" in schemas
    for name in ("ProgrammeCode", "Role", "FundingElement"):
        assert schemas[name]["enum"], name
