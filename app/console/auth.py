"""Who is signed in to the console, the session cookie, and CSRF protection.

The console accepts exactly the API's identity: a bearer token. In production an
authenticating proxy (oauth2-proxy) in front of the app passes the user's access token in
``Authorization: Bearer``; in sandbox mode the sign-in page mints one and keeps it in an
HttpOnly cookie. Either way the token is verified by ``decode_token``, as for ``/v1``.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from app.core.auth import Principal, decode_token
from app.core.problems import Forbidden, ProblemError
from app.core.settings import Settings

SESSION_COOKIE = "prap_console"
# Before sign-in there is no token to bind the CSRF token to: a random value stands in.
PRESESSION_COOKIE = "prap_console_presession"
COOKIE_PATH = "/console"
SESSION_SECONDS = 8 * 3600  # the sandbox token's lifetime (mint_token's default)


class SignInRequired(Exception):
    """No valid token: the console answers with its sign-in page (or a 401 page)."""


class CsrfRejected(Forbidden):
    default_detail = "The form had expired or did not come from this console. Try again."


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    principal: Principal
    token: str


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def presented_token(request: Request) -> str | None:
    """The bearer token: the ``Authorization`` header (the proxy's), else the session cookie."""
    scheme, _, credentials = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(SESSION_COOKIE) or None


async def console_user(request: Request) -> ConsoleUser:
    token = presented_token(request)
    if token is None:
        raise SignInRequired()
    try:
        principal = decode_token(token, settings_of(request))
    except ProblemError as error:
        raise SignInRequired() from error
    user = ConsoleUser(principal=principal, token=token)
    request.state.principal = principal
    request.state.console_user = user
    return user


SignedIn = Annotated[ConsoleUser, Depends(console_user)]


def _csrf_key(settings: Settings) -> bytes:
    return (settings.jwt_verification_key or "").encode()


def csrf_token(settings: Settings, material: str) -> str:
    """An HMAC of the session (the token, or the pre-session value): a page from another site
    cannot know it, and it changes with every sign-in."""
    digest = hmac.new(_csrf_key(settings), b"prap-console-csrf\x00" + material.encode(), "sha256")
    return digest.hexdigest()


def check_csrf(settings: Settings, material: str | None, sent: str | None) -> None:
    if not material or not sent or not hmac.compare_digest(csrf_token(settings, material), sent):
        raise CsrfRejected()


def presession_value(request: Request) -> str:
    return request.cookies.get(PRESESSION_COOKIE) or secrets.token_urlsafe(32)


def _set_cookie(response: Response, settings: Settings, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path=COOKIE_PATH,
        httponly=True,
        secure=not settings.sandbox,  # sandbox runs on plain http://127.0.0.1
        samesite="lax",
    )


def set_presession_cookie(response: Response, settings: Settings, value: str) -> None:
    _set_cookie(response, settings, PRESESSION_COOKIE, value, 3600)


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    _set_cookie(response, settings, SESSION_COOKIE, token, SESSION_SECONDS)
    response.delete_cookie(PRESESSION_COOKIE, path=COOKIE_PATH)


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
