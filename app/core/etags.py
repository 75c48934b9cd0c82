"""Entity tags from integer versions (api-contract.md Writes: ETag, If-Match, 412)."""

from __future__ import annotations


def etag(version: int) -> str:
    return f'"{version}"'


def if_match_allows(if_match: str, version: int) -> bool:
    """Whether an ``If-Match`` header names this version (``*`` names any)."""
    if if_match.strip() == "*":
        return True
    candidates = {tag.strip().removeprefix("W/").strip('"') for tag in if_match.split(",")}
    return str(version) in candidates
