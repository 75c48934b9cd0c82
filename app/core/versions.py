"""Every change to the OpenAPI document comes with a new ``info.version``.

``openapi/versions.json`` maps each released version to the fingerprint of its document (the
document without ``info.version``). ``prap openapi`` records a new version's fingerprint and
refuses to write a changed document under a version already recorded; a test checks that the
served document's fingerprint is the one recorded for its version.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

VERSIONS_FILE = Path(__file__).resolve().parent.parent.parent / "openapi" / "versions.json"


def fingerprint(document: dict[str, Any]) -> str:
    unversioned = copy.deepcopy(document)
    unversioned.get("info", {}).pop("version", None)
    canonical = json.dumps(unversioned, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def recorded_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    if not path.exists():
        return {}
    versions: dict[str, str] = json.loads(path.read_text())
    return versions


def record_version(document: dict[str, Any], path: Path = VERSIONS_FILE) -> None:
    version = document["info"]["version"]
    digest = fingerprint(document)
    versions = recorded_versions(path)
    known = versions.get(version)
    if known == digest:
        return
    if known is not None:
        raise ValueError(
            f"the OpenAPI document changed but info.version is still {version}: bump "
            "API_VERSION in app/core/openapi.py and add its entry to CHANGELOG.md"
        )
    versions[version] = digest
    path.write_text(json.dumps(versions, indent=2) + "\n")
