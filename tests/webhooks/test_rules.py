"""The webhook rules that need no database: URL safety, backoff, payload, signing
(api-contract.md, Webhooks)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.core.problems import ValidationProblem
from app.referrals.models import ReferralEvent
from app.webhooks.payload import delivery_body, delivery_data
from app.webhooks.schedule import RETRY_WINDOW, backoff, next_attempt_after_failure
from app.webhooks.signing import new_secret, signed_headers
from app.webhooks.urls import (
    Target,
    UnsafeUrl,
    check_subscription_url,
    is_allowed_address,
    is_public_address,
    parse_target,
    resolve_allowed,
)

pytestmark = pytest.mark.pure

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("address", "production", "sandbox"),
    [
        ("93.184.215.14", True, True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True, True),
        ("127.0.0.1", False, True),
        ("::1", False, True),
        ("::ffff:127.0.0.1", False, True),
        ("10.0.0.1", False, False),
        ("172.16.5.4", False, False),
        ("192.168.1.1", False, False),
        ("100.64.0.1", False, False),  # shared address space (CGNAT)
        ("169.254.169.254", False, False),  # link-local: cloud metadata
        ("fe80::1", False, False),
        ("fd00::1", False, False),  # unique local
        ("0.0.0.0", False, False),
        ("224.0.0.1", False, False),
        ("::ffff:10.0.0.1", False, False),
    ],
)
def test_only_public_addresses_and_in_the_sandbox_loopback(
    address: str, production: bool, sandbox: bool
) -> None:
    assert is_allowed_address(address, sandbox=False) is production
    assert is_allowed_address(address, sandbox=True) is sandbox


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("::ffff:93.184.215.14", True),  # IPv4 inside IPv6 is judged as IPv4
        ("127.0.0.1", False),
        ("fe80::1%eth0", False),  # a zone id does not hide a link-local address
        ("ff02::1", False),  # multicast
        ("240.0.0.1", False),  # reserved
    ],
)
def test_public_addresses_only(address: str, public: bool) -> None:
    assert is_public_address(address) is public


async def test_resolving_an_address_checks_every_answer() -> None:
    """Literal addresses resolve without DNS: the check is the same as for a name."""
    assert await resolve_allowed(Target("https", "93.184.215.14", 443), sandbox=False) == [
        "93.184.215.14"
    ]
    assert await resolve_allowed(Target("http", "127.0.0.1", 80), sandbox=True) == ["127.0.0.1"]
    for host in ("127.0.0.1", "10.0.0.1"):
        with pytest.raises(UnsafeUrl):
            await resolve_allowed(Target("https", host, 443), sandbox=False)


async def test_a_refused_subscription_url_is_a_validation_problem_without_the_url() -> None:
    url = "https://10.0.0.1/secret-path"
    with pytest.raises(ValidationProblem) as refused:
        await check_subscription_url(url, sandbox=False)
    assert "secret-path" not in str(refused.value)
    await check_subscription_url("https://93.184.215.14/h", sandbox=False)


def test_https_only_outside_the_sandbox() -> None:
    assert parse_target("https://crm.example.org/h", sandbox=False).port == 443
    assert parse_target("http://127.0.0.1:8080/h", sandbox=True).port == 8080
    for url in ("http://crm.example.org/h", "ftp://x/", "https://", "https://u:p@x/", "x"):
        with pytest.raises(UnsafeUrl):
            parse_target(url, sandbox=False)
    with pytest.raises(UnsafeUrl):
        parse_target("https://x:99999/", sandbox=True)  # no such port


def test_backoff_doubles_and_retries_for_at_least_24_hours() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [timedelta(seconds=s) for s in (30, 60, 120)]
    assert backoff(30) == timedelta(hours=4)
    # Walk the schedule: every failure before the window is retried, and the first one
    # at or past it is final.
    now, attempts = T0, 1
    while (retry := next_attempt_after_failure(T0, now, attempts)) is not None:
        now, attempts = retry, attempts + 1
    assert now - T0 >= RETRY_WINDOW
    assert now - T0 < RETRY_WINDOW + timedelta(hours=4)


@settings(deadline=None)
@given(attempts=st.integers(min_value=1, max_value=10_000))
def test_backoff_never_shrinks_and_stays_within_bounds(attempts: int) -> None:
    assert timedelta(seconds=30) <= backoff(attempts) <= timedelta(hours=4)
    assert backoff(attempts) <= backoff(attempts + 1)


@settings(deadline=None)
@given(
    elapsed=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
    attempts=st.integers(min_value=1, max_value=100),
)
def test_a_retry_comes_after_now_only_inside_the_window(elapsed: timedelta, attempts: int) -> None:
    retry = next_attempt_after_failure(T0, T0 + elapsed, attempts)
    if elapsed >= RETRY_WINDOW:
        assert retry is None
    else:
        assert retry == T0 + elapsed + backoff(attempts)


def _event(data: dict[str, object], event_type: str = "rejected") -> ReferralEvent:
    return ReferralEvent(
        id=7,
        txid=0,
        referral_id="01REFERRAL",
        provider_id="P100",
        type=event_type,
        occurred_at=T0,
        actor_sub="adviser",
        actor_role="provider",
        actor_provider_id="P100",
        referral_version=2,
        status="rejected",
        data=data,
    )


def test_the_payload_carries_an_allow_list_of_non_personal_fields() -> None:
    data = delivery_data(
        _event(
            {
                "reason": "duplicate",
                "note": "Ada Byron, AB123456C",
                "end_code": 1,
                "changed_fields": ["address", "phone"],
                "participant": {"forename": "Ada"},
                "something_new": "unvetted",
            }
        )
    )
    assert data == {
        "status": "rejected",
        "version": 2,
        "provider_id": "P100",
        "reason": "duplicate",
        "end_code": 1,
        "changed_fields": ["address", "phone"],
    }


def test_a_free_text_reason_is_not_sent() -> None:
    """A back-out's reason is written by a person (SES 3.15): not a code, so not sent."""
    assert "reason" not in delivery_data(_event({"reason": "Start was keyed in error for Ada"}))


def test_the_body_is_the_change_feed_event() -> None:
    body = delivery_body(_event({"reason": "other"}))
    assert body.startswith('{"data":')
    assert '"occurred_at":"2026-03-02T09:00:00Z"' in body
    assert '"id":7' in body


def test_signatures_verify_with_the_reference_verifier() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    body = '{"id":1}'
    headers = signed_headers(secret, "42", datetime.now(UTC), body)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers) == {"id": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + " ", headers)
