"""The error catalogue, served where each problem's ``type`` points: ``/problems/{code}``
(api-contract.md, Errors). An HTML page by default, for a person following the link; with
``Accept: application/json``, ``{"code", "title", "status", "description"}`` for a program."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Header, Path
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from app.core.problems import CatalogueEntry, NotFound, problem_catalogue, problem_responses

router = APIRouter(prefix="/problems", tags=["problems"])


class ProblemDescription(BaseModel):
    code: str = Field(description="The problem's `code`.", examples=["precondition-failed"])
    title: str = Field(description="The problem's `title`.")
    status: int = Field(description="The HTTP status it is answered with.")
    description: str = Field(description="What it means and what to do about it.")


class ProblemCatalogue(BaseModel):
    items: list[ProblemDescription]


def _wants_json(accept: str | None) -> bool:
    """JSON only when asked for it before (or instead of) HTML: a browser gets the page."""
    if not accept:
        return False
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    json_at = next(
        (i for i, k in enumerate(kinds) if k.endswith("/json") or k.endswith("+json")), None
    )
    html_at = next((i for i, k in enumerate(kinds) if k == "text/html"), None)
    return json_at is not None and (html_at is None or json_at < html_at)


def _describe(entry: CatalogueEntry) -> ProblemDescription:
    return ProblemDescription(
        code=entry.code, title=entry.title, status=entry.status, description=entry.description
    )


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body>{body}</body></html>"
    )


_BOTH = {
    "text/html": {"schema": {"type": "string"}},
}


@router.get(
    "",
    operation_id="listProblems",
    response_model=ProblemCatalogue,
    responses={200: {"description": "Every problem code.", "content": _BOTH}},
)
async def list_problems(
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Every problem code the service answers with: an HTML table by default, JSON with
    `Accept: application/json`."""
    entries = problem_catalogue()
    if _wants_json(accept):
        catalogue = ProblemCatalogue(items=[_describe(e) for e in entries])
        return JSONResponse(catalogue.model_dump())
    rows = "".join(
        f'<tr><td>{e.status}</td><td><a href="/problems/{escape(e.code)}"><code>'
        f"{escape(e.code)}</code></a></td><td>{escape(e.description)}</td></tr>"
        for e in entries
    )
    return _page(
        "PRaP problem codes",
        "<h1>PRaP problem codes</h1><table><tr><th>status</th><th>code</th>"
        f"<th>meaning and what to do</th></tr>{rows}</table>",
    )


@router.get(
    "/{code}",
    operation_id="getProblem",
    response_model=ProblemDescription,
    responses={
        200: {"description": "What the code means.", "content": _BOTH},
        **problem_responses(NotFound),
    },
)
async def get_problem(
    code: Annotated[str, Path(max_length=64, pattern=r"^[a-z][a-z-]*$")],
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """What a problem `code` means and what to do about it: an HTML page by default, JSON
    with `Accept: application/json`."""
    entry = next((e for e in problem_catalogue() if e.code == code), None)
    if entry is None:
        raise NotFound("No problem has this code.")
    if _wants_json(accept):
        return JSONResponse(_describe(entry).model_dump())
    return _page(
        entry.title,
        f"<h1>{escape(entry.title)}</h1><p>HTTP {entry.status}, code <code>"
        f"{escape(entry.code)}</code></p><p>{escape(entry.description)}</p>"
        '<p><a href="/problems">Every problem code</a></p>',
    )
