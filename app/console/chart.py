"""Service credits as a server-side SVG chart: readable without JavaScript, and beside a
text table with the same figures (the chart is an illustration, the table the record)."""

from __future__ import annotations

from decimal import Decimal
from html import escape

from app.credits.schemas import MonthOut

# GOV.UK Design System colours; the letter on each bar says the RAG as well as the colour.
RAG_COLOURS = {"green": "#00703c", "amber": "#b75d00", "red": "#d4351c", "not_measured": "#505a5f"}
RAG_LETTERS = {"green": "G", "amber": "A", "red": "R", "not_measured": "-"}

_BAR = 14
_GROUP = 44
_HEIGHT = 160  # pixels for 100 %
_TOP = 24
_LEFT = 40


def _percent(value: str | None) -> Decimal:
    return Decimal(value) if value else Decimal(0)


def credits_chart(months: list[MonthOut], *, title: str) -> str:
    width = _LEFT + _GROUP * max(len(months), 1) + 10
    base = _TOP + _HEIGHT
    height = base + 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="prap-chart" role="img" '
        f'aria-labelledby="chart-title" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<title id="chart-title">{escape(title)}</title>',
    ]
    for level in (0, 50, 100):
        y = base - _HEIGHT * level / 100
        parts.append(
            f'<line x1="{_LEFT - 4}" y1="{y:.0f}" x2="{width}" y2="{y:.0f}" stroke="#b1b4b6"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.0f}" text-anchor="end" fill="#0b0c0c">'
            f"{level}%</text>"
        )
    for index, month in enumerate(months):
        x0 = _LEFT + index * _GROUP + 4
        for offset, (name, standard) in enumerate((("CSS 1", month.css1), ("CSS 2", month.css2))):
            x = x0 + offset * (_BAR + 2)
            bar = float(_percent(standard.percent)) * _HEIGHT / 100
            colour = RAG_COLOURS[str(standard.rag)]
            label = f"{month.month} {name}: {standard.percent or 'not measured'} ({standard.rag})"
            parts.append(
                f'<rect x="{x}" y="{base - bar:.1f}" width="{_BAR}" height="{max(bar, 1):.1f}" '
                f'fill="{colour}"><title>{escape(label)}</title></rect>'
                f'<text x="{x + _BAR / 2}" y="{base - bar - 3:.1f}" text-anchor="middle" '
                f'fill="{colour}" font-weight="bold">{RAG_LETTERS[str(standard.rag)]}</text>'
            )
        parts.append(
            f'<text x="{x0 + _BAR}" y="{base + 14}" text-anchor="middle" fill="#0b0c0c">'
            f"{escape(month.month[2:])}</text>"
        )
        if month.deduction_percent:
            parts.append(
                f'<text x="{x0 + _BAR}" y="{base + 28}" text-anchor="middle" fill="#d4351c" '
                f'font-weight="bold">-{month.deduction_percent}%</text>'
            )
        if month.termination_threshold or month.termination_right:
            parts.append(
                f'<text x="{x0 + _BAR}" y="{base + 42}" text-anchor="middle" fill="#d4351c" '
                f'font-weight="bold">!</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
