"""The console's one place where personal data is read for display.

Every page that shows a participant's personal data (names, NINO, date of birth, contact
details, notes) calls ``record_personal_data_read`` once, naming the referrals it showed
(domain.md §10, read audit; GEN 71). Issue 12 brings the read audit (``record_read``): wire
it here and every console read is in the audit like any API read.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal


async def record_personal_data_read(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    *,
    operation: str,
    referral_ids: Iterable[str],
) -> None:
    """Record that ``principal`` was shown these referrals' personal data through the console
    page ``operation`` (e.g. ``consoleGetReferral``). Until issue 12's ``record_read`` is
    merged, the record stays on the request state only."""
    ids = sorted(set(referral_ids))
    if ids:
        request.state.console_reads = [
            *getattr(request.state, "console_reads", []),
            (operation, ids),
        ]
