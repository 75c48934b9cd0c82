"""Customer service standards and service credits (domain.md §9; JFS 6.07-6.10, 7.44).

Pure: month rows of eligible/met counts in, RAG, deductions and flags out. Percentages are
compared as exact fractions (94.9% is amber, never rounded up to green); money is integer
pence, rounded half up once, on the month's total percentage.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction


class Rag(enum.StrEnum):
    green = "green"
    amber = "amber"
    red = "red"
    not_measured = "not_measured"


class Standard(enum.StrEnum):
    css1 = "css1"
    css2 = "css2"


@dataclass(frozen=True, slots=True)
class Thresholds:
    green: Fraction
    amber: Fraction


# JFS 6.07: CSS 1 green from 95%, amber from 85%; CSS 2 green from 95%, amber from 90%.
THRESHOLDS = {
    Standard.css1: Thresholds(green=Fraction(95, 100), amber=Fraction(85, 100)),
    Standard.css2: Thresholds(green=Fraction(95, 100), amber=Fraction(90, 100)),
}

# JFS 6.07: red two months running 10%, red 5%, amber two months running 5%.
RED_TWICE_PERCENT = 10
RED_PERCENT = 5
AMBER_TWICE_PERCENT = 5
# JFS 6.07: red three months running in one standard; JFS 6.10: red in four of twelve.
TERMINATION_THRESHOLD_RUN = 3
TERMINATION_RIGHT_MONTHS = 4
ROLLING_WINDOW = 12


@dataclass(frozen=True, slots=True)
class Counts:
    eligible: int
    met: int

    def __post_init__(self) -> None:
        if self.eligible < 0 or self.met < 0 or self.met > self.eligible:
            raise ValueError("need 0 <= met <= eligible")


@dataclass(frozen=True, slots=True)
class MonthInput:
    month: str  # YYYY-MM
    css1: Counts
    css2: Counts


@dataclass(frozen=True, slots=True)
class StandardResult:
    eligible: int
    met: int
    percent: str | None
    rag: Rag
    deduction_percent: int


@dataclass(frozen=True, slots=True)
class MonthResult:
    month: str
    css1: StandardResult
    css2: StandardResult
    deduction_percent: int
    deduction_pence: int
    fee_payable_pence: int
    termination_threshold: bool
    termination_right: bool


def rag_of(counts: Counts, standard: Standard) -> Rag:
    if counts.eligible == 0:
        # No eligible referrals: not measured; no deduction, and it breaks a run.
        return Rag.not_measured
    share = Fraction(counts.met, counts.eligible)
    thresholds = THRESHOLDS[standard]
    if share >= thresholds.green:
        return Rag.green
    if share >= thresholds.amber:
        return Rag.amber
    return Rag.red


def percent_text(counts: Counts) -> str | None:
    """The share as a percentage with two decimals, rounded down, so that the text never
    reads 95.00 for a share that is amber (94.995%). Display only: RAG uses the fraction."""
    if counts.eligible == 0:
        return None
    hundredths = (counts.met * 10_000) // counts.eligible
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def deduction_percent(this: Rag, last: Rag) -> int:
    """JFS 6.07-6.08, per standard, a sliding pair of months (amber, amber, amber gives
    0, 5, 5). Amber in both standards in one month is two single ambers: nothing."""
    if this is Rag.red:
        return RED_TWICE_PERCENT if last is Rag.red else RED_PERCENT
    if this is Rag.amber and last is Rag.amber:
        return AMBER_TWICE_PERCENT
    return 0


def deduction_pence(fee_pence: int, percent: int) -> int:
    """``percent`` of the fee in integer pence, rounded half up once (5% + 5% of 333,333p
    is 33,333p)."""
    return (fee_pence * percent + 50) // 100


def previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def calculate(
    fee_pence: int,
    months: Sequence[MonthInput],
    history: Sequence[MonthInput] = (),
) -> list[MonthResult]:
    """Results for ``months`` (ascending, distinct). ``history`` gives earlier months for
    context (runs and the rolling twelve); a month absent from both counts as green."""
    rags: dict[str, dict[Standard, Rag]] = {}
    for row in (*history, *months):
        rags[row.month] = {
            Standard.css1: rag_of(row.css1, Standard.css1),
            Standard.css2: rag_of(row.css2, Standard.css2),
        }

    def rag_at(month: str, standard: Standard) -> Rag:
        return rags.get(month, {}).get(standard, Rag.green)

    def red_in(month: str) -> bool:
        return any(rag_at(month, s) is Rag.red for s in Standard)

    results = []
    for row in months:
        month = row.month
        last = previous_month(month)
        per_standard = {}
        for standard, counts in ((Standard.css1, row.css1), (Standard.css2, row.css2)):
            rag = rag_at(month, standard)
            per_standard[standard] = StandardResult(
                eligible=counts.eligible,
                met=counts.met,
                percent=percent_text(counts),
                rag=rag,
                deduction_percent=deduction_percent(rag, rag_at(last, standard)),
            )
        total = sum(r.deduction_percent for r in per_standard.values())
        deduction = deduction_pence(fee_pence, total)
        window = [month]
        for _ in range(ROLLING_WINDOW - 1):
            window.append(previous_month(window[-1]))
        threshold = any(
            all(rag_at(m, standard) is Rag.red for m in window[:TERMINATION_THRESHOLD_RUN])
            for standard in Standard
        )
        results.append(
            MonthResult(
                month=month,
                css1=per_standard[Standard.css1],
                css2=per_standard[Standard.css2],
                deduction_percent=total,
                deduction_pence=deduction,
                fee_payable_pence=fee_pence - deduction,
                termination_threshold=threshold,
                termination_right=sum(red_in(m) for m in window) >= TERMINATION_RIGHT_MONTHS,
            )
        )
    return results
