"""The pure service-credit calculator (domain.md §9; JFS 6.07-6.10, 7.44).

No HTTP and no database: month rows of eligible/met counts in, RAG, deductions and the
termination flags out.
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.credits.calculator import (
    Counts,
    MonthInput,
    MonthResult,
    Rag,
    Standard,
    calculate,
    deduction_pence,
    percent_text,
    rag_of,
)

pytestmark = pytest.mark.pure  # no app, no database

FEE = 1_000_000

# Counts that give each RAG, per standard (JFS 6.07: CSS 1 green >= 95%, amber >= 85%;
# CSS 2 green >= 95%, amber >= 90%).
COLOUR = {
    Standard.css1: {
        "G": Counts(100, 95),
        "A": Counts(100, 85),
        "R": Counts(100, 84),
        "N": Counts(0, 0),
    },
    Standard.css2: {
        "G": Counts(100, 95),
        "A": Counts(100, 90),
        "R": Counts(100, 89),
        "N": Counts(0, 0),
    },
}


def month_names(first: str, count: int) -> list[str]:
    year, number = int(first[:4]), int(first[5:7])
    names = []
    for _ in range(count):
        names.append(f"{year:04d}-{number:02d}")
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return names


def rows(css1: str, css2: str | None = None, first: str = "2026-01") -> list[MonthInput]:
    """Month rows from colour strings, one letter a month: G, A, R or N (not measured)."""
    css2 = css2 if css2 is not None else "G" * len(css1)
    assert len(css1) == len(css2)
    return [
        MonthInput(
            month=name,
            css1=COLOUR[Standard.css1][a],
            css2=COLOUR[Standard.css2][b],
        )
        for name, a, b in zip(month_names(first, len(css1)), css1, css2, strict=True)
    ]


def run(css1: str, css2: str | None = None, fee: int = FEE) -> list[MonthResult]:
    return calculate(fee, rows(css1, css2))


def standard_deductions(results: list[MonthResult], standard: Standard) -> list[int]:
    return [getattr(r, standard.value).deduction_percent for r in results]


# --- RAG: exact fractions (JFS 6.07, domain.md §9) -----------------------------------------


@pytest.mark.parametrize(
    ("standard", "eligible", "met", "rag"),
    [
        # CSS 1: green from 95%, amber from 85%, red below.
        (Standard.css1, 100, 100, Rag.green),
        (Standard.css1, 100, 95, Rag.green),
        (Standard.css1, 20, 19, Rag.green),
        (Standard.css1, 1000, 949, Rag.amber),  # 94.9% is amber, never rounded up
        (Standard.css1, 20000, 18999, Rag.amber),  # 94.995%
        (Standard.css1, 100, 85, Rag.amber),  # exactly 85%: amber
        (Standard.css1, 20, 17, Rag.amber),
        (Standard.css1, 100000, 84999, Rag.red),  # 84.999%
        (Standard.css1, 6667, 5666, Rag.red),  # 84.98..%
        (Standard.css1, 1, 0, Rag.red),
        # CSS 2: green from 95%, amber from 90%, red below.
        (Standard.css2, 100, 95, Rag.green),
        (Standard.css2, 1000, 949, Rag.amber),
        (Standard.css2, 100, 90, Rag.amber),  # exactly 90%: amber
        (Standard.css2, 10, 9, Rag.amber),
        (Standard.css2, 100000, 89999, Rag.red),  # 89.999%
        (Standard.css2, 100, 89, Rag.red),
        (Standard.css2, 100, 85, Rag.red),  # amber for CSS 1, red for CSS 2
    ],
)
def test_rag_thresholds_jfs_6_07_exact_fractions(
    standard: Standard, eligible: int, met: int, rag: Rag
) -> None:
    """JFS 6.07 with domain.md §9: compare exact fractions, no rounding before comparing."""
    assert rag_of(Counts(eligible, met), standard) is rag


def test_949_of_1000_is_amber_but_95_of_100_green_jfs_6_07() -> None:
    """JFS 6.07: 94.9% (949/1000) is amber though it would round to 95%; 95/100 is green."""
    for standard in Standard:
        assert rag_of(Counts(1000, 949), standard) is Rag.amber
        assert rag_of(Counts(100, 95), standard) is Rag.green
        assert rag_of(Counts(1000, 950), standard) is Rag.green


def test_not_measured_when_nobody_eligible_domain_9() -> None:
    """domain.md §9: a month with no eligible referrals for a standard is not_measured."""
    for standard in Standard:
        assert rag_of(Counts(0, 0), standard) is Rag.not_measured
    [result] = run("N", "N")
    for standard_result in (result.css1, result.css2):
        assert standard_result.rag is Rag.not_measured
        assert standard_result.percent is None
        assert standard_result.deduction_percent == 0
    assert result.deduction_pence == 0
    assert result.fee_payable_pence == FEE


# --- percent text (api-contract.md: a string with two decimals) ----------------------------


@pytest.mark.parametrize(
    ("eligible", "met", "text"),
    [
        (120, 100, "83.33"),
        (20000, 18999, "94.99"),  # 94.995% reads 94.99, never 95.00 (it is amber)
        (100, 96, "96.00"),
        (3, 2, "66.66"),  # rounded down, not 66.67
        (200000, 199999, "99.99"),  # 99.9995%: never 100.00 unless all met
        (1, 1, "100.00"),
        (7, 0, "0.00"),
        (1000, 949, "94.90"),
        (6667, 5666, "84.98"),
    ],
)
def test_percent_text_two_decimals_rounded_down(eligible: int, met: int, text: str) -> None:
    """api-contract.md: ``percent`` has two decimals; rounded down so that the text never
    shows a threshold the fraction did not reach (JFS 6.07)."""
    assert percent_text(Counts(eligible, met)) == text


def test_percent_is_none_when_not_measured() -> None:
    assert percent_text(Counts(0, 0)) is None


def test_counts_refuse_met_above_eligible_or_negative() -> None:
    with pytest.raises(ValueError, match="met"):
        Counts(5, 6)
    with pytest.raises(ValueError, match="met"):
        Counts(-1, 0)


# --- deductions: per standard, a sliding pair of months (JFS 6.07-6.08) --------------------


@pytest.mark.parametrize("standard", list(Standard))
@pytest.mark.parametrize(
    ("colours", "expected"),
    [
        ("R", [5]),  # red once: 5%
        ("RR", [5, 10]),  # red two consecutive months: 10%
        ("RRR", [5, 10, 10]),
        ("AAA", [0, 5, 5]),  # amber two consecutive months: 5% (sliding pair)
        ("AR", [0, 5]),
        ("RA", [5, 0]),  # red then amber: the amber pair needs two ambers
        ("RNR", [5, 0, 5]),  # not_measured breaks the run
        ("ANA", [0, 0, 0]),
        ("RGR", [5, 0, 5]),
        ("AGA", [0, 0, 0]),
        ("GGG", [0, 0, 0]),
        ("AARR", [0, 5, 5, 10]),
    ],
)
def test_deduction_sliding_pair_per_standard_jfs_6_07(
    standard: Standard, colours: str, expected: list[int]
) -> None:
    """JFS 6.07 (reading, domain.md §9): red and red last month 10%, red 5%, amber and amber
    last month 5%, else 0; a not_measured month breaks a run. Each standard alone."""
    green = "G" * len(colours)
    css1, css2 = (colours, green) if standard is Standard.css1 else (green, colours)
    results = run(css1, css2)
    assert standard_deductions(results, standard) == expected
    other = Standard.css2 if standard is Standard.css1 else Standard.css1
    assert standard_deductions(results, other) == [0] * len(colours)
    assert [r.deduction_percent for r in results] == expected
    assert [r.deduction_pence for r in results] == [FEE * p // 100 for p in expected]


def test_amber_in_both_standards_one_month_gives_nothing_jfs_6_08() -> None:
    """JFS 6.08: "an amber mark in CSS 1 and 2 in one month will not result in a deduction"."""
    [result] = run("A", "A")
    assert (result.css1.rag, result.css2.rag) == (Rag.amber, Rag.amber)
    assert result.deduction_percent == 0
    assert result.deduction_pence == 0
    assert result.fee_payable_pence == FEE


def test_standards_are_applied_independently_jfs_6_08() -> None:
    """JFS 6.08: each standard's credit on its own: amber in CSS 1 two months running is 5%
    even if CSS 2 turned from amber to red; the month total is the sum."""
    results = run("AA", "AR")
    assert standard_deductions(results, Standard.css1) == [0, 5]
    assert standard_deductions(results, Standard.css2) == [0, 5]
    assert [r.deduction_percent for r in results] == [0, 10]
    # Amber in CSS 1 and red in CSS 2 in one month: 5% for CSS 2 only.
    [result] = run("A", "R")
    assert result.deduction_percent == 5


def test_both_standards_red_twice_is_20_percent_jfs_6_07() -> None:
    """JFS 6.07-6.08: 10% per standard for red two months running, so 20% in total."""
    results = run("RR", "RR")
    assert [r.deduction_percent for r in results] == [10, 20]
    assert [r.deduction_pence for r in results] == [100_000, 200_000]
    assert [r.fee_payable_pence for r in results] == [900_000, 800_000]


def test_deductions_are_never_earned_back_jfs_6_09() -> None:
    """JFS 6.09: a green month after reds deducts nothing, and gives nothing back."""
    results = run("RRG", "RRG")
    assert [r.deduction_pence for r in results] == [100_000, 200_000, 0]
    assert all(r.fee_payable_pence <= FEE for r in results)


# --- amounts: integer pence, rounded half up once (domain.md §9) ---------------------------


def test_amount_rounded_once_on_the_month_total_domain_9() -> None:
    """domain.md §9: 5% + 5% of 333,333p is 33,333p (10% rounded once), not 16,667p twice."""
    [result] = run("R", "R", fee=333_333)
    assert (result.css1.deduction_percent, result.css2.deduction_percent) == (5, 5)
    assert result.deduction_pence == 33_333
    assert result.fee_payable_pence == 333_333 - 33_333


@pytest.mark.parametrize(
    ("fee", "percent", "pence"),
    [
        (333_330, 5, 16_667),  # 16,666.5 rounds half up
        (10, 5, 1),  # 0.5p rounds up
        (10, 15, 2),  # 1.5p rounds up
        (30, 5, 2),  # 1.5p
        (29, 5, 1),  # 1.45p rounds down
        (333_333, 10, 33_333),  # 33,333.3
        (333_333, 5, 16_667),  # 16,666.65
        (1_000_000, 20, 200_000),
        (0, 20, 0),
        (12_345, 0, 0),
    ],
)
def test_deduction_pence_half_up(fee: int, percent: int, pence: int) -> None:
    """domain.md §9: the percentage of the fee in integer pence, rounded half up."""
    assert deduction_pence(fee, percent) == pence


def test_half_penny_case_through_calculate() -> None:
    """domain.md §9: 5% of 333,330p is 16,666.5p, paid as a 16,667p deduction."""
    [result] = run("R", "G", fee=333_330)
    assert result.deduction_pence == 16_667
    assert result.fee_payable_pence == 333_330 - 16_667


def test_fee_payable_is_fee_less_deduction() -> None:
    """api-contract.md: fee_payable_pence = the month's fee less its deduction."""
    for result in run("RRAAGNR", "AARRNGR", fee=987_654):
        assert result.fee_payable_pence == 987_654 - result.deduction_pence


# --- termination flags (JFS 6.07 threshold, JFS 6.10 right) --------------------------------


def test_termination_threshold_three_reds_running_in_one_standard_jfs_6_07() -> None:
    """JFS 6.07: "Service Termination Threshold: Red for three consecutive months"."""
    for css1, css2 in (("RRR", "GGG"), ("GGG", "RRR")):
        results = run(css1, css2)
        assert [r.termination_threshold for r in results] == [False, False, True]
    results = run("RRRR", "GGGG")
    assert [r.termination_threshold for r in results] == [False, False, True, True]


def test_termination_threshold_not_for_reds_split_across_standards_jfs_6_07() -> None:
    """JFS 6.07-6.08: the run is per standard; red in CSS 1, CSS 2, CSS 1 is no threshold."""
    results = run("RGR", "GRG")
    assert [r.termination_threshold for r in results] == [False, False, False]
    results = run("RRG", "GGR")
    assert [r.termination_threshold for r in results] == [False, False, False]


def test_termination_threshold_broken_by_not_measured_domain_9() -> None:
    """domain.md §9: a not_measured month breaks a run of consecutive months."""
    results = run("RRNR", "GGGG")
    assert not any(r.termination_threshold for r in results)


def test_termination_right_four_red_months_in_rolling_twelve_jfs_6_10() -> None:
    """JFS 6.10: red in any CSS in four or more months of a rolling 12-month period. Reds in
    2025-03 (the first month of the twelve ending 2026-02), 2025-06 (CSS 2), 2025-09 and
    2026-02."""
    names = month_names("2025-01", 14)  # 2025-01 .. 2026-02
    reds1 = {"2025-03", "2025-09", "2026-02"}
    reds2 = {"2025-06"}
    months = [
        MonthInput(
            month=name,
            css1=COLOUR[Standard.css1]["R" if name in reds1 else "G"],
            css2=COLOUR[Standard.css2]["R" if name in reds2 else "G"],
        )
        for name in names
    ]
    results = {r.month: r for r in calculate(FEE, months)}
    assert results["2026-02"].termination_right is True
    assert not any(r.termination_right for m, r in results.items() if m != "2026-02")
    assert not any(r.termination_threshold for r in results.values())


def test_termination_right_red_thirteen_months_earlier_does_not_count_jfs_6_10() -> None:
    """JFS 6.10: reds in 2025-02, 2025-03, 2025-06, 2025-09 and 2026-02. In the twelve months
    ending 2026-02 (2025-03 .. 2026-02) only four count; moving 2025-03 out of the window
    (to 2025-02, thirteen months before) leaves three: no right."""

    def with_reds(reds: set[str]) -> dict[str, MonthResult]:
        months = [
            MonthInput(
                month=name,
                css1=COLOUR[Standard.css1]["R" if name in reds else "G"],
                css2=COLOUR[Standard.css2]["G"],
            )
            for name in month_names("2025-01", 14)
        ]
        return {r.month: r for r in calculate(FEE, months)}

    five = with_reds({"2025-02", "2025-03", "2025-06", "2025-09", "2026-02"})
    assert five["2026-02"].termination_right is True
    four_but_one_old = with_reds({"2025-02", "2025-06", "2025-09", "2026-02"})
    assert four_but_one_old["2026-02"].termination_right is False
    # Nor a month earlier: 2025-02 .. 2026-01 holds only three red months.
    assert four_but_one_old["2026-01"].termination_right is False
    # Seen from 2025-09 (2024-10 .. 2025-09) the five-red history already gives the right.
    assert five["2025-09"].termination_right is True


def test_termination_right_counts_months_not_red_marks_jfs_6_10() -> None:
    """JFS 6.10: "four or more months": a month red in both standards is one month."""
    results = run("RGRGR", "RGRGG")
    assert [r.termination_right for r in results] == [False] * 5
    results = run("RGRGRR", "RGRGGG")
    assert results[-1].termination_right is True


# --- the month before the first row, and history (api-contract.md) -------------------------


def test_month_before_first_row_counts_as_green_api_contract() -> None:
    """api-contract.md: "The calculator treats the month before the first row as green":
    a first red is 5% (not 10%), a first amber is 0 (not 5%)."""
    assert run("R", "A")[0].deduction_percent == 5
    assert run("A", "R")[0].css1.deduction_percent == 0
    assert run("RR", "GG")[0].termination_threshold is False


def test_history_rows_give_context_not_results_jfs_6_07() -> None:
    """History rows (the months before the report) carry runs across the report's edge
    (JFS 6.07) and the rolling twelve (JFS 6.10), and are not reported themselves."""
    history = rows("RR", "AG", first="2025-11")
    months = rows("R", "A", first="2026-01")
    [result] = calculate(FEE, months, history)
    assert result.month == "2026-01"
    assert result.css1.deduction_percent == 10  # red, red last month
    assert result.css2.deduction_percent == 0  # amber, but green last month
    assert result.termination_threshold is True  # CSS 1 red Nov, Dec, Jan
    [result] = calculate(FEE, rows("A", "A", first="2026-01"), rows("A", "N", first="2025-12"))
    assert (result.css1.deduction_percent, result.css2.deduction_percent) == (5, 0)


def test_history_feeds_termination_right_jfs_6_10() -> None:
    history = rows("RGRGRGGGGGG", "GGGGGGGGGGG", first="2025-02")  # reds Feb, Apr, Jun 2025
    [result] = calculate(FEE, rows("R", first="2026-01"), history)
    assert result.termination_right is True
    [result] = calculate(FEE, rows("G", first="2026-01"), history)
    assert result.termination_right is False


def test_year_boundary_run_jfs_6_07() -> None:
    """December then January are consecutive months."""
    results = calculate(FEE, rows("RR", "AA", first="2025-12"))
    assert [r.month for r in results] == ["2025-12", "2026-01"]
    assert [r.deduction_percent for r in results] == [5, 15]


# --- properties (hypothesis) ---------------------------------------------------------------


@st.composite
def counts(draw: st.DrawFn) -> Counts:
    eligible = draw(st.integers(min_value=0, max_value=200))
    return Counts(eligible, draw(st.integers(min_value=0, max_value=eligible)))


@st.composite
def month_rows(draw: st.DrawFn) -> list[MonthInput]:
    length = draw(st.integers(min_value=1, max_value=26))
    first = draw(st.sampled_from(["2024-01", "2024-11", "2025-06", "2026-12"]))
    return [
        MonthInput(month=name, css1=draw(counts()), css2=draw(counts()))
        for name in month_names(first, length)
    ]


fees = st.integers(min_value=0, max_value=10**12)


@settings(max_examples=300, deadline=None)
@given(fee=fees, months=month_rows())
def test_property_deductions_bounded(fee: int, months: list[MonthInput]) -> None:
    """domain.md §9: each standard deducts 0, 5 or 10%; a month at most 20%; the amount is
    never negative nor above the fee, and the fee payable is what is left."""
    results = calculate(fee, months)
    assert [r.month for r in results] == [m.month for m in months]
    for result in results:
        assert result.css1.deduction_percent in {0, 5, 10}
        assert result.css2.deduction_percent in {0, 5, 10}
        assert 0 <= result.deduction_percent <= 20
        assert result.deduction_percent == (
            result.css1.deduction_percent + result.css2.deduction_percent
        )
        assert 0 <= result.deduction_pence <= fee
        exact = Fraction(fee * result.deduction_percent, 100)
        assert result.deduction_pence == math.floor(exact + Fraction(1, 2))  # half up, once
        assert result.fee_payable_pence == fee - result.deduction_pence
        for r in (result.css1, result.css2):
            if r.eligible == 0:
                assert r.rag is Rag.not_measured
                assert r.deduction_percent == 0
            else:
                share = Fraction(r.met, r.eligible)
                assert r.percent is not None
                assert Fraction(r.percent) <= share * 100 < Fraction(r.percent) + Fraction(1, 100)


def turn_red(months: list[MonthInput], index: int, standard: Standard) -> list[MonthInput]:
    changed = list(months)
    changed[index] = replace(changed[index], **{standard.value: Counts(1, 0)})
    return changed


@settings(max_examples=300, deadline=None)
@given(
    fee=fees,
    months=month_rows(),
    where=st.integers(min_value=0),
    standard=st.sampled_from(list(Standard)),
)
def test_property_turning_a_month_red_never_lowers_a_deduction(
    fee: int, months: list[MonthInput], where: int, standard: Standard
) -> None:
    """JFS 6.07: making a month's standard red (eligible > 0, met = 0) never lowers any
    month's total deduction, nor clears a termination flag, when that month was not amber.

    When it *was* amber the rule as written is not monotone: it may break an amber pair, and
    the following month, if amber, loses its 5% ("amber for two consecutive months"; red
    then amber is 5, 0: see the next test). Only that month, only by those 5 points."""
    index = where % len(months)
    before = calculate(fee, months)
    was = getattr(before[index], standard.value).rag
    after = calculate(fee, turn_red(months, index, standard))
    assert getattr(after[index], standard.value).rag is Rag.red
    for position, (old, new) in enumerate(zip(before, after, strict=True)):
        assert new.termination_threshold >= old.termination_threshold
        assert new.termination_right >= old.termination_right
        broke_amber_pair = (
            was is Rag.amber
            and position == index + 1
            and getattr(old, standard.value).rag is Rag.amber
        )
        if broke_amber_pair:
            assert getattr(new, standard.value).deduction_percent == 0
            assert new.deduction_percent == old.deduction_percent - 5
        else:
            assert new.deduction_percent >= old.deduction_percent
            assert new.deduction_pence >= old.deduction_pence


def test_turning_amber_red_can_lower_the_next_month_jfs_6_07() -> None:
    """The counterexample to a fully monotone rule, as domain.md §9 words it: amber, amber,
    amber gives 0, 5, 5 (10% in all); turning the middle month red gives 0, 5, 0 (5%)."""
    assert [r.deduction_percent for r in run("AAA")] == [0, 5, 5]
    assert [r.deduction_percent for r in run("ARA")] == [0, 5, 0]
