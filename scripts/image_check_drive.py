"""What scripts/image-check asks of a running image, over HTTP, with the standard library only.

    image_check_drive.py BASE_URL LABEL
        health, then one referral through its life (created, acknowledged, accepted, started,
        ended) on a contract made by admin, its history, and /metrics with the admin token.
    image_check_drive.py LB_URL --through-lb REPLICA_URL
        the load balancer forwards the API but never /metrics, however it is spelt.

Tokens come from the environment (PRAP_CHECK_ADMIN, PRAP_CHECK_JCP, PRAP_CHECK_PROVIDER), minted
by the image's own `prap token`. Exits non-zero with the first thing that is wrong.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
from datetime import date, timedelta
from typing import Any

PROVIDER = "IMGCHK"


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    method: str, url: str, *, token: str | None = None, body: Any = None, key: str | None = None
) -> Answer:
    headers = {"accept": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if key:
        headers["idempotency-key"] = key
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return Answer(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers.items()), error.read())


def expect(answer: Answer, status: int, what: str) -> Answer:
    if answer.status != status:
        sys.exit(f"{what}: expected {status}, got {answer.status}: {answer.body[:300]!r}")
    return answer


def lifecycle(base: str, label: str) -> None:
    admin, jcp, provider = (os.environ[f"PRAP_CHECK_{who}"] for who in ("ADMIN", "JCP", "PROVIDER"))
    expect(call("GET", f"{base}/healthz"), 200, "liveness")
    expect(call("GET", f"{base}/readyz"), 200, "readiness")
    expect(call("GET", f"{base}/v1/referrals"), 401, "a list without a token")
    today = date.today()
    contract = {
        "provider_id": PROVIDER,
        "programme": "SES",
        "start_date": (today - timedelta(days=365)).isoformat(),
        "end_date": (today + timedelta(days=365)).isoformat(),
        "monthly_service_fee_pence": 0,
        "attachment_fee_pence": 50_000,
    }
    expect(call("POST", f"{base}/v1/contracts", token=admin, body=contract), 201, "contract")
    create = {
        "programme": "SES",
        "provider_id": PROVIDER,
        "participant": {"forename": "Imogen", "surname": "Checkley", "nino": "HJ135792D"},
    }
    made = expect(
        call("POST", f"{base}/v1/referrals", token=jcp, body=create, key=f"{label}-1"),
        201,
        "creating a referral",
    )
    again = call("POST", f"{base}/v1/referrals", token=jcp, body=create, key=f"{label}-1")
    expect(again, 201, "the same Idempotency-Key again")
    if again.headers.get("idempotent-replayed") != "true" or again.json() != made.json():
        sys.exit("a repeated Idempotency-Key was not answered from the stored response")
    referral = made.json()
    day = referral["referral_date"]
    for action, body in (
        ("acknowledge", {}),
        ("accept", {}),
        ("start", {"start_date": day}),
        ("end", {"end_code": 1, "end_date": day, "last_engagement_date": day}),
    ):
        url = f"{base}/v1/referrals/{referral['id']}/{action}"
        referral = expect(call("POST", url, token=provider, body=body), 200, action).json()
    if referral["status"] != "ended" or referral["closed_by"] != "provider":
        sys.exit(f"the referral ended as {referral['status']}, closed by {referral['closed_by']}")
    url = f"{base}/v1/referrals/{referral['id']}/history"
    history = expect(call("GET", url, token=provider), 200, "history").json()["items"]
    types = [event["type"] for event in history]
    if types != ["created", "acknowledged", "accepted", "started", "ended"]:
        sys.exit(f"history: {types}")
    metrics = expect(call("GET", f"{base}/metrics", token=admin), 200, "metrics (admin)")
    if b"prap_" not in metrics.body:
        sys.exit("/metrics has no prap_ metric")
    # The console's templates and GOV.UK Frontend assets are in the image (package data).
    page = expect(call("GET", f"{base}/console", token=provider), 200, "the console's home")
    if b"govuk-template" not in page.body:
        sys.exit("the console's page is not the GOV.UK template")
    css = f"{base}/console/static/govuk-frontend.min.css"
    expect(call("GET", css), 200, "the console's GOV.UK Frontend stylesheet")
    print(f"   {label}: a referral created, acknowledged, accepted, started, ended; history ok")


def through_load_balancer(lb: str, replica: str) -> None:
    admin = os.environ["PRAP_CHECK_ADMIN"]
    ready = expect(call("GET", f"{lb}/readyz?nino=AB123456C"), 200, "readiness through nginx")
    if not re.fullmatch(r"[0-9a-f]{32}", ready.headers.get("x-request-id", "")):
        sys.exit("nginx's request id did not reach the service")
    expect(call("GET", f"{lb}/v1/referrals"), 401, "the API through nginx")
    for spelling in ("/metrics", "/metrics/", "//metrics", "/%6detrics", "/metrics?x=1"):
        answer = expect(call("GET", lb + spelling, token=admin), 404, f"{spelling} through nginx")
        if answer.json().get("code") != "not-found":
            sys.exit(f"{spelling} through nginx: not a problem document")
    expect(call("GET", f"{replica}/metrics", token=admin), 200, "metrics on the replica itself")
    print("   nginx: the API forwarded, /metrics closed to the public, open to Prometheus")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "--through-lb":
        through_load_balancer(sys.argv[1], sys.argv[3])
    elif len(sys.argv) == 3:
        lifecycle(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)
