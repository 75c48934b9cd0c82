"""Sum up py-spy's collapsed stacks (``--format raw``) from ``benchmarks.load --profile``.

Prints where the workers' samples went three ways: by library (each sample goes to the
innermost frame that belongs to a known library, so the shares add up to 100%), the top
functions by own time, and the inclusive share of a few places on the hot path.

    .venv/bin/python -m benchmarks.profile_summary /tmp/prof/api-32-*.txt
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# Innermost match wins: order does not matter, a frame's file decides its library.
LIBRARIES = [
    ("sqlalchemy orm", r"sqlalchemy/orm/"),
    ("sqlalchemy core+engine", r"sqlalchemy/"),
    ("asyncpg", r"asyncpg/"),
    ("pydantic", r"pydantic(_core)?/"),
    ("fastapi", r"fastapi/"),
    ("starlette", r"starlette/"),
    ("structlog+logging", r"structlog/|logging/"),
    ("prometheus", r"prometheus_client/"),
    ("jose+crypto", r"jose/|cryptography/"),
    ("json", r"json/"),
    ("uvicorn+httptools", r"uvicorn/|httptools/|h11/"),
    ("asyncio", r"asyncio/|uvloop/"),
    ("app", r"/app/"),
]
# Inclusive: the share of samples with this function anywhere in the stack. Frames read
# "Class.method (package/file.py:line)".
PLACES = {
    "request log + metrics middleware": r"^RequestContextMiddleware\.__call__ \(",
    "  of which the access log line": r"^(BoundLoggerLazyProxy|BoundLogger)\.info \(",
    "boundary middleware (SCR)": r"^BoundaryMiddleware\.__call__ \(",
    "unit-of-work middleware": r"^UnitOfWorkMiddleware\._run \(",
    "  of which commit": r"^AsyncSession\.commit \(",
    "fastapi request handler": r"^get_request_handler\.<locals>\.app \(",
    "  of which solve_dependencies": r"^solve_dependencies \(",
    "  of which serialize_response": r"^serialize_response \(",
    "referrals.service.perform (actions)": r"^perform \(.*app/referrals/service\.py",
    "  of which get_readable (SELECT ... FOR UPDATE)": r"^get_readable \(",
    "  of which flush (UPDATE + INSERT event)": r"^AsyncSession\.flush \(",
    "  of which to_out (representation)": r"^to_out \(.*app/referrals/service\.py",
    "referrals.service.create_referral": r"^create_referral \(.*app/referrals/service\.py",
    "referrals.service.get_referral": r"^get_referral \(.*app/referrals/service\.py",
    "SQLAlchemy statement building + compile + cache key": (
        r"sqlalchemy/sql/(compiler|cache_key|operators|elements|selectable|coercions)\.py"
    ),
    "SQLAlchemy ORM loading (rows to objects)": r"sqlalchemy/orm/loading\.py",
    "asyncpg (any frame)": r"asyncpg/",
    "uvicorn send": r"^RequestResponseCycle\.send \(",
}
_LINE = re.compile(r"^(.*) (\d+)$")


def read(paths: list[Path]) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            match = _LINE.match(line)
            if match:
                # py-spy writes root first; the first frame names the thread.
                stacks[tuple(match.group(1).split(";"))] += int(match.group(2))
    return stacks


def library_of(frame: str) -> str | None:
    for name, pattern in LIBRARIES:
        if re.search(pattern, frame):
            return name
    return None


def summarise(stacks: Counter[tuple[str, ...]], top: int) -> None:
    total = sum(stacks.values())
    print(f"samples: {total}")
    by_library: Counter[str] = Counter()
    own: Counter[str] = Counter()
    places: Counter[str] = Counter()
    for frames, count in stacks.items():
        library = next((lib for f in reversed(frames) if (lib := library_of(f))), "other")
        by_library[library] += count
        own[re.sub(r":\d+\)$", ")", frames[-1])] += count
        for place, pattern in PLACES.items():
            if any(re.search(pattern, f) for f in frames):
                places[place] += count
    print("\nby library (innermost frame):")
    for name, count in by_library.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}")
    print(f"\ntop {top} functions by own time:")
    for name, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {name}")
    print("\ninclusive share of places on the hot path (a sample counts for each it is in):")
    for place in PLACES:
        print(f"  {100 * places[place] / total:5.1f}%  {place}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=25)
    arguments = parser.parse_args()
    summarise(read(arguments.files), arguments.top)
