"""Property: whatever a client throws at any write route — arbitrary JSON values, nesting,
encodings, sizes, with or without a token — the answer is a 2xx or a 4xx, never a 5xx; and a
body that says ``"special_customer_record": true`` at its top level (duplicates and broken JSON
included) is refused and leaves no trace in any table or log (api-contract.md, The boundary;
domain.md §2, GEN 62-64).

hypothesis is synchronous and the app async, so the test drives its own loop, app and client.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from app.core.boundary import WRITE_METHODS
from app.core.settings import Settings
from app.main import create_app
from tests.helpers import auth

T = TypeVar("T")

# Names the routes' schemas know, so that many bodies get past the first field.
NAMES = (
    "programme", "provider_id", "participant", "nino", "forename", "surname", "markers",
    "details", "reason", "note", "start_date", "end_date", "end_code", "last_engagement_date",
    "policy_reference", "referral_id", "claim_type", "month", "as_of", "now", "sub", "role",
    "months", "monthly_service_fee_pence", "css1", "eligible", "met", "hours_per_week",
    "initial_meeting_date", "special_customer_record",
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["JFS", "P100", "2026-03-02", "0001-01-01", "9999-12-31", "AB123456C"])
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
ENCODINGS = st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-32", "latin-1"])
CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "application/merge-patch+json", "text/plain", "multipart/x"]
)
CALLERS = st.sampled_from(["none", "jcp", "provider", "post", "admin", "garbage"])


def headers_for(caller: str, content_type: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if caller == "garbage":
        headers["Authorization"] = "Bearer not.a.token"
    elif caller != "none":
        headers.update(auth(caller))
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def write_routes(document: dict[str, Any]) -> list[tuple[str, str]]:
    routes = []
    for template, item in document["paths"].items():
        for method in item:
            if method.upper() in WRITE_METHODS:
                path = template
                for name in ("id", "claim_id", "run_id", "contract_id", "delivery_id"):
                    path = path.replace("{" + name + "}", "01JZZZZZZZZZZZZZZZZZZZZZZZ")
                routes.append((method.upper(), path))
    return sorted(routes)


class Env:
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    routes: list[tuple[str, str]]
    app: Any
    log: io.StringIO
    statuses: Counter[int]

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    async def every_row(self) -> str:
        async with self.app.state.engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
            rows = []
            for table in tables:
                result = await connection.execute(text(f'SELECT * FROM "{table}"'))
                rows += [repr(tuple(row)) for row in result.all()]
        return "\n".join(rows)


ENV = Env()


def with_env(settings: Settings, test: Any) -> None:
    ENV.loop = asyncio.new_event_loop()
    ENV.app = create_app(settings)
    ENV.client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ENV.app), base_url="http://prap.test"
    )
    ENV.routes = write_routes(ENV.app.openapi())
    ENV.log = io.StringIO()
    ENV.statuses = Counter()
    handler = logging.StreamHandler(ENV.log)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s %(args)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        test()
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        ENV.run(ENV.client.aclose())
        ENV.run(ENV.app.state.engine.dispose())
        ENV.loop.close()


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["json", "json", "nested", "bytes", "large", "empty"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "empty":
        return b""
    if kind == "nested":
        depth = draw(st.integers(min_value=1, max_value=3000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        inner = json.dumps(draw(SCALARS))
        text_ = opener * depth + inner + closer * draw(st.integers(0, depth))
        return text_.encode()
    value = draw(JSON)
    if kind == "large":
        value = {"pad": "x" * draw(st.integers(1024 * 1024 - 64, 1024 * 1024 + 64)), "v": value}
    raw = json.dumps(value, ensure_ascii=draw(st.booleans()))
    encoding = draw(ENCODINGS)
    try:
        return raw.encode(encoding)
    except UnicodeEncodeError:
        return raw.encode("utf-8")


def test_no_input_to_any_write_route_is_a_5xx(settings: Settings) -> None:
    @hypothesis_settings(
        max_examples=250,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        route=st.integers(min_value=0, max_value=10_000),
        body=bodies(),
        caller=CALLERS,
        content_type=CONTENT_TYPES,
    )
    def check(route: int, body: bytes, caller: str, content_type: str | None) -> None:
        method, path = ENV.routes[route % len(ENV.routes)]
        note(f"{method} {path} as {caller} ({len(body)} bytes)")
        response = ENV.run(
            ENV.client.request(
                method, path, content=body, headers=headers_for(caller, content_type)
            )
        )
        assert response.status_code < 500, (response.status_code, response.text[:500])
        ENV.statuses[response.status_code] += 1

    with_env(settings, check)
    print(sorted(ENV.statuses.items()))
    assert {401, 403, 413, 422} <= set(ENV.statuses), ENV.statuses
    assert "Traceback" not in ENV.log.getvalue()


@st.composite
def scr_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """A body with a top-level true SCR flag somewhere among its members (perhaps beside a
    false one), carrying a marker that must never be kept, perhaps broken as JSON."""
    marker = f"scr-{uuid.uuid4().hex}"
    members = draw(st.dictionaries(st.sampled_from(NAMES), JSON, max_size=4))
    members.pop("special_customer_record", None)
    members["participant"] = {"forename": marker, "nino": "AB123456C", "note": marker}
    items = [json.dumps(k) + ": " + json.dumps(v) for k, v in members.items()]
    flags = draw(st.sampled_from([["true"], ["true", "false"], ["false", "true"], ["true"] * 2]))
    for flag in flags:
        blank = draw(st.sampled_from(["", " ", "\n\t", "  "]))
        items.insert(
            draw(st.integers(0, len(items))), f'"special_customer_record"{blank}:{blank}{flag}'
        )
    raw = "{" + ", ".join(items) + "}"
    raw += draw(st.sampled_from(["", "", "x", ",", "}", " garbage"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "utf-32"]))
    return raw.encode(encoding), marker


def test_an_scr_body_is_refused_everywhere_and_leaves_no_trace(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    @hypothesis_settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        route=st.integers(min_value=0, max_value=10_000),
        scr=scr_bodies(),
        caller=CALLERS,
        content_type=CONTENT_TYPES,
        key=st.booleans(),
    )
    def check(
        route: int, scr: tuple[bytes, str], caller: str, content_type: str | None, key: bool
    ) -> None:
        body, marker = scr
        method, path = ENV.routes[route % len(ENV.routes)]
        headers = headers_for(caller, content_type)
        if key:
            headers["Idempotency-Key"] = marker
        note(f"{method} {path} as {caller}")
        response = ENV.run(ENV.client.request(method, path, content=body, headers=headers))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "special-customer-record"
        assert marker not in response.text
        assert marker not in ENV.run(ENV.every_row())
        assert marker not in ENV.log.getvalue()
        out, err = capsys.readouterr()  # structlog's lines, wherever they were written
        assert marker not in out + err

    with_env(settings, check)
