"""Pure pieces of the console, tested without a database: deadline tags, the payment-run
sections (ready for issue 11's held fees and recoveries), the SVG chart, form parsing."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel

from app.console.chart import credits_chart
from app.console.forms import fields_of, parse_body
from app.console.home import acknowledgement_tag
from app.console.support import run_sections
from app.credits.schemas import MonthOut, StandardOut
from app.referrals.schemas import EndBody, StartBody

WEDNESDAY = date(2026, 3, 4)


def test_acknowledgement_deadline_tags() -> None:
    """JFS 3.07: the worklist says overdue, due today, due tomorrow."""
    assert acknowledgement_tag(date(2026, 3, 3), WEDNESDAY)[0] == "Overdue"
    assert acknowledgement_tag(WEDNESDAY, WEDNESDAY)[0] == "Due today"
    assert acknowledgement_tag(date(2026, 3, 5), WEDNESDAY)[0] == "Due tomorrow"
    assert acknowledgement_tag(date(2026, 3, 9), WEDNESDAY)[0] == "Due later"


class _Run(BaseModel):
    id: str
    lines: list[dict[str, Any]]
    held_fees: list[dict[str, Any]]


def test_a_run_shows_every_kind_of_line_and_its_held_fees() -> None:
    """domain.md §8: claims, service fees, recoveries (negative) and held fees all show,
    whatever fields they carry."""
    run = _Run(
        id="r1",
        lines=[
            {"kind": "recovery", "claim_id": "c2", "contract_id": "k", "amount_pence": -500},
            {"kind": "claim", "claim_id": "c1", "contract_id": "k", "amount_pence": 500},
            {"kind": "service_fee", "contract_id": "k", "amount_pence": 9500,
             "deduction_pence": 500, "fee_month": "2026-01"},
        ],
        held_fees=[{"contract_id": "k", "fee_month": "2026-02", "payable_from": "2026-03-17"}],
    )  # fmt: skip
    sections = run_sections(run)
    assert [s["title"] for s in sections["sections"]] == [
        "Claims paid",
        "Service fees",
        "Recoveries",
    ]
    fees = sections["sections"][1]
    assert fees["columns"] == ["contract_id", "amount_pence", "deduction_pence", "fee_month"]
    assert sections["held"]["columns"] == ["contract_id", "fee_month", "payable_from"]


def _standard(percent: str | None, rag: str) -> StandardOut:
    return StandardOut(eligible=2, met=1, percent=percent, rag=rag, deduction_percent=5)


def test_the_chart_marks_rag_by_letter_and_colour_and_escapes_text() -> None:
    month = MonthOut(
        month="2026-01",
        css1=_standard("100.00", "green"),
        css2=_standard("50.00", "red"),
        deduction_percent=5,
        deduction_pence=500,
        fee_payable_pence=9500,
        termination_threshold=True,
        termination_right=False,
    )
    svg = credits_chart([month], title="<CSS> & co")
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert "&lt;CSS&gt; &amp; co" in svg
    assert ">R</text>" in svg
    assert ">G</text>" in svg
    assert "-5%" in svg


def test_the_end_form_does_not_offer_the_systems_own_end_code() -> None:
    """JFS 5.08: code 45 is set by the service only."""
    (end_code,) = [f for f in fields_of(EndBody) if f.name == "end_code"]
    assert "45" not in [value for value, _ in end_code.options]
    assert "1" in [value for value, _ in end_code.options]


def test_a_date_is_read_from_its_three_fields() -> None:
    form = {"start_date-day": "4", "start_date-month": "3", "start_date-year": "2026"}
    body, errors = parse_body(StartBody, form)
    assert errors == []
    assert isinstance(body, StartBody)
    assert body.start_date == WEDNESDAY
    _, errors = parse_body(StartBody, {"start_date-day": "31", "start_date-month": "2",
                                       "start_date-year": "2026"})  # fmt: skip
    assert [e.text for e in errors] == ["Start date must be a real date"]
