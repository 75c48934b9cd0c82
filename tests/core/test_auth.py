"""Authentication and authorisation (api-contract.md, Authentication)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from httpx import ASGITransport, AsyncClient
from jose import jwt

from app.core.settings import Settings
from app.main import create_app
from tests.helpers import ADMIN, PROVIDER_A, TEST_SECRET, assert_problem, auth


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "alice",
        "role": "admin",
        "aud": "prap",
        "exp": int(time.time()) + 600,
        "scope": "",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def _get(client: AsyncClient, token: str) -> Any:
    return await client.get("/v1/programmes", headers={"Authorization": f"Bearer {token}"})


async def test_valid_token_is_accepted(client: AsyncClient) -> None:
    response = await _get(client, jwt.encode(_claims(), TEST_SECRET, algorithm="HS256"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: "", id="empty"),
        pytest.param(lambda: "not-a-jwt", id="malformed"),
        pytest.param(
            lambda: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.", id="alg-none"
        ),
        pytest.param(
            lambda: jwt.encode(_claims(), "another-secret", algorithm="HS256"), id="wrong-key"
        ),
        pytest.param(
            lambda: jwt.encode(_claims(), TEST_SECRET, algorithm="HS512"), id="other-algorithm"
        ),
        pytest.param(
            lambda: jwt.encode(_claims(aud="someone-else"), TEST_SECRET, algorithm="HS256"),
            id="wrong-audience",
        ),
        pytest.param(
            lambda: jwt.encode(_claims(aud=None), TEST_SECRET, algorithm="HS256"),
            id="no-audience",
        ),
        pytest.param(
            lambda: jwt.encode(_claims(exp=int(time.time()) - 10), TEST_SECRET, algorithm="HS256"),
            id="expired",
        ),
        pytest.param(
            lambda: jwt.encode(_claims(exp=None), TEST_SECRET, algorithm="HS256"), id="no-expiry"
        ),
        pytest.param(
            lambda: jwt.encode(_claims(role="superuser"), TEST_SECRET, algorithm="HS256"),
            id="unknown-role",
        ),
        pytest.param(
            lambda: jwt.encode(_claims(role="provider"), TEST_SECRET, algorithm="HS256"),
            id="provider-without-provider-id",
        ),
        pytest.param(
            lambda: jwt.encode(_claims(sub=None), TEST_SECRET, algorithm="HS256"), id="no-sub"
        ),
    ],
)
async def test_bad_tokens_are_401(client: AsyncClient, make_token: Any) -> None:
    assert_problem(await _get(client, make_token()), 401, "unauthenticated")


async def test_missing_header_is_401(client: AsyncClient) -> None:
    assert_problem(await client.get("/v1/programmes"), 401, "unauthenticated")
    response = await client.get("/v1/programmes", headers={"Authorization": "Basic abc"})
    assert_problem(response, 401, "unauthenticated")


async def test_expiry_uses_real_time_not_the_sandbox_clock(client: AsyncClient) -> None:
    """api-contract.md: token expiry is always checked against real time."""
    await client.put("/v1/sandbox/clock", json={"now": "2000-01-01T00:00:00Z"})
    expired = jwt.encode(_claims(exp=int(time.time()) - 10), TEST_SECRET, algorithm="HS256")
    assert_problem(await _get(client, expired), 401, "unauthenticated")
    await client.put("/v1/sandbox/clock", json={"now": "2099-01-01T00:00:00Z"})
    valid = jwt.encode(_claims(), TEST_SECRET, algorithm="HS256")
    assert (await _get(client, valid)).status_code == 200


async def test_wrong_role_is_403(client: AsyncClient) -> None:
    body = {
        "provider_id": "P1",
        "programme": "JFS",
        "start_date": "2026-01-01",
        "end_date": "2026-12-31",
        "monthly_service_fee_pence": 1,
    }
    for headers in (auth("jcp"), auth("post"), PROVIDER_A):
        assert_problem(
            await client.post("/v1/contracts", json=body, headers=headers), 403, "forbidden"
        )
    assert (await client.post("/v1/contracts", json=body, headers=ADMIN)).status_code == 201


async def test_provider_without_a_scope_cannot_read(client: AsyncClient) -> None:
    """domain.md §1: reading needs either scope."""
    no_scope = auth("provider", provider_id="P100", scopes=())
    assert_problem(await client.get("/v1/contracts", headers=no_scope), 403, "forbidden")
    claims_only = auth("provider", provider_id="P100", scopes=("claims",))
    assert (await client.get("/v1/contracts", headers=claims_only)).status_code == 200


async def test_rs256_mode_accepts_only_rs256(tmp_path: Path, settings: Settings) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    rs_settings = settings.model_copy(update={"jwt_public_key": public_pem})
    app = create_app(rs_settings)
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
            good = jwt.encode(_claims(), private_pem, algorithm="RS256")
            assert (await _get(client, good)).status_code == 200
            # HS256 signed with the public key as secret: the classic confusion attack.
            confused = jwt.encode(_claims(), TEST_SECRET, algorithm="HS256")
            assert_problem(await _get(client, confused), 401, "unauthenticated")
            other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            forged = jwt.encode(
                _claims(),
                other_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode(),
                algorithm="RS256",
            )
            assert_problem(await _get(client, forged), 401, "unauthenticated")
    finally:
        await app.state.engine.dispose()
