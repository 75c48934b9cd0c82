from __future__ import annotations

from fastapi import APIRouter

from app.core.auth import AnyPrincipal
from app.core.deps import Session
from app.programmes import service
from app.programmes.schemas import ProgrammeList

router = APIRouter(prefix="/v1/programmes", tags=["programmes"])


@router.get("", operation_id="listProgrammes", response_model=ProgrammeList)
async def list_programmes(_principal: AnyPrincipal, session: Session) -> ProgrammeList:
    """The programmes and their parameters: time limits, funding, customer service standards."""
    return ProgrammeList(items=await service.list_programmes(session))
