"""The service-credit calculator's small functions (app/credits/calculator.py; domain.md
§9, JFS 6.07-6.08). ``calculate`` itself is tested in tests/credits/test_calculate.py.
No app, no database."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.credits.calculator import (
    Counts,
    Rag,
    deduction_pence,
    deduction_percent,
    percent_text,
    previous_month,
)

pytestmark = pytest.mark.pure
# Hypothesis runs here without its per-example deadline: a loaded machine (or the holidays
# package building a year on first use) would make it a timed assertion.


@pytest.mark.parametrize(
    ("month", "previous"),
    [
        ("2026-03", "2026-02"),
        ("2026-01", "2025-12"),
        ("2026-12", "2026-11"),
        ("2000-10", "2000-09"),
    ],
)
def test_previous_month_crosses_year_ends_jfs_6_07(month: str, previous: str) -> None:
    """JFS 6.07: the sliding pair looks at the month before, across a year end too."""
    assert previous_month(month) == previous


R, A, G, N = Rag.red, Rag.amber, Rag.green, Rag.not_measured


@pytest.mark.parametrize(
    ("this", "last", "percent"),
    [
        (R, R, 10), (R, A, 5), (R, G, 5), (R, N, 5),
        (A, A, 5), (A, R, 0), (A, G, 0), (A, N, 0),
        (G, R, 0), (G, A, 0), (G, G, 0), (G, N, 0),
        (N, R, 0), (N, A, 0), (N, G, 0), (N, N, 0),
    ],
)  # fmt: skip
def test_deduction_percent_every_pair_jfs_6_07(this: Rag, last: Rag, percent: int) -> None:
    """JFS 6.07: red twice 10%, red 5%, amber twice 5%, else nothing; not measured breaks
    a run (domain.md §9)."""
    assert deduction_percent(this, last) == percent


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=100))
def test_deduction_pence_is_the_nearest_penny_half_up_domain_9(fee: int, percent: int) -> None:
    """domain.md §9: integer pence, rounded half up once: |exact - pence| ≤ ½, ties up."""
    pence = deduction_pence(fee, percent)
    exact_hundredths = fee * percent  # the exact amount, in hundredths of a penny
    assert -50 <= exact_hundredths - 100 * pence < 50  # a tie (-50) went up
    assert deduction_pence(fee, 0) == 0
    assert deduction_pence(fee, 100) == fee


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=10**6), st.data())
def test_percent_text_never_overstates_domain_9(eligible: int, data: st.DataObject) -> None:
    """domain.md §9: two decimals, cut, never rounded up: the text is ≤ the exact share and
    within a hundredth of it."""
    met = data.draw(st.integers(min_value=0, max_value=eligible))
    text = percent_text(Counts(eligible, met))
    assert text is not None
    hundredths = int(text.replace(".", ""))
    assert hundredths * eligible <= met * 10_000 < (hundredths + 1) * eligible
