"""The JFS service fee in arrears, on final results, and recoveries (domain.md §8-9;
api-contract.md "Claims and payments"). Over HTTP, on both databases.

JFS 6.06: the fee "will be paid monthly in arrears"; JFS 6.09: "You will not be able to earn
back deductions applied under the service credit regime". We paid the current month's fee
on its provisional figures: a month that ended green lost 5% for good, one that ended red
kept a fee it should not have had. A month is final from the day after the later of its
CSS deadlines for a referral made on its last day (domain.md §9).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from httpx import AsyncClient

from tests.claim_support import (
    DAY0,
    claim_history,
    claim_ok,
    contract,
    get_claim,
    payment_run_ok,
    started_referral,
    validate,
)
from tests.helpers import POST, Api, act, create_referral

FEE = 1_000_000


def _last_day(year: int, month: int) -> date:
    following = date(year + month // 12, month % 12 + 1, 1)
    return following - timedelta(days=1)


async def test_each_fee_paid_once_on_final_figures_across_a_year_jfs_6_06_6_09(
    client: AsyncClient, api: Api
) -> None:
    """JFS 6.06, 6.09, domain.md §8-9: across 2026, one JFS referral on each month's last
    day; in odd months its start is recorded three days later (CSS 1 and 2 met: the month
    ends green, no deduction), in even months nothing is recorded (CSS 2 red after green:
    5%). Until the start is recorded every month reads red, so a fee paid on the figures at
    the month's end would lose 5% for good in every odd month. Payment runs for the current
    month are made every nine days into 2027, whatever the day: each month's fee is paid
    exactly once, only on or after its `payable_from`, held (and listed) before that, and
    on exactly the final figures of the contract's service-credit report, which the line
    keeps."""
    await api.set_today("2026-01-01")
    jfs = await contract(api, "JFS", monthly_service_fee_pence=FEE)
    events: dict[date, list[tuple[str, int]]] = {}
    for month in range(1, 13):
        last = _last_day(2026, month)
        events.setdefault(last, []).append(("refer", month))
        if month % 2:
            events.setdefault(last + timedelta(days=3), []).append(("start", month))
    referrals: dict[int, str] = {}
    runs: list[tuple[date, dict[str, Any]]] = []
    day = date(2026, 1, 1)
    while day <= date(2027, 2, 28):
        await api.set_today(day)
        for kind, month in events.get(day, []):
            if kind == "refer":
                made = await create_referral(client, nino=f"AB{100000 + month:06d}C")
                referrals[month] = made["id"]
                accepted = await act(client, made["id"], "accept")
                assert accepted.status_code == 200, accepted.text
            else:
                body = {"start_date": day.isoformat()}
                started = await act(client, referrals[month], "start", body)
                assert started.status_code == 200, started.text
        if (day - date(2026, 1, 1)).days % 9 == 4:
            runs.append((day, await payment_run_ok(client, f"{day.year:04d}-{day.month:02d}")))
        day += timedelta(days=1)

    report = await client.get(
        f"/v1/contracts/{jfs['id']}/service-credits?from=2026-01&to=2026-12", headers=POST
    )
    assert report.status_code == 200, report.text
    final = {row["month"]: row for row in report.json()["months"]}
    assert all(row["final"] for row in final.values())
    paid: Counter[str] = Counter()
    for run_day, run in runs:
        assert run["total_pence"] == sum(line["amount_pence"] for line in run["lines"])
        for line in run["lines"]:
            assert line["kind"] == "service_fee"
            paid[line["fee_month"]] += 1
            row = final[line["fee_month"]]
            assert run_day.isoformat() >= line["figures"]["final_from"], (run_day, line)
            assert (line["amount_pence"], line["deduction_pence"]) == (
                row["fee_payable_pence"],
                row["deduction_pence"],
            ), line["fee_month"]
            for standard in ("css1", "css2"):
                assert line["figures"][standard] == {
                    k: row[standard][k]
                    for k in ("eligible", "met", "percent", "rag", "deduction_percent")
                }
        for held in run["held_fees"]:
            assert run_day.isoformat() < held["payable_from"], (run_day, held)
            assert held["contract_id"] == jfs["id"]
    assert paid == Counter({f"2026-{m:02d}": 1 for m in range(1, 13)})
    expected = {f"2026-{m:02d}": FEE if m % 2 else FEE * 95 // 100 for m in range(1, 13)}
    assert {m: final[m]["fee_payable_pence"] for m in expected} == expected
    # Each month was held by at least one run before it became payable.
    held_months = {h["fee_month"] for _, run in runs for h in run["held_fees"]}
    assert held_months == set(expected)


async def test_later_events_do_not_reopen_a_paid_month_jfs_6_09(
    client: AsyncClient, api: Api
) -> None:
    """JFS 6.09, api-contract.md: "A fee line keeps the CSS figures it was paid on; later
    events do not reopen a paid month": a start recorded retrospectively after March was paid
    changes the live report, never the line, and no later run pays March again."""
    await api.set_today(DAY0)
    jfs = await contract(api, "JFS", monthly_service_fee_pence=FEE)
    await started_referral(client, i=1, programme="JFS")  # CSS 1 and 2 met
    await api.set_today("2026-03-31")
    late = await create_referral(client, nino="AB100002C")
    assert (await act(client, late["id"], "accept")).status_code == 200
    await api.set_today("2026-04-17")
    first = await payment_run_ok(client, "2026-04")
    (line,) = first["lines"]
    # CSS 2: 1 of 2 recorded in time, red after a green February: 5%.
    assert (line["fee_month"], line["amount_pence"]) == ("2026-03", FEE * 95 // 100)
    assert (line["figures"]["css1"]["eligible"], line["figures"]["css1"]["met"]) == (1, 1)
    await api.set_today("2026-04-20")
    started = await act(client, late["id"], "start", {"start_date": "2026-04-20"})
    assert started.status_code == 200, started.text
    report = await client.get(
        f"/v1/contracts/{jfs['id']}/service-credits?from=2026-03&to=2026-03", headers=POST
    )
    css1 = report.json()["months"][0]["css1"]
    assert (css1["eligible"], css1["met"], css1["rag"]) == (2, 1, "red")  # the live view moved
    again = await payment_run_ok(client, "2026-04")
    assert again["lines"] == []
    stored = (await client.get(f"/v1/payment-runs/{first['id']}", headers=POST)).json()
    assert stored["lines"] == first["lines"]


async def test_voided_paid_attachment_is_recovered_once_ses_3_15(
    client: AsyncClient, api: Api
) -> None:
    """SES 3.15, domain.md §8: "A paid attachment claim voided by a back-out is recovered by
    the next run (a negative line)". We left a paid claim alone and recovered it clerically;
    now the back-out voids it, the next run carries a `recovery` line of minus its amount
    (counted in the total), and no later run recovers it again."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    attachment = await validate(
        client, (await claim_ok(client, referral["id"], "attachment"))["id"]
    )
    paid_run = await payment_run_ok(client, "2026-03")
    assert [line["claim_id"] for line in paid_run["lines"]] == [attachment["id"]]
    backed = await act(client, referral["id"], "back-out", {"reason": "error"}, headers=POST)
    assert backed.status_code == 200, backed.text
    voided = await get_claim(client, attachment["id"])
    assert voided["status"] == "voided"
    assert [e["type"] for e in await claim_history(client, attachment["id"])] == [
        "submitted",
        "validated",
        "paid",
        "voided",
    ]
    recovering = await payment_run_ok(client, "2026-03")
    (line,) = recovering["lines"]
    assert line["kind"] == "recovery"
    assert line["claim_id"] == attachment["id"]
    assert line["contract_id"] == attachment["contract_id"]
    assert line["amount_pence"] == -attachment["amount_pence"]
    assert recovering["total_pence"] == -attachment["amount_pence"]
    assert (await payment_run_ok(client, "2026-03"))["lines"] == []
    await api.set_today("2026-04-01")
    assert (await payment_run_ok(client, "2026-04"))["lines"] == []


async def test_voided_unpaid_claim_is_not_recovered_ses_3_15(client: AsyncClient, api: Api) -> None:
    """SES 3.15: a claim voided before any run paid it is neither paid nor recovered."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    await validate(client, (await claim_ok(client, referral["id"], "attachment"))["id"])
    backed = await act(client, referral["id"], "back-out", {"reason": "error"}, headers=POST)
    assert backed.status_code == 200, backed.text
    assert (await payment_run_ok(client, "2026-03"))["lines"] == []
