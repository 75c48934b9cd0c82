"""The read audit, per referral (api-contract.md, Personal data)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.audit import service
from app.audit.schemas import ReadPage
from app.contracts.schemas import WithoutNul
from app.core.auth import Principal, Role, require
from app.core.deps import Session
from app.core.pagination import CursorParam, Limit

router = APIRouter(prefix="/v1/audit", tags=["personal data"])

Auditor = Annotated[Principal, Depends(require(Role.post, Role.admin))]


@router.get("/reads", operation_id="listReadAudit", response_model=ReadPage)
async def list_read_audit(
    _auditor: Auditor,
    session: Session,
    referral_id: Annotated[str, Query(max_length=40), WithoutNul],
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> ReadPage:
    """Who was shown this referral's personal data, when, through which operation (GEN 71),
    oldest first."""
    items, next_cursor = await service.reads_page(session, referral_id, cursor=cursor, limit=limit)
    return ReadPage(items=items, next_cursor=next_cursor)
