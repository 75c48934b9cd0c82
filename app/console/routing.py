"""The console's route class and wiring: pages answer problems as HTML, never JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from app.console.auth import ConsoleUser, SignedIn, SignInRequired, settings_of
from app.console.templating import STATIC_DIR, STATIC_URL, render
from app.core.auth import Role, Scope, admitter
from app.core.problems import NotFound, ProblemError


def problem_page(request: Request, error: ProblemError) -> HTMLResponse:
    """A problem as a GOV.UK error page with its status and code (a 404 for another
    provider's referral reads exactly as for one that does not exist)."""
    user: ConsoleUser | None = getattr(request.state, "console_user", None)
    response = render(request, "problem.html", {"problem": error}, user=user)
    response.status_code = error.status
    return response


def sign_in_page_or_401(request: Request) -> Response:
    if settings_of(request).sandbox and request.method == "GET":
        return RedirectResponse("/console/sign-in", status_code=303)
    response = render(request, "signed_out.html", {}, user=None, status_code=401)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return sign_in_page_or_401(request)
            except RequestValidationError:
                # A malformed id or query in a page URL: nothing by that name.
                return problem_page(request, NotFound())
            except ProblemError as error:
                return problem_page(request, error)

        return route


def console_router() -> APIRouter:
    # Not in the OpenAPI document: the console is not part of the API contract.
    return APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


def allow(
    *roles: Role, scopes: Iterable[Scope] = ()
) -> Callable[[Request, ConsoleUser], Awaitable[ConsoleUser]]:
    """The API's own role and scope check (``require``'s), applied to the console's user."""
    check = admitter(*roles, scopes=scopes)

    async def dependency(request: Request, user: SignedIn) -> ConsoleUser:
        await check(request, user.principal)
        return user

    return dependency


# Who may read referrals: the API's getReferral and listReferrals admit the same.
read_referrals = allow(Role.jcp, Role.post, Role.provider, scopes=(Scope.referrals, Scope.claims))
ReferralReader = Annotated[ConsoleUser, Depends(read_referrals)]
PostUser = Annotated[ConsoleUser, Depends(allow(Role.post))]
RunReader = Annotated[
    ConsoleUser, Depends(allow(Role.post, Role.admin, Role.provider, scopes=(Scope.claims,)))
]
ContractReader = Annotated[
    ConsoleUser,
    Depends(allow(Role.admin, Role.post, Role.provider, scopes=(Scope.referrals, Scope.claims))),
]


def install_console(app: FastAPI) -> None:
    """Mount the console's pages and its GOV.UK Frontend assets on the app."""
    from app.console import home, performance, referrals, support

    for module in (home, referrals, support, performance):
        app.include_router(module.router)
    # check_dir=False: the app starts without the assets (scripts/console-assets fetches them).
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR, check_dir=False), name="console")
