"""The API as it stood at an earlier commit, served beside today's in the same run.

``benchmarks.load --before REV`` exports the tree of ``REV`` (``git archive``) and serves
its ``app.main:app`` as the server ``api-before``, so that a change's effect on the hot path
is read from one run, against the same load and the same baseline, never from two runs on
a machine whose speed drifts. The exported tree comes first on ``sys.path``; the import
refuses to go on if ``app`` would still come from the working tree.

    PRAP_BENCH_BEFORE_TREE=/tmp/tree uvicorn benchmarks.before:app --workers 2
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_TREE = Path(os.environ["PRAP_BENCH_BEFORE_TREE"]).resolve()
if "app" in sys.modules:
    raise RuntimeError("app was imported before the earlier tree could take its place")
sys.path.insert(0, str(_TREE))

from app import main as earlier  # noqa: E402  (after the earlier tree is on the path, on purpose)

if not Path(earlier.__file__ or "").resolve().is_relative_to(_TREE):
    raise RuntimeError(f"app.main came from {earlier.__file__}, not from {_TREE}")

app = earlier.app
