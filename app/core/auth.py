"""Bearer-token authentication and role/scope authorisation (api-contract.md, Authentication).

Tokens are JWTs verified with exactly one algorithm: HS256 with ``PRAP_JWT_SECRET`` or RS256
with ``PRAP_JWT_PUBLIC_KEY``. ``alg: none`` and every other algorithm are refused, audience
must be ``prap`` and ``exp`` is required and checked against real time (never the sandbox
clock).
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jose import JWTError, jwt
from starlette.types import Scope as ASGIScope

from app.core.asgi import header
from app.core.clock import real_now
from app.core.media_types import require_json_body
from app.core.problems import FieldError, Forbidden, Unauthenticated, ValidationProblem
from app.core.settings import Settings

AUDIENCE = "prap"
# api-contract.md, The boundary: a token's provider_id is 1-32 of these characters.
PROVIDER_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


class Role(enum.StrEnum):
    jcp = "jcp"
    provider = "provider"
    post = "post"
    admin = "admin"


class Scope(enum.StrEnum):
    referrals = "referrals"
    claims = "claims"


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    role: Role
    provider_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_provider(self) -> bool:
        return self.role is Role.provider

    @property
    def caller_key(self) -> str:
        """Who the caller is, for per-caller records such as idempotency keys: a digest of the
        (role, provider, subject) tuple as JSON, so that no two callers can share one however
        their names are spelt (api-contract.md, The boundary)."""
        identity = json.dumps([str(self.role), self.provider_id, self.sub])
        return hashlib.sha256(identity.encode()).hexdigest()


# The scope-state key under which a request's authentication is kept (see ``authenticate``).
_AUTHENTICATION = "authentication"


def authenticate(scope: ASGIScope, settings: Settings) -> Principal | Unauthenticated:
    """The principal of the request's ``Authorization: Bearer`` token, or why there is none.

    Verified once per request and kept in the ASGI scope's state: the request pipeline (the
    boundary's anonymity check, the Idempotency-Key's caller) and the route's own dependency
    all see this one result. The token is parsed as ``HTTPBearer`` parses it (the scheme
    case-insensitive, the token stripped), so the pipeline and the route never disagree."""
    state = scope.setdefault("state", {})
    found: Principal | Unauthenticated | None = state.get(_AUTHENTICATION)
    if found is None:
        found = state[_AUTHENTICATION] = _from_header(header(scope, b"authorization"), settings)
    return found


def principal_of(scope: ASGIScope, settings: Settings) -> Principal | None:
    """The request's principal, or None without a valid token (for the pipeline, which
    answers nothing itself: the route's dependency gives the 401)."""
    found = authenticate(scope, settings)
    return found if isinstance(found, Principal) else None


def _from_header(authorization: str | None, settings: Settings) -> Principal | Unauthenticated:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Unauthenticated()
    try:
        return decode_token(token.strip(), settings)
    except Unauthenticated as refused:
        return refused


def decode_token(token: str, settings: Settings) -> Principal:
    """Verify a token and return its principal, or raise ``Unauthenticated``."""
    key = settings.jwt_verification_key
    if key is None:
        raise Unauthenticated("The service has no token key configured.")
    principal, expires = _verify(token, key, settings.jwt_algorithm)
    # A verified token is remembered (verifying costs more than the rest of a small
    # request), but its expiry is checked against real time at every use.
    if expires <= real_now().timestamp():
        raise Unauthenticated()
    return principal


@lru_cache(maxsize=4096)
def _verify(token: str, key: str, algorithm: str) -> tuple[Principal, float]:
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != algorithm:
            raise Unauthenticated()
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=AUDIENCE,
            options={"require_exp": True, "require_sub": True, "require_aud": True},
        )
    except (JWTError, ValueError, TypeError, OverflowError) as error:
        # python-jose turns a non-finite ``exp`` or ``iat`` (``Infinity``, ``NaN``) into a
        # ValueError or OverflowError of its own: still just a bad token.
        raise Unauthenticated() from error
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise Unauthenticated()
    if not math.isfinite(expires):
        raise Unauthenticated()
    return principal_from_claims(claims), float(expires)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    sub = claims.get("sub")
    role = claims.get("role")
    provider_id = claims.get("provider_id")
    scope = claims.get("scope", "")
    if not isinstance(sub, str) or not sub or not isinstance(role, str):
        raise Unauthenticated()
    if role not in Role.__members__:
        raise Unauthenticated()
    if not isinstance(scope, str) or (provider_id is not None and not isinstance(provider_id, str)):
        raise Unauthenticated()
    if any("\x00" in value for value in (sub, provider_id or "", scope)):
        raise Unauthenticated()  # nothing a database could store
    if role == Role.provider and not provider_id:
        raise Unauthenticated("A provider token must carry provider_id.")
    if role == Role.provider and not PROVIDER_ID.fullmatch(provider_id or ""):
        raise Unauthenticated("The token's provider_id is not a provider id.")
    return Principal(
        sub=sub,
        role=Role(role),
        provider_id=provider_id if role == Role.provider else None,
        scopes=frozenset(scope.split()),
    )


def mint_token(
    *,
    sub: str,
    role: Role,
    key: str,
    algorithm: str = "HS256",
    provider_id: str | None = None,
    scopes: Iterable[str] = (),
    lifetime: timedelta = timedelta(hours=8),
) -> str:
    """A signed token, for development (CLI) and the sandbox."""
    now = real_now()
    claims: dict[str, Any] = {
        "sub": sub,
        "role": str(role),
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "scope": " ".join(scopes),
    }
    if provider_id is not None:
        claims["provider_id"] = provider_id
    return str(jwt.encode(claims, key, algorithm=algorithm))


_bearer = HTTPBearer(auto_error=False, description="A JWT with audience `prap`.")


def _authenticated(request: Request) -> Principal:
    """The request's principal (401 without one), kept in ``request.state.principal``. The
    token itself was verified once for the whole request (``authenticate`` remembers it)."""
    found = authenticate(request.scope, request.app.state.settings)
    if isinstance(found, Unauthenticated):
        raise found
    request.state.principal = found
    return found


@dataclass(frozen=True, slots=True)
class Admission:
    """Who a route admits: ``roles``, and a provider only with one of ``scopes`` (reading
    needs either scope; actions name the one they need). Checked in the contract's order:
    403 for the role or scope, then 415 for the body's media type, then 422 for the key."""

    roles: frozenset[Role]
    scopes: frozenset[str]

    async def __call__(self, request: Request, principal: Principal) -> Principal:
        if principal.role not in self.roles:
            raise Forbidden()
        if principal.is_provider and self.scopes and not (principal.scopes & self.scopes):
            raise Forbidden("Your token lacks the scope this action needs.")
        await require_json_body(request)  # 415 after 403, before 422
        if getattr(request.state, "invalid_idempotency_key", False):
            raise ValidationProblem(
                "Idempotency-Key must be 1 to 255 printable ASCII characters.",
                errors=[FieldError(field="Idempotency-Key", message="Invalid key.")],
            )
        return principal


def admitter(*roles: Role, scopes: Iterable[Scope] = ()) -> Admission:
    """The role and scope check of ``require``, for a principal found another way too (the
    console finds its user's in a cookie)."""
    return Admission(frozenset(roles), frozenset(str(s) for s in scopes))


def require(*roles: Role, scopes: Iterable[Scope] = ()) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the request and admits the listed roles
    (``Admission``), answering the principal."""
    admit = admitter(*roles, scopes=scopes)

    async def dependency(
        request: Request,
        # Declares the scheme in the OpenAPI document; the token is read from the request
        # itself, so there is no further level of dependencies to solve.
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        return await admit(request, _authenticated(request))

    return dependency


def admission(*roles: Role, scopes: Iterable[Scope] = ()) -> Callable[[Request], Awaitable[None]]:
    """``require`` as one flat dependency, for the hot path's routes (issue 13: each nested
    dependency is another round of FastAPI's solving on every request). The principal is in
    ``request.state.principal`` after it; the route declares the bearer scheme itself
    (``BEARER_SECURITY``), which ``require`` does through ``_bearer``."""
    admit = admitter(*roles, scopes=scopes)

    async def dependency(request: Request) -> None:
        await admit(request, _authenticated(request))

    return dependency


# The operation's security requirement as ``Depends(_bearer)`` documents it.
BEARER_SECURITY: dict[str, Any] = {"security": [{"HTTPBearer": []}]}


# Any authenticated caller, whatever the role.
AnyPrincipal = Annotated[Principal, Depends(require(*Role))]
