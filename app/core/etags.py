"""Entity tags from integer versions (api-contract.md Writes: ETag, If-Match, 412).

Our tags are strong (``"3"``): the version names exactly one representation. RFC 9110
13.1.1 wants ``If-Match`` compared strongly, so a weak tag (``W/"3"``) never matches it,
and ``If-None-Match`` compared weakly (13.1.2), so either form matches there.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response


def etag(version: int) -> str:
    return f'"{version}"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def if_match_allows(if_match: str, version: int) -> bool:
    """Whether an ``If-Match`` header names this version (``*`` names any); strong
    comparison, so a weak tag is never a match (RFC 9110 13.1.1)."""
    if if_match.strip() == "*":
        return True
    return etag(version) in _tags(if_match)


def if_none_match_matches(if_none_match: str, version: int) -> bool:
    """Whether an ``If-None-Match`` header names this version (``*`` names any); weak
    comparison (RFC 9110 13.1.2): ``W/"3"`` matches ``"3"``."""
    if if_none_match.strip() == "*":
        return True
    return etag(version) in {tag.removeprefix("W/") for tag in _tags(if_none_match)}


def not_modified(version: int) -> Response:
    """304 for a conditional GET whose tag still matches (RFC 9110 15.4.5): no body."""
    return Response(status_code=304, headers={"ETag": etag(version)})


NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the `If-None-Match` tag is still the current one."}
}
