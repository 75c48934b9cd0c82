"""Erasure of a participant's personal data (GEN 136-137, domain.md §10; api-contract.md
eraseReferral)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import inspect, text

from app.privacy.rules import (
    NON_PERSONAL_EVENT_FIELDS,
    PERSONAL_EVENT_FIELDS,
    erased_event_data,
)
from app.referrals.schemas import EventOut
from tests.claim_support import CLERK_A
from tests.helpers import JCP, POST, PROVIDER_A, Api, act, assert_problem, create_referral

# Distinctive values, so a scan finds them wherever they are and nowhere by chance.
SENT_NINO = "zx 12 34 56 a"
NINO = "ZX123456A"
PARTICIPANT: dict[str, Any] = {
    "title": "Dame",
    "forename": "Zephyrine",
    "surname": "Quillfeather",
    "nino": SENT_NINO,
    "date_of_birth": "1971-02-13",
    "address": {"lines": ["77 Wraxhill Lane", "Knaresborough"], "postcode": "HG5 8QZ"},
    "phone": "01423 998877",
    "mobile": "07700 931313",
    "email": "zephyrine.q@example.net",
    "welsh_language": True,
}
DETAILS = {
    "qualifications": "Harpsichord diploma",
    "aims": "Become a lighthouse keeper",
    "childcare": "Twins at Oakbrook nursery",
}
NOTE = "Zephyrine phoned about her hip operation"
BACK_OUT_REASON = "Quillfeather start keyed against the wrong person"

PERSONAL_VALUES = [
    "Zephyrine",
    "Quillfeather",
    NINO,
    SENT_NINO,
    "1971-02-13",
    "Wraxhill",
    "Knaresborough",
    "HG5 8QZ",
    "998877",
    "931313",
    "zephyrine.q@example.net",
    "Harpsichord",
    "lighthouse",
    "Oakbrook",
    "hip operation",
    "wrong person",
]


def _body(**overrides: Any) -> dict[str, Any]:
    return {
        "programme": "SES",
        "provider_id": "P100",
        "participant": PARTICIPANT,
        "markers": {"mappa": False, "safeguard": True, "disabled": True},
        "details": DETAILS,
        **overrides,
    }


async def _scan(app: FastAPI) -> dict[str, list[str]]:
    """Every value of every row of every table, as text, per table."""
    engine = app.state.engine
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        found: dict[str, list[str]] = {}
        for table in tables:
            rows = (await connection.execute(text(f'SELECT * FROM "{table}"'))).all()
            found[table] = [str(value) for row in rows for value in row]
    return found


async def _lifecycle(client: AsyncClient, api: Api) -> list[str]:
    """A participant created, searched for, acted on (with notes), claimed for and paid."""
    await api.set_today("2026-03-02")
    await api.create_contract(programme="SES")
    first = await client.post(
        "/v1/referrals", headers={**JCP, "Idempotency-Key": "zq-1"}, json=_body()
    )
    assert first.status_code == 201, first.text
    first_id = first.json()["id"]
    search = await client.post(
        "/v1/referrals/search",
        headers={**JCP, "Idempotency-Key": "zq-search"},
        json={"nino": SENT_NINO},
    )
    assert [r["id"] for r in search.json()["items"]] == [first_id]
    assert (await act(client, first_id, "accept")).status_code == 200
    assert (await act(client, first_id, "start", {"start_date": "2026-03-02"})).status_code == 200
    backed = await act(client, first_id, "back-out", {"reason": BACK_OUT_REASON}, headers=POST)
    assert backed.status_code == 200, backed.text
    cancelled = await act(client, first_id, "did-not-start", {"note": NOTE})
    assert cancelled.status_code == 200, cancelled.text

    second = await client.post("/v1/referrals", headers=JCP, json=_body())
    assert second.status_code == 201, second.text
    second_id = second.json()["id"]
    assert (await act(client, second_id, "accept")).status_code == 200
    assert (await act(client, second_id, "start", {"start_date": "2026-03-02"})).status_code == 200
    assert (await client.get(f"/v1/referrals/{second_id}", headers=PROVIDER_A)).status_code == 200
    assert (await client.get(f"/v1/referrals/{second_id}/history", headers=JCP)).status_code == 200
    claim = await client.post(
        "/v1/claims",
        headers={**CLERK_A, "Idempotency-Key": "zq-claim"},
        json={"referral_id": second_id, "claim_type": "attachment"},
    )
    assert claim.status_code == 201, claim.text
    validated = await client.post(
        f"/v1/claims/{claim.json()['id']}/validate", headers=POST, json={}
    )
    assert validated.status_code == 200, validated.text
    await api.set_today("2026-03-20")
    ended = await act(
        client,
        second_id,
        "end",
        {"end_code": 1, "end_date": "2026-03-19", "last_engagement_date": "2026-03-18"},
    )
    assert ended.status_code == 200, ended.text
    run = await client.post("/v1/payment-runs", headers=POST, json={"month": "2026-03"})
    assert run.status_code == 201, run.text
    assert any(line.get("claim_id") == claim.json()["id"] for line in run.json()["lines"])
    return [first_id, second_id]


async def test_erasure_leaves_no_personal_value_in_any_table_or_log(
    app: FastAPI,
    client: AsyncClient,
    api: Api,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """GEN 136-137: after erasure, none of the participant's values is anywhere: not in a
    table (referrals, their history, stored idempotent answers, the read audit, claims,
    payments...) nor in the server's log. Ids, dates, codes, claims and payments stay."""
    caplog.set_level(logging.INFO)  # the server logs at PRAP_LOG_LEVEL=INFO
    ids = await _lifecycle(client, api)
    before = await _scan(app)
    # The scan sees the values while they are held (so it can fail).
    assert any("Quillfeather" in v for v in before["referrals"])
    assert any("hip operation" in v for v in before["referral_events"])

    for referral_id in ids:
        erased = await client.post(
            f"/v1/referrals/{referral_id}/erasure",
            headers={**POST, "Idempotency-Key": f"erase-{referral_id}"},
            json={"reason": "GEN 136 request, case 4411"},
        )
        assert erased.status_code == 200, erased.text
        body = erased.json()
        assert body["erased_at"] is not None
        for field in ("participant", "markers", "details", "mappa", "mappa_notice"):
            assert body[field] is None, field
        assert body["status"] in {"cancelled", "ended"}

    after = await _scan(app)
    for table, values in after.items():
        for personal in PERSONAL_VALUES:
            assert not any(personal.lower() in v.lower() for v in values), (table, personal)
    log = caplog.text + capsys.readouterr().out
    for personal in PERSONAL_VALUES:
        assert personal.lower() not in log.lower(), personal

    # What audit and payment need stays.
    second = (await client.get(f"/v1/referrals/{ids[1]}", headers=POST)).json()
    assert (second["status"], second["end_code"], second["start_date"]) == (
        "ended",
        1,
        "2026-03-02",
    )
    claims = (await client.get(f"/v1/claims?referral_id={ids[1]}", headers=POST)).json()
    assert [c["status"] for c in claims["items"]] == ["paid"]
    history = (await client.get(f"/v1/referrals/{ids[0]}/history", headers=POST)).json()
    types = [e["type"] for e in history["items"]]
    assert types[0] == "created"
    assert types[-1] == "erased"
    cancelled = next(e for e in history["items"] if e["type"] == "did_not_start")
    assert cancelled["reason"] == "did_not_start"
    assert cancelled["note"] is None


async def test_erasure_only_closed_referrals(client: AsyncClient, api: Api) -> None:
    """GEN 136 (domain.md §10): a referral still open cannot be erased (409), nor a closed one
    twice; only ``post`` may erase."""
    await api.set_today("2026-03-02")
    await api.create_contract(programme="SES")
    referral = await create_referral(client, programme="SES")
    erase = f"/v1/referrals/{referral['id']}/erasure"
    assert_problem(
        await client.post(erase, headers=POST, json={"reason": "x"}), 409, "invalid-transition"
    )
    assert_problem(await client.post(erase, headers=JCP, json={"reason": "x"}), 403, "forbidden")
    assert (await act(client, referral["id"], "reject", {"reason": "other"})).status_code == 200
    stale = await client.post(erase, headers={**POST, "If-Match": '"1"'}, json={"reason": "x"})
    assert_problem(stale, 412, "precondition-failed")
    assert (await client.post(erase, headers=POST, json={"reason": "x"})).status_code == 200
    assert_problem(
        await client.post(erase, headers=POST, json={"reason": "x"}), 409, "invalid-transition"
    )


async def test_rules_keep_working_from_the_digest_after_erasure(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §10, JFS 3.42, 5.16: a participant whose SES participation was erased still
    may not be re-referred to SES (SES 3.18), and searching by the erased NINO finds nothing
    (api-contract.md eraseReferral)."""
    await api.set_today("2026-03-02")
    await api.create_contract(programme="SES")
    referral = await create_referral(client, programme="SES", nino="HJ135792D")
    assert (await act(client, referral["id"], "accept")).status_code == 200
    assert (
        await act(client, referral["id"], "start", {"start_date": "2026-03-02"})
    ).status_code == 200
    ended = await act(
        client,
        referral["id"],
        "end",
        {"end_code": 1, "end_date": "2026-03-02", "last_engagement_date": "2026-03-02"},
    )
    assert ended.status_code == 200
    erase = f"/v1/referrals/{referral['id']}/erasure"
    assert (await client.post(erase, headers=POST, json={"reason": "GEN 136"})).status_code == 200
    found = await client.post("/v1/referrals/search", headers=JCP, json={"nino": "HJ135792D"})
    assert found.json()["items"] == []
    again = await client.post(
        "/v1/referrals", headers=JCP, json=_body(participant={**PARTICIPANT, "nino": "hj135792d"})
    )
    assert_problem(again, 409, "re-referral-not-allowed")


async def test_erasure_deletes_stored_answers_so_a_replay_runs_afresh(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §10: stored idempotent answers that showed the participant are removed: the
    same search with the same key after erasure is answered anew (and finds nothing)."""
    await api.set_today("2026-03-02")
    await api.create_contract(programme="SES")
    referral = await create_referral(client, programme="SES", nino="HJ135792D")
    search = {"headers": {**JCP, "Idempotency-Key": "s-1"}, "json": {"nino": "HJ135792D"}}
    first = await client.post("/v1/referrals/search", **search)  # type: ignore[arg-type]
    assert len(first.json()["items"]) == 1
    replay = await client.post("/v1/referrals/search", **search)  # type: ignore[arg-type]
    assert replay.headers.get("idempotent-replayed") == "true"
    assert (await act(client, referral["id"], "reject", {"reason": "other"})).status_code == 200
    erase = f"/v1/referrals/{referral['id']}/erasure"
    assert (await client.post(erase, headers=POST, json={"reason": "GEN 136"})).status_code == 200
    after = await client.post("/v1/referrals/search", **search)  # type: ignore[arg-type]
    assert after.headers.get("idempotent-replayed") is None
    assert after.json()["items"] == []


def test_every_event_field_is_either_kept_or_erased() -> None:
    """domain.md §10: each field an event can carry is classified, so none is kept by
    accident; an unknown field (a future event type's) is erased by default."""
    envelope = {"id", "cursor", "referral_id", "type", "occurred_at", "actor", "status"}
    envelope |= {"version", "provider_id"}
    carried = set(EventOut.model_fields) - envelope
    assert carried <= NON_PERSONAL_EVENT_FIELDS | PERSONAL_EVENT_FIELDS
    assert not NON_PERSONAL_EVENT_FIELDS & PERSONAL_EVENT_FIELDS
    data = {"reason": "other", "note": "Ada rang", "end_code": 1, "new_field": "Ada"}
    assert erased_event_data("rejected", data) == {"reason": "other", "end_code": 1}
    assert erased_event_data("backed_out", {"reason": "Ada's start was wrong"}) == {}
