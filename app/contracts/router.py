from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.contracts import service
from app.contracts.schemas import ContractCreate, ContractOut, ProviderId, WithoutNul
from app.core.auth import Principal, Role, Scope, require
from app.core.deps import RequestClock, Session
from app.core.pagination import CursorParam, Limit, Page
from app.core.problems import NotFound, problem_responses
from app.programmes.schemas import ProgrammeCode

router = APIRouter(prefix="/v1/contracts", tags=["contracts"])

Admin = Annotated[Principal, Depends(require(Role.admin))]
Reader = Annotated[
    Principal,
    Depends(require(Role.admin, Role.post, Role.provider, scopes=(Scope.referrals, Scope.claims))),
]
ContractId = Annotated[str, Path(alias="id", max_length=40), WithoutNul]


@router.post(
    "",
    operation_id="createContract",
    status_code=201,
    response_model=ContractOut,
)
async def create_contract(
    body: ContractCreate,
    principal: Admin,
    session: Session,
    clock: RequestClock,
    response: Response,
) -> ContractOut:
    """Create a provider's contract for a programme, with its price schedule (integer pence)."""
    contract = await service.create_contract(session, clock, body)
    response.headers["Location"] = f"/v1/contracts/{contract.id}"
    return contract


@router.get("", operation_id="listContracts", response_model=Page[ContractOut])
async def list_contracts(
    principal: Reader,
    session: Session,
    provider_id: Annotated[ProviderId | None, Query()] = None,
    programme: Annotated[ProgrammeCode | None, Query()] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Page[ContractOut]:
    """Contracts: all of them for admin and post; a provider's own only for a provider."""
    return await service.list_contracts(
        session,
        principal,
        provider_id=provider_id,
        programme=programme,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/{id}",
    operation_id="getContract",
    response_model=ContractOut,
    responses=problem_responses(NotFound),
)
async def get_contract(contract_id: ContractId, principal: Reader, session: Session) -> ContractOut:
    """A contract and its price schedule (a provider: only its own)."""
    return ContractOut.model_validate(await service.get_contract(session, principal, contract_id))
