"""Rendering: one Jinja environment with the GOV.UK Frontend macros, and the page helper."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import (
    ChainableUndefined,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    PrefixLoader,
)

from app.console.auth import ConsoleUser, csrf_token, settings_of
from app.core.auth import Role
from app.core.clock import UK, as_utc

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/console/static"

environment = Environment(
    loader=ChoiceLoader(
        [
            FileSystemLoader(HERE / "templates"),
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
        ]
    ),
    autoescape=True,
    # The GOV.UK macros read optional parameters that may be absent (as Nunjucks allows).
    undefined=ChainableUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def money(pence: int | None) -> str:
    if pence is None:
        return ""
    sign = "-" if pence < 0 else ""
    pounds, rest = divmod(abs(pence), 100)
    return f"{sign}£{pounds:,}.{rest:02d}"


def long_date(value: date | datetime | str | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = (
            date.fromisoformat(value[:10]) if len(value) <= 10 else datetime.fromisoformat(value)
        )
    if isinstance(value, datetime):
        local = as_utc(value).astimezone(UK)
        return f"{local.day} {local:%B %Y} {local:%H:%M}"
    return f"{value.day} {value:%B %Y}"


def words(value: object) -> str:
    """``did_not_start`` / ``did-not-start`` -> ``Did not start``."""
    text = str(value).replace("_", " ").replace("-", " ")
    return text[:1].upper() + text[1:]


def error_for(errors: list[Any], name: str) -> dict[str, str] | None:
    """The GOV.UK ``errorMessage`` for a field, if the form's errors name it."""
    for error in errors:
        if getattr(error, "field", None) == name:
            return {"text": error.text}
    return None


def errors_list(errors: list[Any]) -> list[dict[str, str]]:
    """The GOV.UK error summary's list: each error links to its field, where it has one."""
    return [{"text": e.text, "href": e.href} if e.href else {"text": e.text} for e in errors]


environment.globals["errors_list"] = errors_list
environment.filters["money"] = money
environment.filters["error_for"] = error_for
environment.filters["long_date"] = long_date
environment.filters["words"] = words

# The sections of the console each role may use (the services check again on every call).
NAVIGATION: tuple[tuple[str, str, frozenset[Role]], ...] = (
    ("/console", "Home", frozenset(Role)),
    ("/console/claims", "Claims", frozenset({Role.post, Role.provider})),
    ("/console/payment-runs", "Payment runs", frozenset({Role.post, Role.admin})),
    ("/console/contracts", "Performance", frozenset({Role.post, Role.admin, Role.provider})),
)


def navigation(request: Request, user: ConsoleUser | None) -> list[dict[str, Any]]:
    if user is None:
        return []
    path = request.url.path
    items = []
    for href, text, roles in NAVIGATION:
        if user.principal.role in roles:
            active = path == href if href == "/console" else path.startswith(href)
            items.append({"href": href, "text": text, "active": active})
    return items


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    user: ConsoleUser | None,
    status_code: int = 200,
    csrf_material: str | None = None,
) -> HTMLResponse:
    settings = settings_of(request)
    nonce = secrets.token_urlsafe(16)
    material = csrf_material or (user.token if user else None)
    html = environment.get_template(template).render(
        request=request,
        user=user,
        csrf=csrf_token(settings, material) if material else "",
        nav=navigation(request, user),
        cspNonce=nonce,
        static=STATIC_URL,
        sandbox=settings.sandbox,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    # Pages carry personal data: never cached (domain.md §10). Scripts only from here.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
        "img-src 'self' data:; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response
