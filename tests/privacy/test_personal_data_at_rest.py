"""Nothing readable at rest that need not be (domain.md §10): stored idempotent answers are
sealed, and the service refuses to start without its keys outside the sandbox
(api-contract.md, Running it)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text

from app.core.settings import Settings
from app.idempotency.sealing import seal, unseal
from app.main import create_app
from app.privacy.service import rekey_nino_digests
from app.referrals.digests import NinoDigests, nino_digest
from tests.helpers import JCP, Api, assert_problem, create_referral, referral_body


async def test_stored_answers_hold_no_personal_data_in_clear(
    app: FastAPI, client: AsyncClient, api: Api
) -> None:
    """The first answer is stored sealed (no NINO or name in the table) and replayed intact."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    headers = {**JCP, "Idempotency-Key": "rest-1"}
    # Values long enough that the sealed text (base64 of random-looking bytes) cannot contain
    # them by chance, as it can a three-letter name now and then.
    body = referral_body()
    body["participant"] |= {
        "forename": "Wilhelmina-Augusta",
        "surname": "Featherstonehaugh",
        "address": {"lines": ["1 Marmaladeworks Lane", "Leeds"], "postcode": "LS1 1AA"},
    }
    personal_values = ("AB123456C", "Wilhelmina-Augusta", "Featherstonehaugh", "Marmaladeworks")
    first = await client.post("/v1/referrals", headers=headers, json=body)
    assert first.status_code == 201
    assert all(value in first.text for value in personal_values)  # the answer shows them
    async with app.state.engine.connect() as connection:
        stored = await connection.scalar(text("SELECT response_body FROM idempotency_records"))
        digest = await connection.scalar(text("SELECT nino_digest FROM referrals"))
    assert stored is not None
    for personal in personal_values:
        assert personal not in stored
    assert "AB123456C" not in digest
    replay = await client.post("/v1/referrals", headers=headers, json=body)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content


def test_a_sealed_answer_opens_only_for_the_same_caller_key_and_secret() -> None:
    sealed = seal("secret", "jcp||coach", "key-1", b'{"nino": "AB123456C"}')
    assert unseal("secret", "jcp||coach", "key-1", sealed) == b'{"nino": "AB123456C"}'
    assert unseal("secret", "jcp||other", "key-1", sealed) is None
    assert unseal("secret", "jcp||coach", "key-2", sealed) is None
    assert unseal("rotated", "jcp||coach", "key-1", sealed) is None
    assert unseal("secret", "jcp||coach", "key-1", "not base64!") is None


def test_the_nino_digest_is_keyed_and_rotation_keeps_old_digests_matching() -> None:
    """domain.md §10: a keyed one-way digest; a previous key still matches after rotation."""
    old = NinoDigests(("old-key",))
    rotated = NinoDigests(("new-key", "old-key"))
    assert old.current("ab 12 34 56 c") == nino_digest("AB123456C", "old-key")
    assert old.current("AB123456C") != NinoDigests(("other",)).current("AB123456C")
    assert old.current("AB123456C") in rotated.every("AB123456C")
    assert rotated.current("AB123456C") == nino_digest("AB123456C", "new-key")


def test_settings_keys_sandbox_defaults_and_previous_keys() -> None:
    assert Settings(sandbox=True).missing_keys() == []
    assert Settings(sandbox=False, jwt_secret="x").missing_keys() == [
        "PRAP_NINO_DIGEST_KEY",
        "PRAP_IDEMPOTENCY_ENCRYPTION_KEY",
        "PRAP_SECRET_KEY",
    ]
    keys = Settings(nino_digest_key="new", nino_digest_previous_keys="old, older").nino_digest_keys
    assert keys == ("new", "old", "older")


async def test_start_up_stops_without_keys_outside_the_sandbox() -> None:
    """api-contract.md: outside sandbox mode a missing key stops start-up, saying which."""
    application = create_app(
        Settings(
            database_url="sqlite+aiosqlite:///:memory:",
            sandbox=False,
            scheduler=False,
            jwt_secret="x",
        )
    )
    with pytest.raises(RuntimeError, match="PRAP_NINO_DIGEST_KEY"):
        async with application.router.lifespan_context(application):
            pass
    await application.state.engine.dispose()


async def test_rotating_the_digest_key_keeps_the_rules_working(
    app: FastAPI, client: AsyncClient, api: Api
) -> None:
    """domain.md §10, JFS 5.19: after a rotation (new key, old one kept as previous) and a
    re-key, the open referral is stored under the new key and still blocks a second one, and
    searching by the NINO still finds it."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    open_referral = await create_referral(client)
    old_keys = app.state.settings.nino_digest_keys
    rotated = NinoDigests(("a-new-key", *old_keys))
    assert await rekey_nino_digests(app.state.sessions, rotated) == 1
    async with app.state.engine.connect() as connection:
        stored = await connection.scalar(text("SELECT nino_digest FROM referrals"))
    assert stored == rotated.current("AB123456C")
    settings = app.state.settings
    try:
        app.state.settings = settings.model_copy(
            update={"nino_digest_key": "a-new-key", "nino_digest_previous_keys": old_keys[0]}
        )
        again = await client.post("/v1/referrals", headers=JCP, json=referral_body())
        assert_problem(again, 409, "open-referral-exists")
        found = await client.post("/v1/referrals/search", headers=JCP, json={"nino": "AB123456C"})
        assert [r["id"] for r in found.json()["items"]] == [open_referral["id"]]
    finally:
        app.state.settings = settings
