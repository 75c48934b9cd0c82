"""Random action sequences over HTTP against a model of the referral lifecycle.

A hypothesis ``RuleBasedStateMachine``: JCP refers participants to two providers (P100 and
P200, each with its own JFS contract), sometimes re-using a NINO; anyone (JCP, post, admin,
either provider with either scope) sends any action with a random, mostly valid body to any
referral, including the other provider's; post backs out starts; the clock moves on.

The model predicts every answer from ``TRANSITIONS`` and domain.md §4-§5, in
api-contract.md's order of checks, and after every step the invariants hold:

(a) each referral's history is the sequence of the successful actions applied to it;
(b) a referral in a terminal state never changes again;
(c) tenancy never leaks: a provider's reads never show another provider's referral or
    event, and another provider's referral answers 404 to reads and actions alike;
(d) each referral's status is the model's.

hypothesis's state machines are synchronous and the app is async, so the test runs the
machine in a plain test function with its own event loop, app and HTTP client.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from app.core.settings import Settings
from app.main import create_app
from app.referrals.states import (
    END_CODES_BARRING_RE_REFERRAL,
    END_CODES_NEEDING_POLICY_REFERENCE,
    SYSTEM_ONLY_END_CODES,
    ActorRole,
    EndCode,
    ReferralAction,
    ReferralStatus,
)
from app.referrals.transitions import HTTP_ACTIONS, TRANSITIONS
from tests.helpers import Caller, referral_body
from tests.tables import empty_tables

T = TypeVar("T")

START = date(2026, 3, 2)  # a Monday
PROVIDERS = ("P100", "P200")
# Few open referrals at a time, so that the moves go deep (started, ended, backed out)
# rather than wide; and moves forward are favoured over closing ones.
MAX_OPEN_REFERRALS = 3
MAX_REFERRALS = 8
FORWARD = (
    ReferralAction.start,
    ReferralAction.accept,
    ReferralAction.end,
    ReferralAction.acknowledge,
)


CALLERS = {
    c.name: c
    for c in (
        Caller("jcp", "jcp"),
        Caller("post", "post"),
        Caller("admin", "admin"),
        Caller("p100", "provider", "P100", ("referrals",)),
        Caller("p100-claims", "provider", "P100", ("claims",)),
        Caller("p200", "provider", "P200", ("referrals",)),
        Caller("p200-claims", "provider", "P200", ("claims",)),
    )
}
HEADERS = {name: caller.headers for name, caller in CALLERS.items()}
OWNER_CALLER = {"P100": "p100", "P200": "p200"}
OTHER_PROVIDER = {"P100": "P200", "P200": "P100"}


# --- the model -----------------------------------------------------------------------------


@dataclass
class ModelReferral:
    id: str
    provider: str
    nino: str
    referral_date: date
    acknowledgement_due: date
    re_referral: bool
    status: ReferralStatus = ReferralStatus.referred
    acknowledged_on: date | None = None
    start_date: date | None = None
    back_out_pending: bool = False
    end_code: int | None = None
    version: int = 0
    events: list[str] = field(default_factory=lambda: ["created"])
    frozen: tuple[str, int] | None = None  # (status, version) once terminal


OK: tuple[int, str | None] = (200, None)


def expected_outcome(
    referral: ModelReferral,
    action: ReferralAction,
    caller: Caller,
    body: dict[str, Any],
    body_valid: bool,
    today: date,
) -> tuple[int, str | None]:
    """The answer api-contract.md's order of checks gives: 403, 422 (shape), 404, then the
    transition table, the acknowledgement window and the body's domain rules."""
    transition = TRANSITIONS[action]
    if caller.role != str(transition.actor):
        return 403, "forbidden"
    if transition.scope is not None and str(transition.scope) not in caller.scopes:
        return 403, "forbidden"
    if not body_valid:
        return 422, "validation-error"
    if caller.provider_id is not None and caller.provider_id != referral.provider:
        return 404, "not-found"
    # The transition table (domain.md §4).
    if referral.status not in transition.sources:
        return 409, "invalid-transition"
    if (
        referral.back_out_pending
        and transition.actor is ActorRole.provider
        and not transition.allowed_after_back_out
    ):
        return 409, "invalid-transition"
    # JFS 3.07-3.08: the acknowledgement window.
    if action in {ReferralAction.acknowledge, ReferralAction.accept, ReferralAction.start}:
        if referral.acknowledged_on is not None:
            in_time = referral.acknowledged_on <= referral.acknowledgement_due
        else:
            in_time = today <= referral.acknowledgement_due
        if not in_time:
            return 409, "acknowledgement-window-closed"
    # The body's rules.
    if (
        action is ReferralAction.cancel
        and referral.back_out_pending
        and body["reason"] != "did_not_start"
    ):
        return 409, "invalid-transition"
    if action is ReferralAction.did_not_start and "initial_meeting_date" in body:
        meeting = date.fromisoformat(body["initial_meeting_date"])
        if not referral.referral_date <= meeting <= today:
            return 422, "date-out-of-range"
    if action is ReferralAction.start:
        start = date.fromisoformat(body["start_date"])
        if not referral.referral_date <= start <= today:
            return 422, "date-out-of-range"
    if action is ReferralAction.end:
        code = EndCode(body["end_code"])
        if code in SYSTEM_ONLY_END_CODES:
            return 422, "end-code-automated-only"
        if code in END_CODES_NEEDING_POLICY_REFERENCE and not body.get("policy_reference"):
            return 422, "policy-reference-required"
        assert referral.start_date is not None
        last = date.fromisoformat(body["last_engagement_date"])
        end = date.fromisoformat(body["end_date"])
        if not (referral.start_date <= last <= today and last <= end <= today):
            return 422, "date-out-of-range"
    return OK


def apply(
    referral: ModelReferral, action: ReferralAction, body: dict[str, Any], today: date
) -> None:
    transition = TRANSITIONS[action]
    referral.status = transition.target
    referral.events.append(str(transition.event))
    match action:
        case ReferralAction.acknowledge:
            referral.acknowledged_on = today
        case ReferralAction.accept:
            referral.acknowledged_on = referral.acknowledged_on or today
        case ReferralAction.start:
            referral.start_date = date.fromisoformat(body["start_date"])
        case ReferralAction.back_out:
            referral.start_date = None
            referral.back_out_pending = True
        case ReferralAction.end:
            referral.end_code = body["end_code"]
    if referral.status.is_terminal:
        referral.back_out_pending = False


# --- bodies --------------------------------------------------------------------------------


def _day(base: date, low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: (base + timedelta(days=n)).isoformat())


def body_strategy(
    action: ReferralAction, referral: ModelReferral, today: date
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid bodies, with dates a day either side of their allowed range."""
    note_text = st.none() | st.text("abc xyz", min_size=1, max_size=12)

    def with_note(fixed: dict[str, Any], n: str | None) -> dict[str, Any]:
        return fixed if n is None else {**fixed, "note": n}

    span = (today - referral.referral_date).days
    match action:
        case ReferralAction.acknowledge | ReferralAction.accept:
            return st.just({})
        case ReferralAction.reject:
            return st.builds(
                lambda r, n: with_note({"reason": r}, n),
                st.sampled_from(["duplicate", "inappropriate", "not_suitable", "other"]),
                note_text,
            )
        case ReferralAction.cancel:
            return st.builds(
                lambda r, n: with_note({"reason": r}, n),
                st.sampled_from(["no_contact", "did_not_attend", "did_not_start"]),
                note_text,
            )
        case ReferralAction.did_not_attend:
            return st.builds(lambda n: with_note({}, n), note_text)
        case ReferralAction.did_not_start:
            return st.builds(
                lambda d, n: with_note({} if d is None else {"initial_meeting_date": d}, n),
                st.none() | _day(referral.referral_date, -1, span + 1),
                note_text,
            )
        case ReferralAction.start:
            return st.builds(
                lambda d: {"start_date": d}, _day(referral.referral_date, -1, span + 1)
            )
        case ReferralAction.end:
            base = referral.start_date or referral.referral_date
            worked = (today - base).days
            return st.builds(
                lambda code, policy, last, extra: {
                    "end_code": code,
                    "last_engagement_date": last,
                    "end_date": (date.fromisoformat(last) + timedelta(days=extra)).isoformat(),
                    **({"policy_reference": "POL-1"} if policy else {}),
                },
                st.sampled_from([int(c) for c in EndCode]),
                st.booleans(),
                _day(base, -1, worked + 1),
                st.integers(-1, 2),
            )
        case ReferralAction.back_out:
            return st.builds(lambda r: {"reason": r}, st.text("abc xyz", min_size=1, max_size=20))
    raise AssertionError(action)


def good_body_strategy(
    action: ReferralAction, referral: ModelReferral, today: date
) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies every rule accepts: dates in range, a cancel reason the state allows."""
    span = (today - referral.referral_date).days
    match action:
        case ReferralAction.cancel if referral.back_out_pending:
            return st.just({"reason": "did_not_start"})
        case ReferralAction.did_not_start:
            return st.none().map(lambda _: {}) | _day(referral.referral_date, 0, span).map(
                lambda d: {"initial_meeting_date": d}
            )
        case ReferralAction.start:
            return _day(referral.referral_date, 0, span).map(lambda d: {"start_date": d})
        case ReferralAction.end:
            assert referral.start_date is not None
            worked = (today - referral.start_date).days

            def end_body(code: int, last_offset: int, extra: int) -> dict[str, Any]:
                last = referral.start_date + timedelta(days=last_offset)  # type: ignore[operator]
                end = last + timedelta(days=min(extra, (today - last).days))
                body: dict[str, Any] = {
                    "end_code": code,
                    "last_engagement_date": last.isoformat(),
                    "end_date": end.isoformat(),
                }
                if code in END_CODES_NEEDING_POLICY_REFERENCE:
                    body["policy_reference"] = "POL-2"
                return body

            return st.builds(
                end_body,
                st.sampled_from([int(c) for c in EndCode if c not in SYSTEM_ONLY_END_CODES]),
                st.integers(0, worked),
                st.integers(0, 3),
            )
    return body_strategy(action, referral, today)


def probe_body(action: ReferralAction, referral: ModelReferral) -> dict[str, Any]:
    """One body of the kind ``good_body_strategy`` draws (to ask the model what is allowed)."""
    day = (referral.start_date or referral.referral_date).isoformat()
    match action:
        case ReferralAction.reject:
            return {"reason": "other"}
        case ReferralAction.cancel:
            return {"reason": "did_not_start"}
        case ReferralAction.start:
            return {"start_date": day}
        case ReferralAction.end:
            return {"end_code": 1, "end_date": day, "last_engagement_date": day}
        case ReferralAction.back_out:
            return {"reason": "in error"}
    return {}


INVALID_BODIES: dict[ReferralAction, dict[str, Any]] = {
    ReferralAction.acknowledge: {"unexpected": True},
    ReferralAction.accept: {"unexpected": True},
    ReferralAction.reject: {"reason": "bored"},
    ReferralAction.cancel: {"reason": "moved_away"},
    ReferralAction.did_not_attend: {"note": 7},
    ReferralAction.did_not_start: {"initial_meeting_date": "yesterday"},
    ReferralAction.start: {},
    ReferralAction.end: {"end_code": 2, "end_date": "2026-03-02", "last_engagement_date": "x"},
    ReferralAction.back_out: {"reason": ""},
}


# --- the environment: its own loop, app and client -----------------------------------------


class Env:
    """Set by the test before the machine runs."""

    loop: asyncio.AbstractEventLoop
    app: FastAPI
    client: httpx.AsyncClient
    # What the runs exercised: (action, status, code) and statuses reached.
    seen: Counter[tuple[str, int, str | None]]
    steps: int
    reached: set[str]

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.run(self.client.request(method, url, **kwargs))

    async def _clean(self) -> None:
        await empty_tables(self.app.state.engine)

    def clean(self) -> None:
        self.run(self._clean())


ENV = Env()


def check_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (status, code, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code, response.text


# --- the machine ---------------------------------------------------------------------------


class ReferralMachine(RuleBasedStateMachine):
    referrals = Bundle("referrals")

    def __init__(self) -> None:
        super().__init__()
        ENV.clean()
        self.today = START
        self.model: dict[str, ModelReferral] = {}
        self.ninos = itertools.count(1)
        self._set_clock()
        for provider in PROVIDERS:
            response = ENV.request(
                "POST",
                "/v1/contracts",
                headers=HEADERS["admin"],
                json={
                    "provider_id": provider,
                    "programme": "JFS",
                    "start_date": "2020-01-01",
                    "end_date": "2030-12-31",
                    "monthly_service_fee_pence": 1_000_000,
                },
            )
            assert response.status_code == 201, response.text
        programmes = ENV.request("GET", "/v1/programmes", headers=HEADERS["jcp"]).json()
        items = programmes["items"] if isinstance(programmes, dict) else programmes
        jfs = next(p for p in items if p["code"] == "JFS")
        self.max_re_referrals = jfs["max_re_referrals"]
        self.auto_dna_days, self.allotted_days = jfs["auto_dna_days"], jfs["allotted_days"]

    def _set_clock(self) -> None:
        response = ENV.request(
            "PUT", "/v1/sandbox/clock", json={"now": f"{self.today.isoformat()}T10:00:00Z"}
        )
        assert response.status_code == 200, response.text

    # --- rules ---------------------------------------------------------------------------

    def can_refer(self) -> bool:
        open_ones = sum(1 for r in self.model.values() if not r.status.is_terminal)
        return open_ones < MAX_OPEN_REFERRALS and len(self.model) < MAX_REFERRALS

    def _create(self, provider: str, nino: str) -> str | None:
        prior = [r for r in self.model.values() if r.nino == nino]
        expected: tuple[int, str | None] = (201, None)
        re_referral = False
        if any(not r.status.is_terminal for r in prior):
            expected = (409, "open-referral-exists")
        else:
            ended = [r for r in prior if r.status is ReferralStatus.ended]
            if ended:
                barred = any(r.end_code in END_CODES_BARRING_RE_REFERRAL for r in ended)
                so_far = sum(1 for r in prior if r.re_referral)
                if barred or so_far >= self.max_re_referrals:
                    expected = (409, "re-referral-not-allowed")
                else:
                    re_referral = True
        response = ENV.request(
            "POST",
            "/v1/referrals",
            headers=HEADERS["jcp"],
            json=referral_body(nino=nino, provider_id=provider),
        )
        note(f"create {provider} {nino} -> {response.status_code}")
        ENV.seen[("create", expected[0], expected[1])] += 1
        if expected[0] != 201:
            check_problem(response, expected[0], str(expected[1]))
            return None
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "referred"
        assert body["provider_id"] == provider
        assert body["referral_date"] == self.today.isoformat()
        assert body["re_referral"] is re_referral
        self.model[body["id"]] = ModelReferral(
            id=body["id"],
            provider=provider,
            nino=body["participant"]["nino"],
            referral_date=self.today,
            acknowledgement_due=date.fromisoformat(body["acknowledgement_due"]),
            re_referral=re_referral,
            version=body["version"],
        )
        return str(body["id"])

    @initialize(target=referrals, provider=st.sampled_from(PROVIDERS))
    def first_referral(self, provider: str) -> str:
        rid = self._create(provider, f"AB{next(self.ninos):06d}C")
        assert rid is not None
        return rid

    @precondition(lambda self: self.can_refer())
    @rule(target=referrals, provider=st.sampled_from(PROVIDERS))
    def refer(self, provider: str) -> str:
        rid = self._create(provider, f"AB{next(self.ninos):06d}C")
        assert rid is not None
        return rid

    @precondition(lambda self: self.can_refer())
    @rule(provider=st.sampled_from(PROVIDERS), data=st.data())
    def refer_again(self, provider: str, data: st.DataObject) -> None:
        """Refer someone already referred (open referral, re-referral, after a rejection)."""
        ninos = {r.nino for r in self.model.values()}
        open_ninos = {r.nino for r in self.model.values() if not r.status.is_terminal}
        closed = sorted(ninos - open_ninos)  # favoured: re-referrals and referrals after a close
        if closed and data.draw(st.booleans(), label="closed"):
            nino = data.draw(st.sampled_from(closed))
        else:
            nino = data.draw(st.sampled_from(sorted(ninos)))
        self._create(provider, nino)

    @rule(days=st.integers(1, 3))
    def time_passes(self, days: int) -> None:
        self.today += timedelta(days=days)
        self._set_clock()
        self._automatic_closes()

    def _automatic_closes(self) -> None:
        """JFS 3.40, 5.08, domain.md §4: from its auto-DNA or auto-end day a referral *is*
        closed by the system, whether or not the job has run (no job runs here): the model
        closes it as time passes, with one system event and one version more."""
        for referral in self.model.values():
            action = None
            dna_sources = TRANSITIONS[ReferralAction.auto_dna].sources
            if referral.status in dna_sources and self.today >= referral.referral_date + timedelta(
                days=self.auto_dna_days
            ):
                action = ReferralAction.auto_dna
            elif (
                referral.status is ReferralStatus.started
                and referral.start_date is not None
                and self.today >= referral.start_date + timedelta(days=self.allotted_days)
            ):
                action = ReferralAction.auto_end
                referral.end_code = 45
            if action is None:
                continue
            apply(referral, action, {}, self.today)
            referral.version += 1
            referral.frozen = (str(referral.status), referral.version)
            ENV.seen[(str(action), 200, None)] += 1

    def _act(
        self,
        rid: str,
        action: ReferralAction,
        caller: Caller,
        data: st.DataObject,
        *,
        good: bool = False,
    ) -> None:
        referral = self.model[rid]
        valid = good or data.draw(st.integers(0, 9), label="valid-ish") > 0
        if good:
            body = data.draw(good_body_strategy(action, referral, self.today), label="body")
        elif valid:
            body = data.draw(body_strategy(action, referral, self.today), label="body")
        else:
            body = INVALID_BODIES[action]
        expected = expected_outcome(referral, action, caller, body, valid, self.today)
        before = ENV.request("GET", f"/v1/referrals/{rid}", headers=HEADERS["post"]).json()
        response = ENV.request(
            "POST", f"/v1/referrals/{rid}/{action}", headers=caller.headers, json=body
        )
        ENV.seen[(str(action), expected[0], expected[1])] += 1
        note(
            f"{caller.name} {action} {rid[-6:]} ({referral.status}) {body} -> "
            f"{response.status_code} {response.text[:120]} (expected {expected})"
        )
        if expected == OK:
            assert response.status_code == 200, (expected, response.text)
            out = response.json()
            assert out["version"] > referral.version
            apply(referral, action, body, self.today)
            ENV.reached.add(str(referral.status) + ("*" if referral.back_out_pending else ""))
            referral.version = out["version"]
            assert out["status"] == referral.status
            assert response.headers["ETag"] == f'"{out["version"]}"'
            if action is ReferralAction.cancel:
                assert out["cancellation_reason"] == body["reason"]
            if action is ReferralAction.did_not_start:
                assert out["cancellation_reason"] == "did_not_start"
            if action is ReferralAction.did_not_attend:
                assert out["cancellation_reason"] == "did_not_attend"
            if referral.status.is_terminal:
                assert out["closed_by"] == "provider"
                assert out["allowed_actions"] == []
                referral.frozen = (str(referral.status), referral.version)
            history = ENV.request(
                "GET", f"/v1/referrals/{rid}/history", headers=HEADERS["post"]
            ).json()["items"]
            last = history[-1]
            assert last["type"] == TRANSITIONS[action].event
            assert last["actor"] == {
                "sub": caller.name,
                "role": caller.role,
                "provider_id": caller.provider_id,
            }
        else:
            status, code = expected
            check_problem(response, status, str(code))
            after = ENV.request("GET", f"/v1/referrals/{rid}", headers=HEADERS["post"]).json()
            assert after == before
        self._check_one(rid)

    def _progress(self, ref: str, data: st.DataObject) -> None:
        """The owner (or post, for a back-out) makes a move the model allows."""
        referral = self.model[ref]
        possible = [
            action
            for action in HTTP_ACTIONS
            if expected_outcome(
                referral,
                action,
                self._rightful(referral, action),
                probe_body(action, referral),
                True,
                self.today,
            )
            == OK
        ]
        if not possible:
            return
        forward = [a for a in FORWARD if a in possible]
        if forward and data.draw(st.integers(0, 2), label="forward") > 0:
            action = forward[0]
        else:
            action = data.draw(st.sampled_from(possible), label="move")
        self._act(ref, action, self._rightful(referral, action), data, good=True)

    @staticmethod
    def _rightful(referral: ModelReferral, action: ReferralAction) -> Caller:
        if TRANSITIONS[action].actor is ActorRole.post:
            return CALLERS["post"]
        return CALLERS[OWNER_CALLER[referral.provider]]

    @rule(ref=referrals, data=st.data())
    def progress(self, ref: str, data: st.DataObject) -> None:
        self._progress(ref, data)

    @rule(ref=referrals, data=st.data())
    def progress_further(self, ref: str, data: st.DataObject) -> None:
        self._progress(ref, data)

    @rule(ref=referrals, data=st.data())
    def progress_to_the_end(self, ref: str, data: st.DataObject) -> None:
        self._progress(ref, data)

    @rule(ref=referrals, action=st.sampled_from(HTTP_ACTIONS), data=st.data())
    def owner_acts(self, ref: str, action: ReferralAction, data: st.DataObject) -> None:
        self._act(ref, action, self._rightful(self.model[ref], action), data)

    @rule(
        ref=referrals,
        action=st.sampled_from(HTTP_ACTIONS),
        caller=st.sampled_from(sorted(CALLERS)),
        data=st.data(),
    )
    def anyone_acts(
        self, ref: str, action: ReferralAction, caller: str, data: st.DataObject
    ) -> None:
        self._act(ref, action, CALLERS[caller], data)

    @rule(ref=referrals, data=st.data())
    def other_provider_acts(self, ref: str, data: st.DataObject) -> None:
        provider = OTHER_PROVIDER[self.model[ref].provider]
        caller = CALLERS[OWNER_CALLER[provider]]
        action = data.draw(
            st.sampled_from([a for a in HTTP_ACTIONS if TRANSITIONS[a].actor is ActorRole.provider])
        )
        self._act(ref, action, caller, data)

    # --- checks --------------------------------------------------------------------------

    def _check_one(self, rid: str) -> None:
        """The referral as each caller sees it: history (a), tenancy (c), status (d)."""
        referral = self.model[rid]
        history = ENV.request("GET", f"/v1/referrals/{rid}/history", headers=HEADERS["post"])
        assert history.status_code == 200, history.text
        items = history.json()["items"]
        assert [e["type"] for e in items] == referral.events
        assert items[0]["actor"]["role"] == "jcp"
        assert [e["version"] for e in items] == sorted({e["version"] for e in items})
        assert items[-1]["version"] == referral.version
        assert items[-1]["status"] == referral.status
        assert all(e["referral_id"] == rid and e["provider_id"] == referral.provider for e in items)
        other = OTHER_PROVIDER[referral.provider]
        name = OWNER_CALLER[other] + ("-claims" if ENV.steps % 2 else "")
        for suffix in ("", "/history"):
            check_problem(
                ENV.request("GET", f"/v1/referrals/{rid}{suffix}", headers=HEADERS[name]),
                404,
                "not-found",
            )
        found = ENV.request(
            "POST",
            "/v1/referrals/search",
            headers=HEADERS[OWNER_CALLER[other]],
            json={"nino": referral.nino},
        )
        assert found.status_code == 200, found.text
        assert all(r["provider_id"] == other for r in found.json()["items"])
        assert rid not in {r["id"] for r in found.json()["items"]}
        mine = ENV.request(
            "POST",
            "/v1/referrals/search",
            headers=HEADERS[OWNER_CALLER[referral.provider]],
            json={"nino": referral.nino},
        )
        assert rid in {r["id"] for r in mine.json()["items"]}

    def _list(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            response = ENV.request("GET", "/v1/referrals", headers=headers, params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            items += page["items"]
            if page["next_cursor"] is None:
                return items
            params["cursor"] = page["next_cursor"]

    def _feed(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            response = ENV.request("GET", "/v1/events", headers=headers, params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            items += page["items"]
            if page["next_cursor"] is None:
                return items
            params["after"] = page["next_cursor"]

    @invariant()
    def count_steps(self) -> None:
        ENV.steps += 1

    @invariant()
    def statuses_match_the_model_and_terminal_ones_are_frozen(self) -> None:
        seen = {r["id"]: r for r in self._list(HEADERS["post"])}
        assert set(seen) == set(self.model)
        for rid, referral in self.model.items():
            out = seen[rid]
            assert out["status"] == referral.status, (rid, out["status"], referral.status)
            assert out["version"] == referral.version
            assert out["provider_id"] == referral.provider
            if referral.frozen is not None:
                assert (out["status"], out["version"]) == referral.frozen
                assert out["allowed_actions"] == []
            assert (out["start_backed_out_at"] is not None) >= referral.back_out_pending

    @invariant()
    def histories_are_the_successful_actions(self) -> None:
        """The post feed, grouped by referral: each a prefix of (on SQLite: equal to) the
        model's history. (On PostgreSQL the feed may hold back events of transactions other
        sessions of the server still have in flight.)"""
        by_referral: dict[str, list[str]] = {}
        for event in self._feed(HEADERS["post"]):
            by_referral.setdefault(event["referral_id"], []).append(event["type"])
        assert set(by_referral) <= set(self.model)
        exact = ENV.app.state.engine.dialect.name == "sqlite"
        for rid, referral in self.model.items():
            types = by_referral.get(rid, [])
            assert types == referral.events[: len(types)], (rid, types, referral.events)
            if exact:
                assert types == referral.events

    @invariant()
    def tenancy_never_leaks(self) -> None:
        for provider in PROVIDERS:
            own = {rid for rid, r in self.model.items() if r.provider == provider}
            # Reading needs either scope; alternate between them.
            name = OWNER_CALLER[provider] + ("-claims" if ENV.steps % 2 else "")
            listed = self._list(HEADERS[name])
            assert {r["id"] for r in listed} == own
            assert all(r["provider_id"] == provider for r in listed)
            events = self._feed(HEADERS[OWNER_CALLER[provider]])
            assert {e["referral_id"] for e in events} <= own
            assert all(e["provider_id"] == provider for e in events)


# --- the test ------------------------------------------------------------------------------


def test_referral_state_machine(settings: Settings) -> None:
    loop = asyncio.new_event_loop()
    app = create_app(settings)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://prap.test")
    ENV.loop, ENV.app, ENV.client = loop, app, client
    ENV.seen, ENV.reached, ENV.steps = Counter(), set(), 0
    try:
        run_state_machine_as_test(
            ReferralMachine,
            settings=hypothesis_settings(
                max_examples=20,
                stateful_step_count=40,
                deadline=None,
                suppress_health_check=[
                    HealthCheck.too_slow,
                    HealthCheck.data_too_large,
                    HealthCheck.filter_too_much,
                ],
            ),
        )
        print(sorted(ENV.seen.items()), sorted(ENV.reached), ENV.steps)
        # The runs did exercise the machine (a weak check, so that it never flakes).
        answered = {status for _, status, _ in ENV.seen}
        assert {200, 201, 403, 404, 409} <= answered, ENV.seen
        assert ENV.steps > 100
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(app.state.engine.dispose())
        loop.close()
